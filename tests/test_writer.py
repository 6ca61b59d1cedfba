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
    with pytest.raises(ConflictError) as e:
        write_project(tmp_path, {"a.txt": "generated\n"}, **META)
    msg = str(e.value)
    assert "\n" not in msg and "a.txt" in msg and "not written by mobilegen" in msg and "--force" in msg
    assert "changed since" not in msg
    assert (tmp_path / "a.txt").read_text() == "mine\n"


def test_file_not_made_by_us_next_to_a_previous_generation(tmp_path: Path):
    """With a provenance record present, a file it does not list is still one mobilegen never
    wrote (not "changed since generated"); a user-changed generated file is named as such, both
    kinds in one line."""
    write_project(tmp_path, {"a.txt": "one\n"}, **META)
    (tmp_path / "a.txt").write_text("edited\n")
    (tmp_path / "b.txt").write_text("the user's own\n")
    with pytest.raises(ConflictError) as e:
        write_project(tmp_path, {"a.txt": "two\n", "b.txt": "generated\n"}, **META)
    msg = str(e.value)
    assert "\n" not in msg and "--force" in msg
    edited, foreign = msg.split("; ")[:2]
    assert "changed since they were generated: a.txt" in edited and "b.txt" not in edited
    assert "not written by mobilegen" in foreign and foreign.endswith(": b.txt")
    assert (tmp_path / "b.txt").read_text() == "the user's own\n"
    result = actions(write_project(tmp_path, {"a.txt": "two\n", "b.txt": "generated\n"}, **META, force=True))
    assert result == {"a.txt": "conflict", "b.txt": "conflict"}
    assert (tmp_path / "b.txt").read_text() == "generated\n"
    assert set(json.loads((tmp_path / PROVENANCE).read_text())["files"]) == {"a.txt", "b.txt"}


def test_edited_stale_file_is_a_conflict_not_deleted(tmp_path: Path):
    """A file generated last time and not now is removed only when unchanged; one the user edited
    is a conflict: kept and named (nothing else is written), deleted only under --force."""
    write_project(tmp_path, {"a.txt": "one\n", "old.txt": "x\n", "old2.txt": "y\n"}, **META)
    (tmp_path / "old.txt").write_text("the user's notes\n")
    for dry_run in (True, False):
        with pytest.raises(ConflictError) as e:
            write_project(tmp_path, {"a.txt": "two\n"}, **META, dry_run=dry_run)
        msg = str(e.value)
        assert "\n" not in msg and "old.txt" in msg and "old2.txt" not in msg and "--force" in msg
        assert "no longer generates" in msg and "kept" in msg and "delete" in msg
    assert (tmp_path / "old.txt").read_text() == "the user's notes\n"
    assert (tmp_path / "old2.txt").exists() and (tmp_path / "a.txt").read_text() == "one\n"
    assert set(json.loads((tmp_path / PROVENANCE).read_text())["files"]) == {"a.txt", "old.txt", "old2.txt"}
    result = actions(write_project(tmp_path, {"a.txt": "two\n"}, **META, dry_run=True, force=True))
    assert result == {"a.txt": "updated", "old.txt": "conflict", "old2.txt": "removed"}
    assert (tmp_path / "old.txt").exists() and (tmp_path / "old2.txt").exists()
    result = actions(write_project(tmp_path, {"a.txt": "two\n"}, **META, force=True))
    assert result == {"a.txt": "updated", "old.txt": "conflict", "old2.txt": "removed"}
    assert not (tmp_path / "old.txt").exists() and not (tmp_path / "old2.txt").exists()
    assert set(json.loads((tmp_path / PROVENANCE).read_text())["files"]) == {"a.txt"}


def test_stale_file_the_user_deleted_is_no_conflict(tmp_path: Path):
    write_project(tmp_path, {"a.txt": "one\n", "old.txt": "x\n"}, **META)
    (tmp_path / "old.txt").unlink()
    assert actions(write_project(tmp_path, {"a.txt": "one\n"}, **META)) == {"a.txt": "identical"}


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
