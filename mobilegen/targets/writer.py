"""Writing a generated project safely (copier's rules).

- Every file is reported: created, identical, updated, conflict, or removed (stale).
- A conflict stops the whole write unless `force` (then the generated content wins), and the
  conflicts are listed in one line, each kind said as such:
  * a file the user changed since the last generation (its hash differs from the one recorded in
    the provenance file);
  * a stale file (generated last time, not generated now) that the user changed: it would be
    deleted; it is kept unless `force`. An unchanged stale file is removed;
  * a file in the destination that mobilegen never wrote (not in the provenance record) where a
    generated file goes.
- Nothing is written outside the destination: relative paths only, no `..`, and no symlink inside
  the destination may lead out of it.
- A dry run reports the same without touching the disk.
- The provenance file records the tool version, the model's sha256, the options and every
  generated file's sha256; it carries no timestamps, so the same inputs give identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mobilegen.errors import UserInputError

PROVENANCE = "mobilegen.json"


@dataclass
class FileAction:
    path: str
    action: str  # created | identical | updated | conflict | removed
    # conflict: overwritten (or, for a stale file, deleted) under `force`; otherwise nothing is written.


class ConflictError(UserInputError):
    pass


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def _safe_target(root: Path, rel: str) -> Path:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise UserInputError(f"refusing to write {rel!r}: not a relative path inside the destination")
    target = root.joinpath(*p.parts)
    # Resolve through any symlinks that already exist on the way.
    resolved = target.resolve()
    if resolved != root.resolve() and root.resolve() not in resolved.parents:
        raise UserInputError(f"refusing to write {rel!r}: it resolves to {resolved}, outside {root}")
    return target


def provenance_record(tool_version: str, model_sha256: str, options: dict, files: dict[str, bytes]) -> bytes:
    record = {
        "generator": "mobilegen",
        "version": tool_version,
        "model_sha256": model_sha256,
        "options": options,
        "files": {path: _sha(data) for path, data in sorted(files.items())},
    }
    return (json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_project(
    root: Path, files: dict[str, str | bytes], *, tool_version: str, model_sha256: str, options: dict,
    force: bool = False, dry_run: bool = False,
) -> list[FileAction]:
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise UserInputError(f"{root} exists and is not a directory")
    data = {rel: _as_bytes(c) for rel, c in sorted(files.items())}
    previous = _read_previous(root)
    actions: list[FileAction] = []
    edited: list[str] = []  # generated last time, changed by the user since
    stale_edited: list[str] = []  # generated last time but not now, changed by the user since
    foreign: list[str] = []  # not written by mobilegen (absent from the provenance record)
    for rel, content in data.items():
        target = _safe_target(root, rel)
        if not target.exists():
            actions.append(FileAction(rel, "created"))
            continue
        if not target.is_file():
            raise UserInputError(f"{target} exists and is not a file")
        current = target.read_bytes()
        if current == content:
            actions.append(FileAction(rel, "identical"))
        elif previous.get(rel) == _sha(current):
            actions.append(FileAction(rel, "updated"))
        else:
            actions.append(FileAction(rel, "conflict"))
            (edited if rel in previous else foreign).append(rel)
    for rel, old_sha in sorted(previous.items()):
        if rel in data:
            continue
        target = _safe_target(root, rel)
        if target.is_file():
            if _sha(target.read_bytes()) == old_sha:
                actions.append(FileAction(rel, "removed"))
            else:
                actions.append(FileAction(rel, "conflict"))
                stale_edited.append(rel)
    if (edited or stale_edited or foreign) and not force:
        raise ConflictError(_conflict_message(root, edited, stale_edited, foreign))
    if dry_run:
        return actions
    root.mkdir(parents=True, exist_ok=True)
    for a in actions:
        target = _safe_target(root, a.path)
        if a.action in ("created", "updated", "conflict") and a.path in data:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".mobilegen-tmp")
            tmp.write_bytes(data[a.path])
            os.replace(tmp, target)
        elif a.action in ("removed", "conflict"):  # a stale file (a changed one only under force)
            target.unlink()
    prov = provenance_record(tool_version, model_sha256, options, data)
    (root / PROVENANCE).write_bytes(prov)
    return actions


def _listing(paths: list[str]) -> str:
    return ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")


def _conflict_message(root: Path, edited: list[str], stale_edited: list[str], foreign: list[str]) -> str:
    """One line naming every conflict by its kind, then what --force would do."""
    parts = []
    if edited:
        parts.append(f"{len(edited)} file(s) in {root} were changed since they were generated: {_listing(edited)}")
    if stale_edited:
        parts.append(f"{len(stale_edited)} file(s) in {root} that mobilegen generated before and no longer generates "
                     f"were changed since, so they are kept instead of deleted: {_listing(stale_edited)}")
    if foreign:
        parts.append(f"{len(foreign)} file(s) in {root} were not written by mobilegen (they are not in its "
                     f"{PROVENANCE}) and would be overwritten: {_listing(foreign)}")
    does = ["overwrite" if edited or foreign else "", "delete" if stale_edited else ""]
    return "; ".join(parts) + f"; rerun with --force to {' or '.join(d for d in does if d)} them"


def _read_previous(root: Path) -> dict[str, str]:
    p = root / PROVENANCE
    if not p.is_file():
        return {}
    try:
        files = json.loads(p.read_text(encoding="utf-8"))["files"]
        return {str(k): str(v) for k, v in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserInputError(f"{p} is not a mobilegen provenance file; remove it or choose another --out") from None
