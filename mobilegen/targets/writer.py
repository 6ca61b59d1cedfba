"""Writing a generated project safely (copier's rules).

- Every file is reported: created, identical, updated, conflict, or removed (stale).
- A file the user changed since the last generation (its hash differs from the one recorded in the
  provenance file) is a conflict: nothing is written unless `force`, and the conflicts are listed.
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
    action: str  # created | identical | updated | conflict | removed | kept


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
    conflicts = []
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
            conflicts.append(rel)
    for rel, old_sha in sorted(previous.items()):
        if rel in data:
            continue
        target = _safe_target(root, rel)
        if target.is_file():
            unchanged = _sha(target.read_bytes()) == old_sha
            actions.append(FileAction(rel, "removed" if unchanged else "kept"))
    if conflicts and not force:
        listing = ", ".join(conflicts[:10]) + (f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else "")
        raise ConflictError(
            f"{len(conflicts)} file(s) in {root} were changed since they were generated: {listing}; "
            "rerun with --force to overwrite them"
        )
    if dry_run:
        return actions
    root.mkdir(parents=True, exist_ok=True)
    for a in actions:
        target = _safe_target(root, a.path)
        if a.action in ("created", "updated", "conflict"):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".mobilegen-tmp")
            tmp.write_bytes(data[a.path])
            os.replace(tmp, target)
        elif a.action == "removed":
            target.unlink()
    prov = provenance_record(tool_version, model_sha256, options, data)
    (root / PROVENANCE).write_bytes(prov)
    return actions


def _read_previous(root: Path) -> dict[str, str]:
    p = root / PROVENANCE
    if not p.is_file():
        return {}
    try:
        files = json.loads(p.read_text(encoding="utf-8"))["files"]
        return {str(k): str(v) for k, v in files.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserInputError(f"{p} is not a mobilegen provenance file; remove it or choose another --out") from None
