"""`dataset check`: what is wrong with an image folder before it is trained on.

Findings, from one streamed pass (mobilegen.dataset.index) over a class folder or a split folder:
- errors (exit 1): corrupt or unreadable images (train would skip them), exact or near duplicates
  across splits (validation or test scores would flatter the model), a class with no usable image
  (in a split folder: none in train), fewer than two classes;
- warnings (exit 0 unless --strict): duplicates across classes (a label conflict: the same picture
  under two labels), duplicates within a class, tiny images (under --min-side on a side), low-detail
  images (flat or plain gradients: not compared for near-duplicates, see phash), class imbalance
  (the largest class over IMBALANCE_WARN times the smallest), a split missing a class, and for a
  class folder the duplicate groups that train's own validation split
  (mobilegen.data.folder.split at --val-split and --seed, what `mobilegen train DIR` does) would put
  on both sides: `dataset split` keeps such groups together.
Duplicates are groups: union-find over pairs of equal bytes (sha256) and of perceptual hashes at
most --near bits apart (phash.near_pairs, over distinct hashes), so A~B and B~C make one group.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mobilegen.data import folder as data_folder
from mobilegen.dataset.index import DEFAULT_JOBS, ImageRecord, Layout, index_folder, read_layout
from mobilegen.dataset.phash import DEFAULT_NEAR_DISTANCE, near_pairs
from mobilegen.errors import UserInputError

DEFAULT_MIN_SIDE = 32
# Largest class over smallest at or above this: a warning.
IMBALANCE_WARN = 3.0
# summary() lists this many examples per finding, then counts the rest (the JSON has them all).
SHOW = 5


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        p = self.parent
        while p[a] != a:
            p[a] = p[p[a]]
            a = p[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


def duplicate_groups(records: Sequence[ImageRecord], near_distance: int | None = DEFAULT_NEAR_DISTANCE) -> list[list[int]]:
    """Groups (sorted lists of indices into records, size >= 2, sorted by first index) of usable
    images that are exact duplicates (same sha256) or near ones (detailed images whose perceptual
    hashes are at most near_distance apart; None: exact only), closed transitively."""
    uf = _UnionFind(len(records))
    first_by_sha: dict[str, int] = {}
    first_by_hash: dict[int, int] = {}
    for i, r in enumerate(records):
        if not r.ok:
            continue
        j = first_by_sha.setdefault(r.sha256, i)
        if j != i:
            uf.union(j, i)
        if near_distance is not None and r.detailed:
            j = first_by_hash.setdefault(r.phash, i)
            if j != i:
                uf.union(j, i)
    if near_distance is not None and len(first_by_hash) > 1:
        reps = list(first_by_hash.values())
        for a, b, _ in near_pairs(list(first_by_hash), near_distance):
            uf.union(reps[a], reps[b])
    members: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        if r.ok:
            members[uf.find(i)].append(i)
    return sorted((m for m in members.values() if len(m) > 1), key=lambda m: m[0])


@dataclass
class DuplicateGroup:
    members: list[ImageRecord]
    exact: bool  # all members have the same bytes
    cross_split: bool
    cross_class: bool
    straddles_train_split: bool = False  # a class folder: train's own val split cuts it

    @property
    def where(self) -> str:
        return "across splits" if self.cross_split else "across classes" if self.cross_class else "within a class"


@dataclass
class CheckReport:
    root: Path
    layout: Layout
    min_side: int
    near_distance: int | None
    val_split: float
    seed: int
    counts: dict[str | None, Counter] = field(default_factory=dict)  # split -> class -> usable images
    files: int = 0
    corrupt: list[ImageRecord] = field(default_factory=list)
    tiny: list[ImageRecord] = field(default_factory=list)
    low_detail: list[ImageRecord] = field(default_factory=list)
    groups: list[DuplicateGroup] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def class_totals(self) -> Counter:
        total: Counter = Counter({c: 0 for c in self.layout.all_classes})
        for per in self.counts.values():
            total.update(per)
        return total

    @property
    def imbalance(self) -> float | None:
        """Largest class over smallest (usable images, all splits); None when a class has none."""
        t = self.class_totals()
        if not t or min(t.values()) == 0:
            return None
        return max(t.values()) / min(t.values())

    def _rel(self, r: ImageRecord) -> str:
        return r.rel(self.root)

    def to_json(self) -> dict:
        def member(r: ImageRecord) -> dict:
            return {"path": self._rel(r), "split": r.split, "class": r.cls, "sha256": r.sha256,
                    "phash": f"{r.phash:016x}"}

        return {
            "root": str(self.root),
            "layout": "splits" if self.layout.is_split else "classes",
            "files": self.files,
            "usable": sum(self.class_totals().values()),
            "classes": {c: {"images": n, **({"by_split": {s: self.counts[s][c] for s in self.layout.splits}}
                                             if self.layout.is_split else {})}
                        for c, n in sorted(self.class_totals().items())},
            "imbalance": self.imbalance,
            "corrupt": [{"path": self._rel(r), "reason": r.problem} for r in self.corrupt],
            "tiny": [{"path": self._rel(r), "width": r.width, "height": r.height} for r in self.tiny],
            "low_detail": [self._rel(r) for r in self.low_detail],
            "duplicates": [{"kind": "exact" if g.exact else "near", "where": g.where, "cross_split": g.cross_split,
                            "cross_class": g.cross_class, "straddles_train_split": g.straddles_train_split,
                            "members": [member(r) for r in g.members]} for g in self.groups],
            "settings": {"min_side": self.min_side, "near_distance": self.near_distance,
                         "val_split": self.val_split, "seed": self.seed},
            "errors": self.errors,
            "warnings": self.warnings,
            "ok": self.ok,
        }

    def summary(self) -> str:
        t = self.class_totals()
        lines = [f"{self.root}: {self.files} image files, {sum(t.values())} usable, {len(t)} classes"
                 + (f" in {', '.join(self.layout.splits)}" if self.layout.is_split else "")]
        width = max((len(c) for c in t), default=0)
        for c, n in sorted(t.items()):
            by = ("  (" + ", ".join(f"{s} {self.counts[s][c]}" for s in self.layout.splits) + ")") if self.layout.is_split else ""
            lines.append(f"  {c:<{width}}  {n}{by}")
        if self.imbalance is not None:
            lines.append(f"imbalance (largest / smallest class): {self.imbalance:.2f}")
        for title, items in (("error", self.errors), ("warning", self.warnings)):
            lines.extend(f"{title}: {m}" for m in items)
        lines.append("ok" if self.ok and not self.warnings else
                     f"{len(self.errors)} error{'s' if len(self.errors) != 1 else ''}, "
                     f"{len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''}")
        return "\n".join(lines)


def _listed(rel: Callable[[ImageRecord], str], items: list, fmt: Callable) -> str:
    shown = ", ".join(fmt(x) for x in items[:SHOW])
    return shown + (f", and {len(items) - SHOW} more" if len(items) > SHOW else "")


def _train_val_paths(layout: Layout, records: list[ImageRecord], val_split: float, seed: int) -> set[Path]:
    """The images train's own split (mobilegen.data.folder.split) sends to validation."""
    classes = layout.classes[None]
    label = {c: i for i, c in enumerate(classes)}
    samples = [data_folder.Sample(r.path, label[r.cls]) for r in records if r.ok]
    folder = data_folder.ImageFolder(root=layout.root, classes=classes, samples=samples)
    _, val = data_folder.split(folder, val_split, seed)
    return {s.path for s in val}


