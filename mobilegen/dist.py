"""`DIR/dist/`: what a CI pipeline publishes after `mobilegen build`, reproducibly.

    dist/android-sdk.zip     the Android SDK module (the project's sdk/, as `sdk/...`): drop it into a
                             Gradle project beside `app/`; it reads its versions from the project's
                             gradle/libs.versions.toml (the sample project has one)
    dist/android-sample.zip  the whole generated Android project (`android-sample/...`)
    dist/ios-sdk.zip         the Swift package: Package.swift and Sources/ (`<module>/...`)
    dist/ios-sample.zip      the whole generated iOS project (`ios-sample/...`)
    dist/report.html         the verification report without timings (the timed one is DIR/report.html)
    dist/manifest.json       tool version, model sha256, every artifact's sha256 and size, accuracy,
                             verification figures, precision, labels, the timestamp used, ok

The same inputs give byte-identical files, wherever and whenever they are built:

- A zip holds exactly the files the generator wrote (the project's provenance record, mobilegen.json),
  so never `verify`'s host build folders (`.mobilegen/`) nor anything else found in the project.
- Entries are sorted by name; files only, no directory entries (unzip creates the folders; a
  generated project has no empty folder).
- Every entry carries the same timestamp: SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/
  source-date-epoch/) as UTC, else DEFAULT_EPOCH, 1980-01-01 00:00:00 UTC, the earliest time a zip
  can hold (an earlier SOURCE_DATE_EPOCH is clamped to it). Zip times have 2-second resolution.
- Permissions are 0644, or 0755 for a file the generator made executable (gradlew); Unix as the
  creating system; no extra fields (no extended timestamps, no uid/gid), no comments.
- Deflate at level 9 (zlib; the same zlib gives the same bytes).
- manifest.json holds no time but SOURCE_DATE_EPOCH's and no absolute path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable

from mobilegen.errors import UserInputError
from mobilegen.targets.writer import PROVENANCE

DEFAULT_EPOCH = 315532800  # 1980-01-01T00:00:00Z: the zip format's (MS-DOS) earliest date
MAX_EPOCH = 4354819198  # 2107-12-31T23:59:58Z: its latest
COMPRESSION = zipfile.ZIP_DEFLATED
COMPRESS_LEVEL = 9
FILE_MODE, EXEC_MODE = 0o644, 0o755
MANIFEST = "manifest.json"
REPORT = "report.html"


def source_date_epoch(environ: dict | None = None) -> int:
    """The timestamp of every zip entry: SOURCE_DATE_EPOCH (decimal seconds since 1970, UTC) when
    set and not empty, else DEFAULT_EPOCH; clamped up to DEFAULT_EPOCH."""
    value = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return DEFAULT_EPOCH
    if not value.isdigit():
        raise UserInputError(f"SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01 UTC, not {value!r}")
    epoch = int(value)
    if epoch > MAX_EPOCH:
        raise UserInputError(f"SOURCE_DATE_EPOCH {epoch} is after 2107-12-31, the latest date a zip entry can hold")
    return max(epoch, DEFAULT_EPOCH)


def _zip_time(epoch: int) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(epoch)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec - t.tm_sec % 2)


def _mode(source: Path) -> int:
    """0755 when the file has any execute bit (the generator sets them), else 0644."""
    return EXEC_MODE if source.stat().st_mode & 0o111 else FILE_MODE


def write_zip(path: Path, entries: Iterable[tuple[str, Path]], epoch: int = DEFAULT_EPOCH) -> Path:
    """A reproducible zip of `entries` (archive name, source file): see the module docstring."""
    entries = sorted(entries)
    names = [name for name, _ in entries]
    for name in names:
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts or not p.parts or name.endswith("/") or "\\" in name:
            raise ValueError(f"{name!r}: not a relative file name for a zip entry")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"zip entries named twice: {', '.join(dupes)}")
    stamp = _zip_time(epoch)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, source in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.create_system = 3  # Unix, so external_attr carries the permissions
            info.external_attr = (stat.S_IFREG | _mode(Path(source))) << 16
            info.compress_type = COMPRESSION
            zf.writestr(info, Path(source).read_bytes(), compress_type=COMPRESSION, compresslevel=COMPRESS_LEVEL)
    os.replace(tmp, path)
    return path


def generated_files(project: Path) -> list[str]:
    """The files the generator wrote into `project` (its provenance record), each checked to be
    unchanged since; plus the record itself."""
    project = Path(project)
    record_path = project / PROVENANCE
    try:
        files = json.loads(record_path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserInputError(f"{record_path}: not a generated project's provenance record ({e})") from None
    for rel, sha in files.items():
        source = project / rel
        if not source.is_file() or hashlib.sha256(source.read_bytes()).hexdigest() != sha:
            raise UserInputError(f"{source}: missing or changed since it was generated; regenerate the project")
    return sorted(files) + [PROVENANCE]


def project_artifacts(platform: str, project: Path) -> dict[str, list[tuple[str, Path]]]:
    """The zips of one generated project: {zip name: [(archive name, source file)]}."""
    project = Path(project)
    files = generated_files(project)
    sample = f"{platform}-sample"
    whole = [(f"{sample}/{rel}", project / rel) for rel in files]
    if platform == "android":
        sdk = [(rel, project / rel) for rel in files if rel.startswith("sdk/")]
    elif platform == "ios":
        module = json.loads((project / PROVENANCE).read_text(encoding="utf-8"))["options"]["module"]
        sdk = [(f"{module}/{rel}", project / rel) for rel in files if rel == "Package.swift" or rel.startswith("Sources/")]
    else:
        raise ValueError(f"unknown platform {platform!r}")
    return {f"{platform}-sdk.zip": sdk, f"{sample}.zip": whole}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Artifact:
    name: str
    path: Path

    def record(self) -> dict:
        return {"name": self.name, "sha256": sha256_file(self.path), "bytes": self.path.stat().st_size}


def write_zips(dist: Path, projects: dict[str, Path], epoch: int) -> list[Artifact]:
    """Clear `dist` and write every project's zips into it."""
    dist = Path(dist)
    if dist.exists():
        shutil.rmtree(dist)  # DIR/dist is the build's own: nothing stale is published
    dist.mkdir(parents=True)
    written = []
    for platform, project in sorted(projects.items()):
        for name, entries in project_artifacts(platform, project).items():
            written.append(Artifact(name, write_zip(dist / name, entries, epoch)))
    return written


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def write_manifest(dist: Path, fields: dict, artifacts: list[Artifact]) -> Path:
    """dist/manifest.json: `fields` then every artifact (sorted by name) with its sha256 and size."""
    manifest = dict(fields)
    manifest["artifacts"] = [a.record() for a in sorted(artifacts, key=lambda a: a.name)]
    path = Path(dist) / MANIFEST
    path.write_bytes(manifest_bytes(manifest))
    return path
