"""Safe project writing: reports, conflicts, --force, dry runs, nothing outside the destination."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mobilegen.errors import UserInputError
from mobilegen.targets.writer import PROVENANCE, ConflictError, write_project

META = dict(tool_version="0.0-test", model_sha256="ab" * 32, options={"target": "test"})


def actions(result):
    return {a.path: a.action for a in result}


def test_create_then_identical(tmp_path: Path):
    files = {"a.txt": "one\n", "sub/b.bin": b"\x00\x01"}
    assert actions(write_project(tmp_path, files, **META)) == {"a.txt": "created", "sub/b.bin": "created"}
    assert (tmp_path / "sub/b.bin").read_bytes() == b"\x00\x01"
    first = (tmp_path / PROVENANCE).read_bytes()
    assert actions(write_project(tmp_path, files, **META)) == {"a.txt": "identical", "sub/b.bin": "identical"}
    assert (tmp_path / PROVENANCE).read_bytes() == first  # no timestamps: byte-identical
    prov = json.loads(first)
    assert prov["model_sha256"] == META["model_sha256"] and set(prov["files"]) == set(files)


def test_update_unchanged_file_and_remove_stale(tmp_path: Path):
    write_project(tmp_path, {"a.txt": "one\n", "old.txt": "x"}, **META)
    result = actions(write_project(tmp_path, {"a.txt": "two\n"}, **META))
    assert result == {"a.txt": "updated", "old.txt": "removed"}
    assert (tmp_path / "a.txt").read_text() == "two\n" and not (tmp_path / "old.txt").exists()


def test_user_change_is_a_conflict_unless_forced(tmp_path: Path):
    write_project(tmp_path, {"a.txt": "one\n", "b.txt": "b\n"}, **META)
    (tmp_path / "a.txt").write_text("edited by the user\n")
    with pytest.raises(ConflictError, match="a.txt") as e:
        write_project(tmp_path, {"a.txt": "two\n", "b.txt": "b2\n"}, **META)
    assert "--force" in str(e.value)
    # Refused as a whole: the unchanged file was not updated either.
    assert (tmp_path / "a.txt").read_text() == "edited by the user\n" and (tmp_path / "b.txt").read_text() == "b\n"
    result = actions(write_project(tmp_path, {"a.txt": "two\n", "b.txt": "b2\n"}, **META, force=True))
    assert result == {"a.txt": "conflict", "b.txt": "updated"}
    assert (tmp_path / "a.txt").read_text() == "two\n"


def test_file_not_made_by_us_is_a_conflict(tmp_path: Path):
    (tmp_path / "a.txt").write_text("mine\n")
    with pytest.raises(ConflictError):
        write_project(tmp_path, {"a.txt": "generated\n"}, **META)


def test_dry_run_writes_nothing(tmp_path: Path):
    out = tmp_path / "proj"
    result = actions(write_project(out, {"a.txt": "one\n"}, **META, dry_run=True))
    assert result == {"a.txt": "created"} and not out.exists()


@pytest.mark.parametrize("rel", ["../escape.txt", "/abs.txt", "a/../../escape.txt"])
def test_nothing_outside_the_destination(tmp_path: Path, rel: str):
    out = tmp_path / "proj"
    with pytest.raises(UserInputError, match="refusing"):
        write_project(out, {rel: "x"}, **META)
    assert not (tmp_path / "escape.txt").exists()


def test_symlink_out_of_the_destination_is_refused(tmp_path: Path):
    out, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "link")
    with pytest.raises(UserInputError, match="outside"):
        write_project(out, {"link/x.txt": "x"}, **META)
    assert list(elsewhere.iterdir()) == []