def check_folder(
    root: Path,
    *,
    min_side: int = DEFAULT_MIN_SIDE,
    near_distance: int | None = DEFAULT_NEAR_DISTANCE,
    val_split: float = 0.2,
    seed: int = 0,
    jobs: int = DEFAULT_JOBS,
    on_progress: Callable[[str], None] | None = None,
) -> CheckReport:
    """Check ROOT (a class folder or a split folder); see the module docstring."""
    if min_side < 0:
        raise UserInputError(f"--min-side {min_side}: expected 0 or more pixels")
    if near_distance is not None and not 0 <= near_distance < 64:
        raise UserInputError(f"--near {near_distance}: expected a Hamming distance from 0 to 63 bits")
    if not 0.0 <= val_split < 1.0:
        raise UserInputError(f"--val-split {val_split}: expected a number in [0, 1)")
    layout = read_layout(root)
    rep = CheckReport(root=layout.root, layout=layout, min_side=min_side, near_distance=near_distance,
                      val_split=val_split, seed=seed)
    rep.counts = {s: Counter({c: 0 for c in layout.classes[s]}) for s in layout.splits}
    records: list[ImageRecord] = []
    for r in index_folder(layout.root, jobs=jobs, layout=layout, on_progress=on_progress):
        records.append(r)
        if not r.ok:
            rep.corrupt.append(r)
            continue
        rep.counts[r.split][r.cls] += 1
        if min(r.width, r.height) < min_side:
            rep.tiny.append(r)
        if not r.detailed:
            rep.low_detail.append(r)
    rep.files = len(records)

    val_paths = _train_val_paths(layout, records, val_split, seed) if not layout.is_split and val_split > 0 else set()
    for idx in duplicate_groups(records, near_distance):
        members = [records[i] for i in idx]
        in_val = {m.path in val_paths for m in members}
        rep.groups.append(DuplicateGroup(
            members=members,
            exact=len({m.sha256 for m in members}) == 1,
            cross_split=len({m.split for m in members}) > 1,
            cross_class=len({m.cls for m in members}) > 1,
            straddles_train_split=len(in_val) > 1,
        ))

    rel = rep._rel
    E, W = rep.errors.append, rep.warnings.append
    if rep.corrupt:
        E(f"{len(rep.corrupt)} corrupt or unreadable image{'s' if len(rep.corrupt) != 1 else ''} (train skips them): "
          + _listed(rel, rep.corrupt, lambda r: f"{rel(r)} ({r.problem})"))
    totals = rep.class_totals()
    empty = [c for c, n in sorted(totals.items()) if n == 0]
    if empty:
        E(f"class{'es' if len(empty) != 1 else ''} with no usable image: {', '.join(empty)}")
    if len(totals) < 2:
        E(f"{len(totals)} class folder{'s' if len(totals) != 1 else ''}; a classifier needs at least two")
    if layout.is_split:
        if "train" in layout.splits:
            no_train = [c for c in layout.all_classes if rep.counts["train"][c] == 0 and c not in empty]
            if no_train:
                E(f"train has no usable image of: {', '.join(no_train)}")
        for s in layout.splits:
            missing = [c for c in layout.all_classes if rep.counts[s][c] == 0 and c not in empty]
            if missing and s != "train":
                W(f"{s} has no usable image of: {', '.join(missing)} (its labels would not line up with train's)")

    def group_text(g: DuplicateGroup) -> str:
        return " ~ ".join(rel(m) for m in g.members[:SHOW]) + (f" (+{len(g.members) - SHOW})" if len(g.members) > SHOW else "")

    def dup_line(groups: list[DuplicateGroup], what: str) -> str:
        n_img = sum(len(g.members) for g in groups)
        return (f"{len(groups)} duplicate group{'s' if len(groups) != 1 else ''} {what} ({n_img} images): "
                + _listed(rel, groups, lambda g: f"[{'exact' if g.exact else 'near'}] {group_text(g)}"))

    cross_split = [g for g in rep.groups if g.cross_split]
    cross_class = [g for g in rep.groups if g.cross_class]
    within = [g for g in rep.groups if not g.cross_split and not g.cross_class]
    if cross_split:
        E(dup_line(cross_split, "across splits (the held-out images are seen in training)"))
    if cross_class:
        W(dup_line(cross_class, "across classes (the same picture under different labels)"))
    if within:
        W(dup_line(within, "within a class"))
    straddle = [g for g in rep.groups if g.straddles_train_split]
    if straddle:
        W(dup_line(straddle, f"that train's own validation split (--val-split {val_split:g}, --seed {seed}) puts on "
                   "both sides; `mobilegen dataset split` keeps them together"))
    if rep.tiny:
        W(f"{len(rep.tiny)} image{'s' if len(rep.tiny) != 1 else ''} smaller than {min_side} px on a side: "
          + _listed(rel, rep.tiny, lambda r: f"{rel(r)} ({r.width}x{r.height})"))
    if rep.low_detail:
        W(f"{len(rep.low_detail)} low-detail image{'s' if len(rep.low_detail) != 1 else ''} (flat or a plain gradient; "
          "only exact duplicates of them are found): " + _listed(rel, rep.low_detail, rel))
    ratio = rep.imbalance
    if ratio is not None and ratio >= IMBALANCE_WARN:
        big = max(totals, key=lambda c: (totals[c], c))
        small = min(totals, key=lambda c: (totals[c], c))
        W(f"classes are imbalanced: {big} has {totals[big]} images, {small} {totals[small]} ({ratio:.1f}x)")
    return rep


def report_json(rep: CheckReport) -> str:
    return json.dumps(rep.to_json(), indent=2, sort_keys=False)
