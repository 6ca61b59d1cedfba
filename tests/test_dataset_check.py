"""mobilegen.dataset.index and `dataset check`: layouts, records, corrupt / tiny / low-detail
images, balance, exact and near duplicates across splits, across classes, within a class, and the
pairs train's own validation split would straddle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.data import folder as data_folder
from mobilegen.dataset import index as index_mod
from mobilegen.dataset.index import index_folder, read_layout
from mobilegen.errors import UserInputError
from tests.test_dataset_phash import flats, gradients, jpeg_copy, textured

ROOT = Path(__file__).resolve().parents[1]


def save(im: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)
    return path


# --- index ---------------------------------------------------------------------------------------


def test_index_records_a_class_folder_in_trains_order(tmp_path):
    save(textured(1), tmp_path / "cat" / "b.png")
    save(textured(2), tmp_path / "cat" / "sub" / "a.jpg", quality=90)
    save(textured(3), tmp_path / "dog" / "x.webp")
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (tmp_path / "dog" / "empty.png").write_bytes(b"")
    (tmp_path / "dog" / "page.png").write_bytes(b"<!DOCTYPE html><html></html>")
    (tmp_path / "dog" / "notes.txt").write_text("ignored: no image suffix")
    save(textured(4), tmp_path / "dog" / ".hidden" / "h.png")  # ignored: hidden
    save(textured(5), tmp_path / "loose.png")  # ignored: directly in ROOT
    save(textured(6), tmp_path / ".cache" / "c.png")  # ignored: hidden class
    recs = list(index_folder(tmp_path, jobs=2))
    assert [(r.split, r.cls, r.name) for r in recs] == [
        (None, "cat", "b.png"), (None, "cat", "sub/a.jpg"),
        (None, "dog", "broken.jpg"), (None, "dog", "empty.png"), (None, "dog", "page.png"), (None, "dog", "x.webp"),
    ]
    by = {r.name: r for r in recs}
    assert by["empty.png"].problem == "empty"
    assert by["page.png"].problem == "HTML, not an image"
    assert by["broken.jpg"].problem and by["broken.jpg"].phash is None
    good = [r for r in recs if r.ok]
    assert all(r.phash is not None and r.detailed and (r.width, r.height) == (48, 48) for r in good)
    assert by["b.png"].sha256 == __import__("hashlib").sha256((tmp_path / "cat" / "b.png").read_bytes()).hexdigest()
    # The same images, in the same order, as train's scan_folder finds usable.
    scanned = data_folder.scan_folder(tmp_path)
    assert [s.path for s in scanned.samples] == [r.path for r in good]
    assert sorted(p.name for p, _ in scanned.skipped) == sorted(r.path.name for r in recs if not r.ok)


def test_index_truncated_jpeg_is_corrupt_even_in_draft_mode(tmp_path):
    p = save(textured(1, size=256), tmp_path / "a" / "t.jpg", quality=90)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    save(textured(2), tmp_path / "b" / "ok.png")
    recs = {r.name: r for r in index_folder(tmp_path, jobs=1)}
    assert recs["t.jpg"].problem and "truncated" in recs["t.jpg"].problem
    assert recs["t.jpg"].width == 256  # the header was readable
    assert data_folder._decode_problem(p) is not None  # train agrees


def test_index_detects_a_split_folder(tmp_path):
    for i, (split, cls) in enumerate([("train", "a"), ("train", "b"), ("val", "a"), ("val", "b")]):
        save(textured(i), tmp_path / split / cls / "1.png")
    lay = read_layout(tmp_path)
    assert lay.is_split and lay.splits == ("train", "val") and lay.all_classes == ["a", "b"]
    assert {(r.split, r.cls) for r in index_folder(tmp_path, jobs=1)} == {(s, c) for s in ("train", "val") for c in "ab"}
    # Class folders that happen to be called train and test (they hold images, not class folders).
    other = tmp_path / "other"
    save(textured(1), other / "train" / "1.png")
    save(textured(2), other / "test" / "1.png")
    lay = read_layout(other)
    assert not lay.is_split and lay.classes[None] == ["test", "train"]


def test_index_errors(tmp_path):
    with pytest.raises(UserInputError, match="no such directory"):
        read_layout(tmp_path / "missing")
    with pytest.raises(UserInputError, match="no class folders"):
        read_layout(tmp_path)


def test_index_streams_through_a_bounded_window(tmp_path, monkeypatch):
    for i in range(40):
        save(Image.new("L", (4, 4), i), tmp_path / ("a" if i % 2 else "b") / f"{i:02}.png")
    calls = []
    real = index_mod.examine

    def counting(*args):
        calls.append(args[2])
        return real(*args)

    monkeypatch.setattr(index_mod, "examine", counting)
    it = index_folder(tmp_path, jobs=2)
    first = next(it)
    assert first.name == "01.png"
    assert len(calls) <= 5  # window 2 * jobs (+ the one being submitted), not all 40
    assert len(list(it)) == 39
