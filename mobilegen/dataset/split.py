"""`dataset split`: a class folder -> OUT/train|val|test/<class>/..., with near-duplicates on one side.

- Deterministic by seed without a PRNG: each image's key is sha256(seed, class, name below the
  class folder), exactly the key train's own split uses (mobilegen.data.folder.split), so the same
  folder, seed and fractions give the same split on every machine, and an image mostly keeps its
  side when others are added.
- Stratified per class: class c with n usable images sends round(val * n) to val and round(test * n)
  to test, at least 1 each (for a fraction above 0) and leaving at least 1 in train when n >= 2;
  a class of one image stays in train. With test = 0 and no duplicates, val is exactly the
  validation set `mobilegen train ROOT --val-split VAL --seed SEED` would hold out.
- Near-duplicates together: exact (same bytes) and near (perceptual hash within --near bits) pairs
  are closed into groups by union-find (mobilegen.dataset.check.duplicate_groups); a group is one
  unit, keyed by its smallest member key. Units are taken in key order; a unit goes to val while
  every class it touches still has val room for all its members, else to test likewise, else to
  train. So no group is ever split, a class's val and test never exceed their quotas, and a group
  larger than the room left lands in train (reported).
- Corrupt images are left out and reported; tiny and low-detail ones are kept (check reports them).
- Files are hard links to the originals when OUT is on the same file system (no extra space; an
  edit to one is an edit to both), else copies (shutil.copy2: bytes and mtime); --copy always
  copies. Every file is written to a hidden temporary name and renamed into place.
- OUT/split.json records the source, the settings, the counts, every file and the groups. A re-run
  with the same source and settings changes nothing (files already right are not touched, and
  split.json is rewritten only when its content changes); a source that changed since is brought
  up to date (new images added, images gone removed). Other settings or another source in a
  non-empty OUT are refused unless force=True, which replaces that split. A non-empty OUT without
  split.json is always refused, as is OUT inside ROOT or ROOT inside OUT.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mobilegen.data.folder import _file_sha256, _split_key
from mobilegen.dataset.check import duplicate_groups
from mobilegen.dataset.index import DEFAULT_JOBS, SPLITS, ImageRecord, index_folder, read_layout
from mobilegen.dataset.labels import inside
from mobilegen.dataset.phash import DEFAULT_NEAR_DISTANCE
from mobilegen.errors import UserInputError

MANIFEST = "split.json"
MANIFEST_VERSION = 1
LINK_MODES = ("auto", "copy")
# summary() names this many examples, then counts the rest (the JSON has them all).
SHOW = 5


@dataclass
class SplitReport:
    source: Path
    out: Path
    settings: dict
    counts: dict[str, Counter] = field(default_factory=dict)  # side -> class -> images
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (path below source, reason)
    groups: list[tuple[str, list[str]]] = field(default_factory=list)  # (side, ["class/name", ...])
    linked: int = 0
    copied: int = 0
    unchanged: int = 0
    removed: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "source": str(self.source),
            "out": str(self.out),
            "settings": self.settings,
            "counts": {s: dict(sorted(self.counts[s].items())) for s in SPLITS},
            "written": {"linked": self.linked, "copied": self.copied, "unchanged": self.unchanged, "removed": self.removed},
            "left_out": [{"path": p, "reason": r} for p, r in self.left_out],
            "groups": [{"side": s, "members": m} for s, m in self.groups],
            "warnings": self.warnings,
        }

    def summary(self) -> str:
        classes = sorted({c for s in SPLITS for c in self.counts[s]})
        width = max([5] + [len(c) for c in classes])
        lines = [f"{self.source} -> {self.out} (seed {self.settings['seed']})",
                 f"  {'class':<{width}}  " + "  ".join(f"{s:>5}" for s in SPLITS)]
        for c in classes:
            lines.append(f"  {c:<{width}}  " + "  ".join(f"{self.counts[s][c]:>5}" for s in SPLITS))
        lines.append(f"  {'total':<{width}}  " + "  ".join(f"{sum(self.counts[s].values()):>5}" for s in SPLITS))
        lines.append(f"{len(self.groups)} duplicate group{'s' if len(self.groups) != 1 else ''} kept on one side; "
                     f"files: {self.linked} linked, {self.copied} copied, {self.unchanged} unchanged, {self.removed} removed")
        if self.left_out:
            shown = ", ".join(f"{p} ({r})" for p, r in self.left_out[:SHOW])
            more = f", and {len(self.left_out) - SHOW} more" if len(self.left_out) > SHOW else ""
            lines.append(f"left out {len(self.left_out)} corrupt image{'s' if len(self.left_out) != 1 else ''}: {shown}{more}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def quotas(n: int, val: float, test: float) -> tuple[int, int]:
    """(val, test) image counts for a class of n usable images (see the module docstring)."""
    if n < 2:
        return 0, 0
    k_val = max(round(val * n), 1) if val > 0 else 0
    k_test = max(round(test * n), 1) if test > 0 else 0
    while k_val + k_test > n - 1:  # leave train at least one
        if k_test >= k_val and k_test > 0:
            k_test -= 1
        else:
            k_val -= 1
    return k_val, k_test


def assign(records: list[ImageRecord], groups: list[list[int]], val: float, test: float, seed: int) -> list[str | None]:
    """The side ("train" / "val" / "test") of each record, None for the unusable ones."""
    usable = [i for i, r in enumerate(records) if r.ok]
    n_per_class = Counter(records[i].cls for i in usable)
    room = {c: dict(zip(("val", "test"), quotas(n, val, test))) for c, n in n_per_class.items()}
    grouped = {i for g in groups for i in g}
    units = [g for g in groups] + [[i] for i in usable if i not in grouped]
    keyed = sorted((min(_split_key(seed, records[i].cls, records[i].name) for i in u), u) for u in units)
    side: list[str | None] = [None] * len(records)
    for _, unit in keyed:
        need = Counter(records[i].cls for i in unit)
        chosen = "train"
        for s in ("val", "test"):
            if all(room[c][s] >= k for c, k in need.items()):
                chosen = s
                for c, k in need.items():
                    room[c][s] -= k
                break
        for i in unit:
            side[i] = chosen
    return side


def _check_places(root: Path, out: Path) -> None:
    if out == root:
        raise UserInputError(f"--out {out}: is the source folder; expected a separate folder")
    if root in out.parents:
        raise UserInputError(f"--out {out}: inside the source {root} (train would read the split as classes); expected a folder outside it")
    if out in root.parents:
        raise UserInputError(f"--out {out}: contains the source {root}; expected a folder outside it")
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out}: is a file; expected a folder")


def _previous(out: Path, source: Path, settings: dict, force: bool) -> dict | None:
    """The manifest of the split already in OUT (None when OUT is new or empty), after refusing
    what must not be overwritten."""
    if not out.is_dir() or not any(out.iterdir()):
        return None
    path = out / MANIFEST
    if not path.is_file():
        raise UserInputError(f"--out {out}: not empty and holds no {MANIFEST} (not a split made by `dataset split`); "
                             "expected a new or empty folder")
    try:
        prev = json.loads(path.read_text())
        if not isinstance(prev, dict) or prev.get("version") != MANIFEST_VERSION or not isinstance(prev.get("files"), list):
            raise ValueError("unexpected content")
    except (ValueError, UnicodeDecodeError) as e:
        raise UserInputError(f"{path}: unreadable ({e}); expected the {MANIFEST} of `dataset split` (remove the folder to start over)") from None
    theirs = dict(prev.get("settings", {}), source=prev.get("source"))
    mine = dict(settings, source=str(source))
    differ = [k for k in mine if theirs.get(k) != mine[k]]
    if differ and not force:
        raise UserInputError(f"--out {out}: holds a split made with other settings ("
                             + ", ".join(f"{k} {theirs.get(k)!r} there, {mine[k]!r} now" for k in differ)
                             + "); pass --force to replace it, or choose another folder")
    return prev


def _same_file(dst: Path, src: Path, sha: str, copy: bool) -> bool:
    try:
        st = dst.stat()
    except FileNotFoundError:
        return False
    linked = os.path.samefile(dst, src)
    if linked:
        return not copy  # --copy replaces a hard link with a copy
    return st.st_size == src.stat().st_size and _file_sha256(dst) == sha


def _place(src: Path, dst: Path, copy: bool) -> str:
    """Put src at dst (atomically, through a hidden temporary name): "linked" or "copied"."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.mobilegen-tmp")
    if tmp.exists():
        tmp.unlink()
    how = "copied"
    if not copy:
        try:
            os.link(src, tmp)
            how = "linked"
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EACCES, errno.ENOSYS):
                raise
    if how == "copied":
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)
    return how


