"""`dataset split`: deterministic by seed, stratified, near-duplicate groups on one side (planted
groups, many seeds), corrupt images out, hard links vs copies, split.json, idempotent re-runs,
refused places, --force, and OUT/train|val|test read by train's scan_folder."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.data import folder as data_folder
from mobilegen.dataset import split as split_mod
from mobilegen.dataset.check import duplicate_groups
from mobilegen.dataset.index import index_folder
from mobilegen.dataset.split import MANIFEST, assign, quotas, split_folder
from mobilegen.errors import UserInputError
from tests.test_dataset_phash import jpeg_copy, textured

SIDES = ("train", "val", "test")


def save(im: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **kw)
    return path


# Planted groups: (members as "class/name", how each copy is made from the first member's image).
def make_source(root: Path) -> dict[str, set[str]]:
    """Three classes of singletons plus planted near-duplicate groups; returns the groups."""
    seed = 0
    for cls in ("a", "b", "c"):
        for i in range(14):
            seed += 1
            save(textured(seed), root / cls / f"{i:02}.png")
    groups = {}

    def plant(name, base_seed, members):
        im = textured(base_seed)
        made = set()
        for k, (cls, how) in enumerate(members):
            if how == "same":
                out = im
            elif how == "jpeg":
                out = jpeg_copy(im, 55)
            elif how == "small":
                out = im.resize((36, 36), Image.Resampling.LANCZOS)
            else:
                out = ImageEnhance.Brightness(im).enhance(1.07)
            fname = f"{name}_{k}.png"
            save(out, root / cls / fname)
            made.add(f"{cls}/{fname}")
        groups[name] = made

    plant("g3", 1000, [("a", "same"), ("a", "jpeg"), ("a", "small")])
    plant("g2", 1001, [("b", "same"), ("b", "bright")])
    plant("cross", 1002, [("a", "same"), ("c", "jpeg")])
    plant("g5", 1003, [("c", "same"), ("c", "jpeg"), ("c", "small"), ("c", "bright"), ("c", "same")])
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (root / "c" / "notes.txt").write_text("not an image")
    return groups


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("src") / "data"
    groups = make_source(root)
    return root, groups


@pytest.fixture(scope="module")
def records(source):
    return list(index_folder(source[0], jobs=2))


def side_of(out: Path) -> dict[str, str]:
    """"class/name" -> side, from the files in OUT."""
    found = {}
    for s in SIDES:
        for p in (out / s).rglob("*"):
            if p.is_file() and not p.name.startswith("."):
                cls, *rest = p.relative_to(out / s).parts
                found[f"{cls}/{'/'.join(rest)}"] = s
    return found


def test_quotas():
    for n in range(0, 60):
        for val, test in [(0.1, 0.1), (0.2, 0.0), (0.0, 0.3), (0.5, 0.4), (0.0, 0.0)]:
            kv, kt = quotas(n, val, test)
            if n < 2:
                assert (kv, kt) == (0, 0)
                continue
            assert kv + kt <= n - 1 and kv >= 0 and kt >= 0
            if test == 0:  # train's own rule (mobilegen.data.folder.split)
                assert kv == (min(max(round(val * n), 1), n - 1) if val else 0)
            if n >= 3 and val and test:
                assert kv >= 1 and kt >= 1
            if n >= 20:
                assert kv == round(val * n) and kt == round(test * n)


def test_planted_groups_stay_on_one_side_for_every_seed(source, records):
    _, planted = source
    groups = duplicate_groups(records, 6)
    found = [{f"{records[i].cls}/{records[i].name}" for i in g} for g in groups]
    assert sorted(map(sorted, found)) == sorted(map(sorted, planted.values()))
    usable = Counter(r.cls for r in records if r.ok)
    moved = Counter()
    for seed in range(40):
        sides = assign(records, groups, 0.2, 0.15, seed)
        by_name = {f"{r.cls}/{r.name}": s for r, s in zip(records, sides)}
        for members in planted.values():
            assert len({by_name[m] for m in members}) == 1, (seed, members)
            moved[frozenset(members), by_name[next(iter(members))]] += 1
        for cls, n in usable.items():
            kv, kt = quotas(n, 0.2, 0.15)
            got = Counter(s for r, s in zip(records, sides) if r.cls == cls and s is not None)
            assert got["val"] <= kv and got["test"] <= kt
            assert got["val"] >= kv - 1 and got["test"] >= kt - 1  # small groups fill the room (g5 may not fit)
            assert sum(got.values()) == n
        assert by_name["b/broken.png"] is None
    # The groups do travel: each small group lands in val or test for some seed.
    for name in ("g2", "g3", "cross"):
        assert any(moved[frozenset(planted[name]), s] for s in ("val", "test")), name
    # A group larger than a class's val room (g5: 5 images, c has val room 4) can only be in train.
    assert moved[frozenset(planted["g5"]), "train"] == 40


def test_without_groups_val_is_trains_own_validation_set(tmp_path):
    for i in range(9):
        save(textured(i), tmp_path / "src" / "x" / f"{i}.png")
        save(textured(50 + i), tmp_path / "src" / "y" / f"{i}.png")
    save(textured(99), tmp_path / "src" / "y" / "sub" / "deep.png")
    scanned = data_folder.scan_folder(tmp_path / "src")
    recs = list(index_folder(tmp_path / "src", jobs=2))
    assert duplicate_groups(recs, 6) == []
    for seed in range(15):
        sides = assign(recs, [], 0.25, 0.0, seed)
        _, val = data_folder.split(scanned, 0.25, seed)
        assert {r.path for r, s in zip(recs, sides) if s == "val"} == {s.path for s in val}
        assert "test" not in sides


def test_split_writes_links_and_a_manifest_and_train_reads_it(source, tmp_path):
    root, planted = source
    out = tmp_path / "out"
    rep = split_folder(root, out, val=0.2, test=0.15, seed=3, jobs=2)
    sides = side_of(out)
    assert "b/broken.png" not in sides and rep.left_out == [("b/broken.png", rep.left_out[0][1])]
    assert len(sides) == 3 * 14 + 3 + 2 + 2 + 5
    for members in planted.values():
        assert len({sides[m] for m in members}) == 1
    man = json.loads((out / MANIFEST).read_text())
    assert man["source"] == str(root.resolve()) and man["settings"] == {"seed": 3, "val": 0.2, "test": 0.15, "near_distance": 6}
    assert man["files"] == sorted(f"{s}/{n}" for n, s in sides.items())
    assert sorted(map(sorted, (g["members"] for g in man["groups"]))) == sorted(map(sorted, planted.values()))
    assert man["counts"] == {s: dict(sorted(rep.counts[s].items())) for s in SIDES}
    assert rep.linked == len(sides) and rep.copied == 0
    src = root / "a" / "00.png"
    dst = out / sides["a/00.png"] / "a" / "00.png"
    assert os.stat(src).st_ino == os.stat(dst).st_ino  # a hard link
    classes = None
    for s in SIDES:
        folder = data_folder.scan_folder(out / s)
        assert not folder.skipped
        assert len(folder.samples) == sum(rep.counts[s].values())
        classes = classes or folder.classes
        assert folder.classes == classes == ["a", "b", "c"]
    assert not any(p.name.startswith(".") for p in out.rglob("*"))  # no temporary files left
    assert "1 duplicate group spans classes" in rep.summary()


def test_same_settings_twice_give_the_same_split_and_change_nothing(source, tmp_path):
    root, _ = source
    a, b = tmp_path / "a", tmp_path / "b"
    split_folder(root, a, seed=5, jobs=2)
    split_folder(root, b, seed=5, jobs=1)
    assert (a / MANIFEST).read_bytes() == (b / MANIFEST).read_bytes()
    assert side_of(a) == side_of(b)

    def state(d):
        return {p.relative_to(d).as_posix(): (p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes() if p.is_file() else None)
                for p in sorted(d.rglob("*"))} | {".": d.stat().st_mtime_ns}

    before = state(a)
    rep = split_folder(root, a, seed=5, jobs=2)
    assert state(a) == before
    assert rep.unchanged == len(side_of(a)) and rep.linked == rep.copied == rep.removed == 0
    # Another seed: refused, nothing touched; --force replaces the split entirely.
    with pytest.raises(UserInputError, match=r"other settings \(seed 5 there, 6 now\).*--force"):
        split_folder(root, a, seed=6, jobs=2)
    assert state(a) == before
    rep = split_folder(root, a, seed=6, force=True, jobs=2)
    fresh = tmp_path / "fresh"
    split_folder(root, fresh, seed=6, jobs=2)
    assert side_of(a) == side_of(fresh)
    assert (a / MANIFEST).read_bytes() == (fresh / MANIFEST).read_bytes()
    assert rep.removed > 0 and not any("not made by this split" in w for w in rep.warnings)
    for s in SIDES:  # no empty folders left behind for train to refuse
        for d in (a / s).rglob("*"):
            assert not d.is_dir() or any(d.iterdir()), d


def test_a_changed_source_is_brought_up_to_date(tmp_path):
    src = tmp_path / "src"
    for i in range(6):
        save(textured(i), src / "x" / f"{i}.png")
        save(textured(20 + i), src / "y" / f"{i}.png")
    out = tmp_path / "out"
    split_folder(src, out, val=0.2, test=0.0, jobs=1)
    gone = "x/0.png"
    old_side = side_of(out)[gone]
    (src / "x" / "0.png").unlink()
    save(textured(77), src / "y" / "new.png")
    rep = split_folder(src, out, val=0.2, test=0.0, jobs=1)
    now = side_of(out)
    assert gone not in now and "y/new.png" in now and rep.removed == 1
    assert not (out / old_side / "x" / "0.png").exists()
    assert json.loads((out / MANIFEST).read_text())["files"] == sorted(f"{s}/{n}" for n, s in now.items())


def test_copies(source, tmp_path, monkeypatch):
    root, _ = source
    out = tmp_path / "copied"
    rep = split_folder(root, out, seed=1, link="copy", jobs=2)
    assert rep.copied == len(side_of(out)) and rep.linked == 0
    src = root / "c" / "05.png"
    dst = out / side_of(out)["c/05.png"] / "c" / "05.png"
    assert os.stat(src).st_ino != os.stat(dst).st_ino
    assert src.read_bytes() == dst.read_bytes() and os.stat(src).st_mtime_ns == os.stat(dst).st_mtime_ns
    # A linked split re-run with --copy turns the links into copies (the point of --copy).
    linked = tmp_path / "linked"
    split_folder(root, linked, seed=1, jobs=2)
    rep = split_folder(root, linked, seed=1, link="copy", jobs=2)
    assert rep.copied == len(side_of(linked)) and rep.unchanged == 0
    assert os.stat(root / "c" / "05.png").st_ino != os.stat(linked / side_of(linked)["c/05.png"] / "c" / "05.png").st_ino
    # Another file system (os.link fails with EXDEV): copies, no error.
    def cross_device(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(split_mod.os, "link", cross_device)
    rep = split_folder(root, tmp_path / "other_fs", seed=1, jobs=2)
    assert rep.copied == len(side_of(tmp_path / "other_fs")) and rep.linked == 0


def test_refused_places_and_options(source, tmp_path):
    root, _ = source
    cases = [
        (root / "inside", "inside the source"),
        (root, "is the source folder"),
        (root.parent, "contains the source"),
    ]
    for out, msg in cases:
        with pytest.raises(UserInputError, match=msg):
            split_folder(root, out)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(UserInputError, match="holds no split.json"):
        split_folder(root, foreign, force=True)
    assert (foreign / "mine.txt").read_text() == "keep me" and len(list(foreign.iterdir())) == 1
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(UserInputError, match="is a file"):
        split_folder(root, afile)
    for kw, msg in [({"val": 0.6, "test": 0.4}, "less than 1 together"), ({"val": -0.1}, "--val -0.1"),
                    ({"near_distance": 64}, "--near 64"), ({"link": "symlink"}, "link 'symlink'")]:
        with pytest.raises(UserInputError, match=msg):
            split_folder(root, tmp_path / "o", **kw)
    # An already split folder is not split again.
    done = tmp_path / "done"
    split_folder(root, done, seed=0, jobs=2)
    with pytest.raises(UserInputError, match="already split"):
        split_folder(done, tmp_path / "again")
    assert not (tmp_path / "o").exists() and not (tmp_path / "again").exists()


def test_split_cli_and_subprocess(source, tmp_path):
    root, planted = source
    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(app, ["dataset", "split", str(root), "--out", str(out), "--val", "0.2", "--test", "0.1",
                              "--seed", "2", "--json", "--jobs", "2"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["settings"]["seed"] == 2 and len(doc["groups"]) == len(planted) and doc["left_out"][0]["path"] == "b/broken.png"
    res = runner.invoke(app, ["dataset", "split", str(root), "--out", str(out), "--seed", "9"])
    assert res.exit_code == 2 and "--force" in res.output
    res = runner.invoke(app, ["dataset", "split", str(root), "--out", str(root / "x")])
    assert res.exit_code == 2 and "inside the source" in res.output
    exe = Path(sys.executable).with_name("mobilegen")
    sub = tmp_path / "sub"
    p = subprocess.run([str(exe), "dataset", "split", str(root), "--out", str(sub), "--copy", "--seed", "2",
                        "--val", "0.2", "--test", "0.1"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "copied" in p.stdout and "left out 1 corrupt image: b/broken.png" in p.stdout
    assert side_of(sub) == side_of(out)


def test_a_tampered_manifest_cannot_remove_files_outside_the_split(tmp_path):
    src = tmp_path / "src"
    for i in range(3):
        save(textured(i), src / "x" / f"{i}.png")
        save(textured(20 + i), src / "y" / f"{i}.png")
    out = tmp_path / "out"
    split_folder(src, out, jobs=1)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    man = json.loads((out / MANIFEST).read_text())
    man["files"] += ["../victim.txt", "split.json", "train/x"]
    (out / MANIFEST).write_text(json.dumps(man))
    split_folder(src, out, jobs=1)  # names outside OUT/<split>/<class>/ are not its to remove
    assert victim.read_text() == "keep" and (out / MANIFEST).is_file()
    man["files"].append("train/../../victim.txt")
    (out / MANIFEST).write_text(json.dumps(man))
    with pytest.raises(UserInputError, match="resolves outside"):
        split_folder(src, out, jobs=1)
    assert victim.read_text() == "keep"
