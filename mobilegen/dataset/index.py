"""One pass over an image folder: a small record per image (never its pixels), streamed.

Two layouts are read, with the same ignore rules as mobilegen/data/folder.py (hidden entries,
files directly in a root, files without an image suffix; images may sit in nested folders below
their class folder):
- a class folder: ROOT/<class>/...;
- a split folder: ROOT/{train,val,test}/<class>/... . ROOT is taken as one when every non-hidden
  folder in it is named train, val or test and each of them holds at least one folder (a class
  folder named "train" holds images, not class folders).

Each image is read twice from the OS cache and decoded once: its bytes are hashed (sha256, for
exact duplicates), then Pillow decodes it completely, JPEG in draft mode (libjpeg's DCT scaling
straight to a small grayscale image: a photo decodes several times faster, and a truncated file
still fails), and the perceptual hash is computed from that (mobilegen.dataset.phash). What counts
as corrupt follows mobilegen.dataset.imagefile, at train's own pixel limit, so `dataset check`
calls corrupt what `train` would skip.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mobilegen.data.folder import _class_images
from mobilegen.dataset import phash
from mobilegen.dataset.imagefile import FORMAT_SUFFIX, _sniff_text
from mobilegen.dataset.stream import ordered_map
from mobilegen.errors import UserInputError

SPLITS = ("train", "val", "test")
DEFAULT_JOBS = min(8, os.cpu_count() or 1)
# on_progress is called every this many images (and once at the end).
PROGRESS_EVERY = 1000


@dataclass(frozen=True, slots=True)
class ImageRecord:
    path: Path  # absolute
    split: str | None  # "train" / "val" / "test" in a split folder, else None
    cls: str  # the class folder's name
    name: str  # the path below the class folder (posix), as train's relative_name gives it
    sha256: str | None  # hex of the file's bytes; None when unreadable
    phash: int | None  # 64-bit perceptual hash; None when the image is not usable
    detailed: bool  # False: flat or nearly (see phash): not compared for near-duplicates
    width: int | None
    height: int | None
    problem: str | None  # why train would skip it (corrupt, unreadable, ...), else None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def rel(self, root: Path) -> str:
        """The path below ROOT (posix), for reports."""
        try:
            return self.path.relative_to(root).as_posix()
        except ValueError:
            return str(self.path)


@dataclass(frozen=True)
class Layout:
    root: Path
    splits: tuple[str | None, ...]  # (None,) for a class folder, else the split folders present
    classes: dict[str | None, list[str]]  # per split: its class folders, sorted

    @property
    def is_split(self) -> bool:
        return self.splits != (None,)

    @property
    def all_classes(self) -> list[str]:
        return sorted({c for cs in self.classes.values() for c in cs})

    def base(self, split: str | None) -> Path:
        return self.root if split is None else self.root / split


def _subdirs(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_layout(root: Path) -> Layout:
    """The layout of ROOT (see the module docstring); UserInputError when ROOT is no folder or holds
    no class folder."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise UserInputError(f"{root}: no such directory" + (" (it is a file)" if root.exists() else "")
                             + "; expected a folder with one subfolder of images per class")
    top = _subdirs(root)
    if not top:
        raise UserInputError(f"{root}: no class folders; expected one subfolder of images per class")
    if set(top) <= set(SPLITS) and all(_subdirs(root / s) for s in top):
        splits = tuple(s for s in SPLITS if s in top)
        return Layout(root, splits, {s: _subdirs(root / s) for s in splits})
    return Layout(root, (None,), {None: top})


def _tasks(layout: Layout) -> Iterator[tuple[str | None, str, str, Path]]:
    for split in layout.splits:
        base = layout.base(split)
        for cls in layout.classes[split]:
            for p in _class_images(base / cls):
                yield split, cls, p.relative_to(base / cls).as_posix(), p


def _max_pixels() -> int:
    from PIL import Image

    return 2 * (Image.MAX_IMAGE_PIXELS or 1 << 62)  # train's limit (mobilegen.data.folder)


def examine(split: str | None, cls: str, name: str, path: Path) -> ImageRecord:
    """The record of one image file (see the module docstring)."""
    from PIL import Image, UnidentifiedImageError

    def bad(reason: str, sha: str | None = None, w=None, h=None) -> ImageRecord:
        return ImageRecord(path, split, cls, name, sha, None, False, w, h, reason)

    try:
        with open(path, "rb") as f:
            sha = hashlib.file_digest(f, "sha256").hexdigest()
        size = path.stat().st_size
    except OSError as e:
        return bad(f"unreadable: {e.strerror or e}")
    if size == 0:
        return bad("empty", sha)
    w = h = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt = im.format or "unknown"
                if fmt not in FORMAT_SUFFIX:
                    return bad(f"{fmt} image; allowed: {', '.join(FORMAT_SUFFIX)}", sha)
                w, h = im.size
                if w * h > _max_pixels():
                    return bad(f"{w}x{h} pixels, over the limit of {_max_pixels()}", sha, w, h)
                phash.draft(im)
                im.load()
                value, detailed = phash.phash_image(im)
    except UnidentifiedImageError:
        try:
            with open(path, "rb") as f:
                head = f.read(512)
        except OSError:
            head = b""
        return bad(_sniff_text(head) or "not an image Pillow can read", sha)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        return bad(" ".join(str(e).split()) or type(e).__name__, sha, w, h)
    return ImageRecord(path, split, cls, name, sha, value, detailed, w, h, None)


def index_folder(
    root: Path,
    *,
    jobs: int = DEFAULT_JOBS,
    layout: Layout | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> Iterator[ImageRecord]:
    """A record per image file of ROOT, in train's order (split, class, relative path), decoded on
    `jobs` threads through stream.ordered_map: at most 2 * jobs images are in flight and no pixels
    outlive their worker, so memory does not grow with the folder (the caller keeps the records)."""
    layout = layout or read_layout(root)
    done = 0
    for out in ordered_map(lambda t: examine(*t), _tasks(layout), workers=max(1, jobs)):
        if out.error is not None:  # examine reports file problems itself; anything else is a bug
            raise out.error
        done += 1
        if on_progress is not None and done % PROGRESS_EVERY == 0:
            on_progress(f"indexed {done} images")
        yield out.value
    if on_progress is not None and done % PROGRESS_EVERY:
        on_progress(f"indexed {done} images")