def _prune(path: Path, stop: Path) -> None:
    """Remove empty folders from path up to (not including) stop."""
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent


def split_folder(
    root: Path,
    out: Path,
    *,
    val: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    near_distance: int | None = DEFAULT_NEAR_DISTANCE,
    link: str = "auto",
    force: bool = False,
    jobs: int = DEFAULT_JOBS,
    on_progress: Callable[[str], None] | None = None,
) -> SplitReport:
    """Split class folder ROOT into OUT; see the module docstring. link: "auto" (hard links where
    possible, else copies) or "copy"."""
    for name, f in (("--val", val), ("--test", test)):
        if not 0.0 <= f < 1.0:
            raise UserInputError(f"{name} {f}: expected a fraction in [0, 1)")
    if val + test >= 1.0:
        raise UserInputError(f"--val {val} + --test {test}: expected less than 1 together (train needs images)")
    if near_distance is not None and not 0 <= near_distance < 64:
        raise UserInputError(f"--near {near_distance}: expected a Hamming distance from 0 to 63 bits")
    if link not in LINK_MODES:
        raise UserInputError(f"link {link!r}: expected one of {', '.join(LINK_MODES)}")
    copy = link == "copy"
    layout = read_layout(root)
    root = layout.root
    if layout.is_split:
        raise UserInputError(f"{root}: already split ({', '.join(layout.splits)}); expected a class folder (ROOT/<class>/<image>)")
    out = Path(os.path.abspath(Path(out).expanduser()))
    out = out.resolve() if out.exists() else out.parent.resolve() / out.name
    _check_places(root, out)
    settings = {"seed": seed, "val": val, "test": test, "near_distance": near_distance}
    prev = _previous(out, root, settings, force)

    records = list(index_folder(root, jobs=jobs, layout=layout, on_progress=on_progress))
    groups = duplicate_groups(records, near_distance)
    sides = assign(records, groups, val, test, seed)

    rep = SplitReport(source=root, out=out, settings=settings)
    rep.counts = {s: Counter() for s in SPLITS}
    for r, s in zip(records, sides):
        if s is None:
            rep.left_out.append((r.rel(root), r.problem))
        else:
            rep.counts[s][r.cls] += 1
    rep.groups = [(sides[g[0]], [f"{records[i].cls}/{records[i].name}" for i in g]) for g in groups]

    # Files: the plan, what a previous run left that is no longer in it, then the manifest.
    planned: dict[str, tuple[Path, str]] = {}
    for r, s in zip(records, sides):
        if s is not None:
            planned[f"{s}/{r.cls}/{r.name}"] = (r.path, r.sha256)
    out.mkdir(parents=True, exist_ok=True)
    if prev is not None:
        for rel in prev["files"]:
            parts = rel.split("/") if isinstance(rel, str) else []
            if len(parts) >= 3 and parts[0] in SPLITS and rel not in planned:  # only images it placed
                dst = inside(out, *parts)  # a tampered split.json cannot point outside OUT
                if dst.is_file() or dst.is_symlink():
                    dst.unlink()
                    rep.removed += 1
                    _prune(dst.parent, out)
    if on_progress is not None:
        on_progress(f"writing {len(planned)} files into {out}")
    for rel, (src, sha) in sorted(planned.items()):
        dst = inside(out, *rel.split("/"))
        if _same_file(dst, src, sha, copy):
            rep.unchanged += 1
            continue
        how = _place(src, dst, copy)
        if how == "linked":
            rep.linked += 1
        else:
            rep.copied += 1
    stray = _strays(out, planned)
    manifest = {
        "version": MANIFEST_VERSION,
        "source": str(root),
        "settings": settings,
        "counts": {s: dict(sorted(rep.counts[s].items())) for s in SPLITS},
        "files": sorted(planned),
        "groups": [{"side": s, "members": m} for s, m in rep.groups],
        "left_out": [{"path": p, "reason": r} for p, r in rep.left_out],
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    mpath = inside(out, MANIFEST)
    if not mpath.is_file() or mpath.read_text() != text:
        tmp = inside(out, f".{MANIFEST}.mobilegen-tmp")
        tmp.write_text(text)
        os.replace(tmp, mpath)

    # Warnings: what the split could not do, and what train will see.
    classes = sorted({r.cls for r in records})
    for s, f in (("val", val), ("test", test)):
        if f > 0:
            missing = [c for c in classes if rep.counts[s][c] == 0]
            if missing:
                rep.warnings.append(f"{s} has no image of {', '.join(missing)} (too few images, or all in one duplicate group); "
                                    f"OUT/{s} then lists fewer classes than OUT/train")
    by_group_size = sorted(((len(m), s) for s, m in rep.groups), reverse=True)
    if by_group_size and by_group_size[0][0] > 1:
        big = [m for s, m in rep.groups if len(m) == by_group_size[0][0]][0]
        if by_group_size[0][0] >= 10:
            rep.warnings.append(f"the largest duplicate group has {len(big)} images ({', '.join(big[:3])}, ...); it is one unit of the split")
    cross = [m for _, m in rep.groups if len({x.split('/')[0] for x in m}) > 1]
    if cross:
        rep.warnings.append(f"{len(cross)} duplicate group{'s span' if len(cross) != 1 else ' spans'} classes (a label conflict, "
                            f"see `dataset check`): {'; '.join(' ~ '.join(m[:3]) for m in cross[:SHOW])}")
    if stray:
        rep.warnings.append(f"{len(stray)} file{'s' if len(stray) != 1 else ''} in OUT not made by this split (train will read them): "
                            + ", ".join(stray[:SHOW]) + (f", and {len(stray) - SHOW} more" if len(stray) > SHOW else ""))
    return rep


def _strays(out: Path, planned: dict) -> list[str]:
    """Non-hidden files under OUT/train|val|test that the plan does not hold."""
    found = []
    for s in SPLITS:
        base = out / s
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                if f.startswith("."):
                    continue
                rel = (Path(dirpath) / f).relative_to(out).as_posix()
                if rel not in planned:
                    found.append(rel)
    return found
