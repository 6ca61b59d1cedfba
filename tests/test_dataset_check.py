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


# --- check ---------------------------------------------------------------------------------------

from mobilegen.dataset.check import check_folder, duplicate_groups  # noqa: E402


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    """A class folder with one of everything check reports."""
    root = tmp_path_factory.mktemp("messy")
    for i in range(8):
        save(textured(i), root / "cat" / f"c{i}.png")
    for i in range(6):
        save(textured(100 + i), root / "dog" / f"d{i}.png")
    for i in range(2):
        save(textured(200 + i), root / "bird" / f"b{i}.png")
    save(jpeg_copy(textured(1).resize((40, 40)), 60), root / "cat" / "c1_small.jpg")  # near, within cat
    (root / "cat" / "c2_again.png").write_bytes((root / "cat" / "c2.png").read_bytes())  # exact, within cat
    (root / "dog" / "conflict.png").write_bytes((root / "cat" / "c3.png").read_bytes())  # exact, across classes
    from PIL import ImageEnhance

    save(ImageEnhance.Brightness(textured(4)).enhance(1.06), root / "dog" / "c4_brighter.jpg", quality=90)  # near, across
    save(textured(300, size=12), root / "bird" / "tiny.png")
    for k, im in enumerate(flats()[:3]):  # distinct flat images: low detail, never near each other
        save(im, root / "bird" / f"flat{k}.png")
    save(gradients()["horizontal"], root / "bird" / "ramp.png")
    save(gradients()["vertical"], root / "bird" / "ramp_v.png")
    full = save(textured(400, size=128), root / "dog" / "cut.jpg", quality=90)
    full.write_bytes(full.read_bytes()[:600])  # truncated
    (root / "bird" / "page.jpg").write_bytes(b"<html><body>404</body></html>")
    return root


@pytest.fixture(scope="module")
def messy_report(messy):
    return check_folder(messy, jobs=2)


def names(group) -> set[str]:
    return {f"{m.cls}/{m.name}" for m in group.members}


def test_check_finds_every_kind_of_duplicate(messy_report):
    groups = {frozenset(names(g)): g for g in messy_report.groups}
    assert set(groups) == {
        frozenset({"cat/c1.png", "cat/c1_small.jpg"}),
        frozenset({"cat/c2.png", "cat/c2_again.png"}),
        frozenset({"cat/c3.png", "dog/conflict.png"}),
        frozenset({"cat/c4.png", "dog/c4_brighter.jpg"}),
    }, "flat and gradient images must not be grouped: " + str(set(groups))
    kinds = {tuple(sorted(k)): (g.exact, g.cross_class, g.cross_split) for k, g in groups.items()}
    assert kinds[("cat/c1.png", "cat/c1_small.jpg")] == (False, False, False)
    assert kinds[("cat/c2.png", "cat/c2_again.png")] == (True, False, False)
    assert kinds[("cat/c3.png", "dog/conflict.png")] == (True, True, False)
    assert kinds[("cat/c4.png", "dog/c4_brighter.jpg")] == (False, True, False)
    w = "\n".join(messy_report.warnings)
    assert "2 duplicate groups across classes" in w and "2 duplicate groups within a class" in w


def test_check_reports_corrupt_tiny_low_detail_and_balance(messy_report):
    rep = messy_report
    assert sorted(r.name for r in rep.corrupt) == ["cut.jpg", "page.jpg"]
    assert dict(rep.class_totals()) == {"bird": 8, "cat": 10, "dog": 8}
    assert rep.imbalance == pytest.approx(10 / 8)
    assert [r.name for r in rep.tiny] == ["tiny.png"]
    assert sorted(r.name for r in rep.low_detail) == ["flat0.png", "flat1.png", "flat2.png", "ramp.png", "ramp_v.png"]
    assert not rep.ok and len(rep.errors) == 1 and rep.errors[0].startswith("2 corrupt or unreadable images")
    assert "page.jpg (HTML, not an image)" in rep.errors[0]
    assert any("smaller than 32 px" in w and "tiny.png (12x12)" in w for w in rep.warnings)
    assert any("5 low-detail images" in w for w in rep.warnings)
    j = rep.to_json()
    json.dumps(j)
    assert j["classes"]["cat"] == {"images": 10} and j["layout"] == "classes" and j["ok"] is False
    assert {d["kind"] for d in j["duplicates"]} == {"exact", "near"}


def test_check_flags_what_trains_own_split_would_straddle(messy):
    # train's split of the folder as train itself scans it, for many seeds; check must flag exactly
    # the groups that split cuts.
    scanned = data_folder.scan_folder(messy)
    seen_straddle = seen_together = 0
    for seed in range(12):
        _, val = data_folder.split(scanned, 0.2, seed)
        val_names = {f"{scanned.classes[s.label]}/{data_folder.relative_name(s, scanned.classes)}" for s in val}
        rep = check_folder(messy, val_split=0.2, seed=seed, jobs=2)
        for g in rep.groups:
            cut = len({n in val_names for n in names(g)}) > 1
            assert g.straddles_train_split == cut, (seed, names(g))
            seen_straddle += cut
            seen_together += not cut
        assert any(("train's own validation split" in w) for w in rep.warnings) == any(g.straddles_train_split for g in rep.groups)
    assert seen_straddle and seen_together


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("splitdir")
    for i in range(5):
        save(textured(i), root / "train" / "a" / f"{i}.png")
        save(textured(50 + i), root / "train" / "b" / f"{i}.png")
    save(textured(10), root / "val" / "a" / "v.png")
    save(jpeg_copy(textured(51), 70), root / "val" / "b" / "leak.jpg")  # near copy of train/b/1.png
    (root / "test" / "b").mkdir(parents=True)
    (root / "test" / "b" / "same.png").write_bytes((root / "train" / "a" / "3.png").read_bytes())  # exact, and a label conflict
    return root


