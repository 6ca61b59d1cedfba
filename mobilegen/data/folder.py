"""Image folders: one subfolder per class, the validation split and a content hash for caches.

Layout: ROOT/<class>/<image> (images may sit in nested folders below the class folder). Class
names are the subfolder names, sorted; label i is classes[i]. What is ignored, on purpose:
hidden entries (names starting with "."), files directly in ROOT (a README, a labels file), and
files whose suffix is not an image suffix (mobilegen.inputs.IMAGE_SUFFIXES). Files with an image
suffix that PIL cannot decode (truncated, empty, not an image) are skipped and recorded in
ImageFolder.skipped with the reason; report_skipped prints them.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mobilegen.dataset.imagefile import image_problem
from mobilegen.errors import UserInputError
from mobilegen.inputs import IMAGE_SUFFIXES

# Decoding releases the GIL, so a few threads speed up the verification pass on big folders.
VERIFY_THREADS = min(8, os.cpu_count() or 1)
# report_skipped names this many files, then counts the rest.
REPORT_NAMES = 5
# Bytes read at a time when hashing a file.
HASH_CHUNK = 1 << 20
# Bumped when what content_hash covers changes, so old caches miss instead of matching wrongly.
HASH_VERSION = b"mobilegen-data-v1"
# The DATA argument that names the built-in dataset (mobilegen.data.builtin) instead of a folder.
BUILTIN_NAME = "builtin"


@dataclass(frozen=True)
class Sample:
    path: Path  # absolute
    label: int  # index into ImageFolder.classes


@dataclass
class ImageFolder:
    root: Path
    classes: list[str]  # sorted subfolder names
    samples: list[Sample]  # sorted by (class, relative path); only decodable images
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # undecodable files and why


def _decode_problem(path: Path) -> str | None:
    """None when PIL decodes `path` completely (as image_to_input will), else the reason. Any size
    Pillow itself decodes is accepted: train does not second-guess a folder the user assembled."""
    from PIL import Image

    # Pillow refuses images over twice MAX_IMAGE_PIXELS as decompression bombs; so do we.
    return image_problem(path, max_pixels=2 * (Image.MAX_IMAGE_PIXELS or 1 << 62))


def _is_hidden(p: Path, base: Path) -> bool:
    return any(part.startswith(".") for part in p.relative_to(base).parts)


def _class_images(class_dir: Path) -> list[Path]:
    """Image files under `class_dir` (recursively), sorted by relative path."""
    found = [
        p
        for p in class_dir.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and not _is_hidden(p, class_dir) and p.is_file()
    ]
    return sorted(found, key=lambda p: p.relative_to(class_dir).as_posix())


def scan_folder(root: Path, *, verify: bool = True) -> ImageFolder:
    """The classes and images of `root`. verify=True decodes every image once to find corrupt
    ones (skipped, with the reason); verify=False trusts the files (for data mobilegen wrote).
    One-line UserInputError: no such directory, no class folders, a single class, or a class
    folder without a decodable image (named)."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise UserInputError(f"{root}: no such directory" + (" (it is a file)" if root.exists() else "") + "; expected a folder with one subfolder of images per class")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserInputError(f"{root}: no class folders; expected one subfolder of images per class")
    if len(classes) == 1:
        raise UserInputError(f"{root}: only one class folder ({classes[0]}); a classifier needs at least two")
    per_class = {c: _class_images(root / c) for c in classes}
    for c, paths in per_class.items():
        if not paths:
            raise UserInputError(f"{root / c}: empty class folder; expected images ({', '.join(IMAGE_SUFFIXES)})")
    problems: dict[Path, str | None] = {}
    if verify:
        every = [p for paths in per_class.values() for p in paths]
        with ThreadPoolExecutor(VERIFY_THREADS) as pool:
            problems = dict(zip(every, pool.map(_decode_problem, every)))
    samples, skipped = [], []
    for label, c in enumerate(classes):
        good = 0
        for p in per_class[c]:
            reason = problems.get(p)
            if reason is None:
                samples.append(Sample(p, label))
                good += 1
            else:
                skipped.append((p, reason))
        if not good:
            raise UserInputError(f"{root / c}: no decodable image in the class folder ({len(per_class[c])} corrupt)")
    return ImageFolder(root=root, classes=classes, samples=samples, skipped=skipped)


