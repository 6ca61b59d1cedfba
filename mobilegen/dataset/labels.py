"""Class labels as folder names, and paths that cannot leave the output directory.

A label comes from a CSV cell or an annotation file, so it is untrusted: it becomes a directory
name under the output folder and later a line of the app's labels.txt. What is refused (and
reported, never silently rewritten) is anything that names a path rather than a class: `..`, `.`,
absolute paths, separators, drive letters, control characters, hidden names (train ignores folders
starting with "."), Windows device names. What is sanitized is cosmetic: Unicode is NFC-normalized,
runs of whitespace become one space, characters Windows or shells choke on become "_".
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from mobilegen.errors import UserInputError

# Longest label, in UTF-8 bytes (most file systems allow 255 per name; leave room for suffixes).
MAX_LABEL_BYTES = 100
# Replaced by "_": reserved on Windows or awkward in shells; "/" and "\\" are refused instead.
_UNSAFE_CHARS = set('<>:"|?*')
# Device names Windows will not create as folders, with or without an extension.
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}


class LabelError(UserInputError):
    """A label that cannot become a folder name; the message says why."""


def safe_label(raw: str) -> str:
    """The folder name for label `raw`, or LabelError naming the problem. Deterministic, so the
    same label always lands in the same folder across runs and commands."""
    if not isinstance(raw, str):
        raise LabelError(f"label {raw!r}: expected text")
    label = unicodedata.normalize("NFC", raw)
    label = " ".join(label.split())  # trims, and turns tabs/newlines/runs of spaces into one space
    if not label:
        raise LabelError(f"label {raw!r}: empty")
    if any(unicodedata.category(ch)[0] == "C" for ch in label):
        raise LabelError(f"label {raw!r}: contains control characters")
    if "/" in label or "\\" in label:
        raise LabelError(f"label {raw!r}: contains a path separator; a label names a class folder, not a path")
    if label in (".", ".."):
        raise LabelError(f"label {raw!r}: names a directory, not a class")
    if len(label) >= 2 and label[1] == ":" and label[0].isalpha():
        raise LabelError(f"label {raw!r}: looks like a drive path")
    if label.startswith("."):
        raise LabelError(f"label {raw!r}: starts with '.', a hidden folder that train ignores")
    label = "".join("_" if ch in _UNSAFE_CHARS else ch for ch in label)
    label = label.rstrip(" .")  # Windows drops trailing dots and spaces, so two labels would merge
    if not label:
        raise LabelError(f"label {raw!r}: nothing left after removing trailing dots")
    if label.split(".")[0].upper() in _WINDOWS_DEVICES:
        raise LabelError(f"label {raw!r}: a Windows device name")
    if len(label.encode()) > MAX_LABEL_BYTES:
        raise LabelError(f"label {raw!r}: longer than {MAX_LABEL_BYTES} bytes")
    return label


class LabelSet:
    """Labels seen so far, folded so that names differing only in case share one folder (the
    first spelling wins): on macOS and Windows `Cat/` and `cat/` are the same folder anyway, and
    train would otherwise see two classes on Linux and one elsewhere."""

    def __init__(self, existing: list[str] | tuple[str, ...] = ()):
        self._by_key: dict[str, str] = {}
        for name in existing:
            self._by_key.setdefault(name.casefold(), name)

    def folder(self, raw: str) -> str:
        """The folder for `raw` (LabelError when refused)."""
        label = safe_label(raw)
        return self._by_key.setdefault(label.casefold(), label)

    def __iter__(self):
        return iter(sorted(self._by_key.values()))


def inside(root: Path, *parts: str) -> Path:
    """root/parts..., checked to resolve inside root (symlinks followed): UserInputError otherwise.
    Every file the dataset commands write goes through here, so no label, file name or URL can
    place a file outside the output folder."""
    base = Path(root).resolve()
    path = base.joinpath(*parts)
    resolved = Path(os.path.realpath(path))
    if resolved != base and base not in resolved.parents:
        raise UserInputError(f"{path}: resolves outside {base}")
    return path