def test_check_a_split_folder_finds_leaks_across_splits(split_dir):
    rep = check_folder(split_dir, jobs=2)
    assert rep.layout.is_split and rep.layout.splits == ("train", "val", "test")
    cross = {frozenset(f"{m.split}/{m.cls}/{m.name}" for m in g.members): g for g in rep.groups if g.cross_split}
    assert set(cross) == {frozenset({"train/b/1.png", "val/b/leak.jpg"}), frozenset({"train/a/3.png", "test/b/same.png"})}
    assert cross[frozenset({"train/a/3.png", "test/b/same.png"})].cross_class
    assert not rep.ok and any("2 duplicate groups across splits" in e for e in rep.errors)
    assert any(w.startswith("test has no usable image of: a") for w in rep.warnings)
    assert not any(g.straddles_train_split for g in rep.groups)  # not a class folder
    assert rep.to_json()["classes"]["b"] == {"images": 7, "by_split": {"train": 5, "val": 1, "test": 1}}


def test_check_errors_on_a_class_without_usable_images(tmp_path):
    save(textured(1), tmp_path / "a" / "1.png")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.png").write_bytes(b"nope")
    rep = check_folder(tmp_path, jobs=1)
    assert any(e == "class with no usable image: b" for e in rep.errors)
    one = tmp_path / "one"
    save(textured(1), one / "a" / "1.png")
    assert any("a classifier needs at least two" in e for e in check_folder(one, jobs=1).errors)


def test_check_option_errors(tmp_path):
    save(textured(1), tmp_path / "a" / "1.png")
    for kw, msg in [({"near_distance": 64}, "--near 64"), ({"val_split": 1.0}, "--val-split 1.0"), ({"min_side": -1}, "--min-side -1")]:
        with pytest.raises(UserInputError, match=msg):
            check_folder(tmp_path, **kw)


def test_duplicate_groups_close_chains_and_skip_low_detail():
    from mobilegen.dataset.index import ImageRecord

    def rec(name, sha, ph, detailed=True, ok=True):
        return ImageRecord(Path("/x") / name, None, "c", name, sha, ph if ok else None, detailed, 40, 40, None if ok else "bad")

    a = 0x0F0F_0F0F_0F0F_0F0E
    recs = [rec("a", "1", a), rec("b", "2", a ^ 0b111_0000), rec("c", "3", a ^ 0b111_0000 ^ (0b111 << 40)),  # a~b~c, a-c 6 apart
            rec("flat1", "4", 0, False), rec("flat2", "5", 0, False),  # same hash, low detail: not grouped
            rec("flat3", "4", 0, False),  # same bytes as flat1: grouped
            rec("bad", "1", 0, ok=False),  # same bytes as a, but unusable
            rec("far", "6", ~a & (2**64 - 1))]
    assert duplicate_groups(recs, 3) == [[0, 1, 2], [3, 5]]
    assert duplicate_groups(recs, None) == [[3, 5]]


# --- the command ---------------------------------------------------------------------------------


def test_check_cli(messy, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["dataset", "check", str(messy), "--json", "--jobs", "2"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and len(doc["corrupt"]) == 2
    clean = tmp_path / "clean"
    for i in range(3):
        save(textured(i), clean / "a" / f"{i}.png")
        save(textured(10 + i), clean / "b" / f"{i}.png")
    res = runner.invoke(app, ["dataset", "check", str(clean)])
    assert res.exit_code == 0 and res.stdout.strip().endswith("ok"), res.output
    save(textured(20, size=16), clean / "b" / "small.png")  # a warning only
    assert runner.invoke(app, ["dataset", "check", str(clean)]).exit_code == 0
    res = runner.invoke(app, ["dataset", "check", str(clean), "--strict"])
    assert res.exit_code == 1 and "smaller than 32 px" in res.stdout
    assert runner.invoke(app, ["dataset", "check", str(clean), "--min-side", "8", "--strict"]).exit_code == 0
    res = runner.invoke(app, ["dataset", "check", str(tmp_path / "nope")])
    assert res.exit_code == 2
    res = runner.invoke(app, ["dataset", "check", str(clean), "--near", "64"])
    assert res.exit_code == 2


def test_check_subprocess(split_dir):
    exe = Path(sys.executable).with_name("mobilegen")
    p = subprocess.run([str(exe), "dataset", "check", str(split_dir), "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    assert doc["layout"] == "splits" and sum(d["cross_split"] for d in doc["duplicates"]) == 2
    assert "indexed 13 images" in p.stderr