def resolve_data(spec: str | Path, *, progress=None) -> ImageFolder:
    """"builtin" -> the built-in dataset (rendered into the cache on first use, announced through
    progress(str) when given); anything else is an image folder (write ./builtin for a folder of
    that name)."""
    if isinstance(spec, str) and spec == BUILTIN_NAME:
        from mobilegen.data import builtin

        # Files mobilegen rendered itself: no need to decode each one again.
        return scan_folder(builtin.render_builtin(progress=progress), verify=False)
    return scan_folder(Path(spec))


def relative_name(sample: Sample, classes: list[str]) -> str:
    """The sample's path below its class folder (posix), the part of its identity that survives
    moving the dataset: found as the nearest ancestor folder named like its class; a sample
    outside such a folder is named by its file name."""
    cls = classes[sample.label]
    parts = Path(sample.path).parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == cls:
            return "/".join(parts[i + 1 :])
    return Path(sample.path).name


def _split_key(seed: int, cls: str, name: str) -> bytes:
    # A hash of the name rather than a PRNG shuffle: the same on every platform and numpy version,
    # and a sample keeps its side of the split when other images are added (mostly; the counts move).
    return hashlib.sha256(f"{seed}\0{cls}\0{name}".encode()).digest()


def split(folder: ImageFolder, val_fraction: float = 0.2, seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """(train, val): deterministic for a seed, stratified per class, disjoint. Each class sends
    round(val_fraction * n) of its n images to val, at least 1 and at most n - 1 when n >= 2 (a
    class with one image stays in train); val_fraction = 0 gives an empty val. Both lists keep
    folder.samples' order."""
    if not 0.0 <= val_fraction < 1.0:
        raise UserInputError(f"validation fraction {val_fraction}: expected a number in [0, 1)")
    val_set: set[Sample] = set()
    for label, cls in enumerate(folder.classes):
        mine = [s for s in folder.samples if s.label == label]
        n = len(mine)
        if val_fraction == 0.0 or n < 2:
            continue
        k = min(max(round(val_fraction * n), 1), n - 1)
        order = sorted(mine, key=lambda s: _split_key(seed, cls, relative_name(s, folder.classes)))
        val_set.update(order[:k])
    train = [s for s in folder.samples if s not in val_set]
    val = [s for s in folder.samples if s in val_set]
    return train, val


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def content_hash(samples: list[Sample], classes: list[str]) -> str:
    """sha256 hex over the class list and, per sample, (class name, relative path, sha256 of the
    file's bytes), in sorted order: changes when any image's bytes, name or label changes, or an
    image is added or removed; not when the folder moves or the list is reordered."""
    entries = sorted(
        (classes[s.label], relative_name(s, classes), _file_sha256(s.path)) for s in samples
    )
    h = hashlib.sha256(HASH_VERSION)
    h.update(("\0".join(classes) + "\n").encode())
    for cls, name, digest in entries:
        h.update(f"{cls}\0{name}\0{digest}\n".encode())
    return h.hexdigest()


def report_skipped(folder: ImageFolder, progress) -> None:
    """One progress line naming the skipped files (the first few, then a count); nothing when none."""
    n = len(folder.skipped)
    if not n:
        return

    def name(p: Path) -> str:
        try:
            return Path(p).relative_to(folder.root).as_posix()
        except ValueError:
            return str(p)

    listed = ", ".join(f"{name(p)} ({reason})" for p, reason in folder.skipped[:REPORT_NAMES])
    more = f", and {n - REPORT_NAMES} more" if n > REPORT_NAMES else ""
    progress(f"skipped {n} corrupt image{'s' if n != 1 else ''}: {listed}{more}")
