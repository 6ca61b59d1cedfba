"""DIR/dist (mobilegen.dist): reproducible zips (sorted entries, one timestamp from SOURCE_DATE_EPOCH,
normalized permissions, no extra fields, only generated files), the manifest, two `mobilegen build`
runs giving byte-identical dist files, and the CI recipe (examples/ci/github-workflow.yml) run step
by step."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from mobilegen import dist
from mobilegen.errors import UserInputError

ROOT = Path(__file__).resolve().parent.parent
DEMO_MODEL = ROOT / "examples" / "demo" / "model.tflite"
WORKFLOW = ROOT / "examples" / "ci" / "github-workflow.yml"


def _tree(root: Path, mtime: float, files: dict[str, tuple[bytes, int]]) -> Path:
    """Files with the given contents and modes, all with mtime `mtime`, written in reverse order
    (so directory order differs from a sorted one)."""
    for rel, (data, mode) in sorted(files.items(), reverse=True):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        p.chmod(mode)
        os.utime(p, (mtime, mtime))
    return root


FILES = {
    "b/z.txt": (b"zz\n", 0o600),
    "a.txt": (b"a" * 1000, 0o664),
    "gradlew": (b"#!/bin/sh\necho hi\n", 0o700),
    "b/A.bin": (bytes(range(256)), 0o644),
    "\u00e9t\u00e9.txt": (b"summer", 0o640),
}


def _entries(root: Path) -> list[tuple[str, Path]]:
    return [(rel, root / rel) for rel in reversed(sorted(FILES))]


def _local_extra_lengths(path: Path) -> list[int]:
    """The extra-field length of every local file header (zipfile shows the central ones only)."""
    data = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        return [struct.unpack("<H", data[i.header_offset + 28:i.header_offset + 30])[0] for i in zf.infolist()]


def test_zip_is_sorted_timestamped_and_normalized(tmp_path):
    src = _tree(tmp_path / "src", 1_234_567_891, FILES)
    z = dist.write_zip(tmp_path / "x.zip", _entries(src), 1_700_000_001)
    with zipfile.ZipFile(z) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == sorted(FILES)
        for i in infos:
            assert i.date_time == (2023, 11, 14, 22, 13, 20)  # 1700000001 in UTC, rounded down to 2 s
            assert i.create_system == 3 and i.extra == b"" and i.comment == b""
            assert i.compress_type == zipfile.ZIP_DEFLATED
            assert i.external_attr >> 16 == (0o100755 if i.filename == "gradlew" else 0o100644), i.filename
            assert zf.read(i) == FILES[i.filename][0]
        assert not any(i.is_dir() for i in infos) and zf.comment == b""
    assert _local_extra_lengths(z) == [0] * len(FILES)


def test_zip_bytes_depend_on_contents_and_epoch_only(tmp_path):
    one = dist.write_zip(tmp_path / "1.zip", _entries(_tree(tmp_path / "one", 1_000_000_000, FILES)))
    other_modes = {k: (v, 0o755 if m & 0o100 else 0o644) for k, (v, m) in FILES.items()}
    two = dist.write_zip(tmp_path / "2.zip", _entries(_tree(tmp_path / "two", time.time(), other_modes)))
    assert one.read_bytes() == two.read_bytes()
    with zipfile.ZipFile(one) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}  # DEFAULT_EPOCH
    later = dist.write_zip(tmp_path / "3.zip", _entries(tmp_path / "one"), 1_700_000_000)
    assert later.read_bytes() != one.read_bytes()
    with zipfile.ZipFile(later) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_zip_rejects_bad_names(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"")
    for name in ("/abs", "a/../b", "dir/", ""):
        with pytest.raises(ValueError):
            dist.write_zip(tmp_path / "x.zip", [(name, f)])
    with pytest.raises(ValueError, match="named twice"):
        dist.write_zip(tmp_path / "x.zip", [("a", f), ("a", f)])


def test_source_date_epoch():
    assert dist.source_date_epoch({}) == dist.DEFAULT_EPOCH == 315532800
    assert dist.source_date_epoch({"SOURCE_DATE_EPOCH": ""}) == dist.DEFAULT_EPOCH
    assert dist.source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    assert dist.source_date_epoch({"SOURCE_DATE_EPOCH": "0"}) == dist.DEFAULT_EPOCH  # before 1980: clamped
    for bad in ("-5", "1.5", "yesterday"):
        with pytest.raises(UserInputError, match="SOURCE_DATE_EPOCH must be a whole number"):
            dist.source_date_epoch({"SOURCE_DATE_EPOCH": bad})
    with pytest.raises(UserInputError, match="after 2107"):
        dist.source_date_epoch({"SOURCE_DATE_EPOCH": "9999999999"})


def test_a_bad_source_date_epoch_stops_build_before_any_work(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mobilegen.cli.app import app

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    r = CliRunner().invoke(app, ["build", "--model", str(DEMO_MODEL), "--out", str(tmp_path / "o")])
    assert r.exit_code == UserInputError.exit_code, r.output
    assert r.stderr.strip() == "error: SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01 UTC, not 'yesterday'"
    assert not (tmp_path / "o").exists()


def _copy_project(sample: Path, to: Path, mtime: float) -> Path:
    """A generated project as `verify` leaves it: plus .mobilegen/ build files and a user's file."""
    shutil.copytree(sample, to)
    (to / ".mobilegen" / "host-build").mkdir(parents=True)
    (to / ".mobilegen" / "host-build" / "engine.o").write_bytes(os.urandom(64))
    (to / "notes.txt").write_text("mine")
    for p in to.rglob("*"):
        os.utime(p, (mtime, mtime))
    return to


def test_project_zips_hold_only_generated_files_and_are_reproducible(tmp_path):
    zips = {}
    for n, mtime in (("a", 1e9), ("b", time.time())):
        projects = {"android": _copy_project(ROOT / "android_sample", tmp_path / n / "android", mtime),
                    "ios": _copy_project(ROOT / "ios_sample", tmp_path / n / "ios", mtime)}
        zips[n] = {a.name: a.path.read_bytes() for a in dist.write_zips(tmp_path / n / "dist", projects, dist.DEFAULT_EPOCH)}
    assert sorted(zips["a"]) == ["android-sample.zip", "android-sdk.zip", "ios-sample.zip", "ios-sdk.zip"]
    assert zips["a"] == zips["b"]
    out = tmp_path / "a" / "dist"

    def names(zip_name):
        with zipfile.ZipFile(out / zip_name) as zf:
            return zf.namelist(), {i.filename: i.external_attr >> 16 for i in zf.infolist()}

    for platform in ("android", "ios"):
        recorded = json.loads((ROOT / f"{platform}_sample" / "mobilegen.json").read_text())["files"]
        listed, modes = names(f"{platform}-sample.zip")
        assert listed == sorted(f"{platform}-sample/{rel}" for rel in [*recorded, "mobilegen.json"])
        assert not any(".mobilegen/" in n or n.endswith("notes.txt") for n in listed)
        if platform == "android":
            assert modes["android-sample/gradlew"] == 0o100755
            assert {m for n, m in modes.items() if n != "android-sample/gradlew"} == {0o100644}
    sdk, _ = names("android-sdk.zip")
    assert sdk and all(n.startswith("sdk/") for n in sdk) and "sdk/build.gradle.kts" in sdk
    ios_sdk, _ = names("ios-sdk.zip")
    assert "MobilegenClassifier/Package.swift" in ios_sdk
    assert all(n == "MobilegenClassifier/Package.swift" or n.startswith("MobilegenClassifier/Sources/") for n in ios_sdk)
    assert "MobilegenClassifier/Sources/MobilegenClassifier/Resources/model.mgw" in ios_sdk


def test_a_changed_generated_file_is_not_published(tmp_path):
    project = _copy_project(ROOT / "android_sample", tmp_path / "android", 1e9)
    (project / "sdk" / "build.gradle.kts").write_text("// edited\n")
    with pytest.raises(UserInputError, match="changed since it was generated"):
        dist.write_zips(tmp_path / "dist", {"android": project}, dist.DEFAULT_EPOCH)


# -- mobilegen build ----------------------------------------------------------------------------

def _toolchain():
    from tests.test_build import _toolchain as build_toolchain

    build_toolchain()


def _check_manifest(out: Path) -> dict:
    """manifest.json lists every other dist file with its true sha256 and size."""
    d = out / "dist"
    manifest = json.loads((d / "manifest.json").read_text())
    listed = {a["name"]: a for a in manifest["artifacts"]}
    assert sorted(listed) == sorted(p.name for p in d.iterdir() if p.name != "manifest.json")
    for name, a in listed.items():
        data = (d / name).read_bytes()
        assert a["sha256"] == hashlib.sha256(data).hexdigest() and a["bytes"] == len(data), name
    assert manifest["model"]["sha256"] == hashlib.sha256(DEMO_MODEL.read_bytes()).hexdigest()
    return manifest


@pytest.mark.slow
def test_build_twice_gives_byte_identical_dist(tmp_path, monkeypatch):
    """`mobilegen build --model M --out D` in two directories at different times: the same dist bytes;
    `--json` prints the manifest; SOURCE_DATE_EPOCH moves the zips' timestamps (and only those)."""
    _toolchain()
    from typer.testing import CliRunner

    from mobilegen.cli.app import app

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    runner = CliRunner()
    outs = []
    for n in ("one", "two"):
        out = tmp_path / n / "out"
        r = runner.invoke(app, ["build", "--model", str(DEMO_MODEL), "--out", str(out), "--target", "android", "--json"])
        assert r.exit_code == 0, r.output
        assert r.stdout == (out / "dist" / "manifest.json").read_text()
        outs.append(out)
        time.sleep(2.1)  # a zip time that leaked from the clock would differ
    a, b = (sorted(p.name for p in (o / "dist").iterdir()) for o in outs)
    assert a == b == ["android-sample.zip", "android-sdk.zip", "manifest.json", "report.html"]
    for name in a:
        assert (outs[0] / "dist" / name).read_bytes() == (outs[1] / "dist" / name).read_bytes(), name
    manifest = _check_manifest(outs[0])
    assert manifest["ok"] is True and manifest["source_date_epoch"] == dist.DEFAULT_EPOCH
    assert manifest["precision"] == "int8" and manifest["targets"] == ["android"]
    assert len(manifest["labels"]) == 10
    assert [v["backend"] for v in manifest["verification"]] == ["LiteRT BUILTIN_REF", "cpu", "gpu (GLES 3.1, Mesa)"]
    assert all(v["ok"] for v in manifest["verification"])
    assert (outs[0] / "report.html").is_file() and (outs[0] / "build.json").is_file()
    assert "timing" not in json.dumps(manifest)

    # SOURCE_DATE_EPOCH: the zips of the same project carry it
    again = dist.write_zips(tmp_path / "sde", {"android": outs[0] / "android"}, dist.source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}))
    for art in again:
        with zipfile.ZipFile(art.path) as zf:
            assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}
        assert art.path.read_bytes() != (outs[0] / "dist" / art.name).read_bytes()


# -- the CI recipe --------------------------------------------------------------------------------

def _workspace(tmp_path: Path) -> Path:
    """What actions/checkout leaves: the repository, here as links to this checkout's top level."""
    ws = tmp_path / "workspace"
    ws.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in ("build", "manifest.json"):
            (ws / entry.name).symlink_to(entry)
    return ws


def _expand(text: str, env: dict) -> str:
    """The `${{ env.NAME }}` expressions this workflow uses outside `run:`; anything else is an error."""
    import re

    def sub(m):
        expr = m.group(1).strip()
        assert expr.startswith("env."), f"expression {expr!r} not emulated"
        return env[expr[4:]]

    return re.sub(r"\$\{\{(.*?)\}\}", sub, text)


def test_ci_workflow_is_well_formed():
    from tests.harness import require

    yaml = require("yaml")
    wf = yaml.safe_load(WORKFLOW.read_text())
    job = wf["jobs"]["build"]
    steps = job["steps"]
    assert any(s.get("uses", "").startswith("actions/checkout@") for s in steps)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload.get("if") == "always()" and upload["with"]["path"] == "${{ env.OUT }}/dist/"
    build = next(s for s in steps if "mobilegen build" in s.get("run", ""))
    assert "--json > manifest.json" in build["run"] and "if" not in build  # its exit code gates the job
    for s in steps:
        assert "run" in s or "uses" in s
        assert "${{" not in s.get("run", ""), "run: commands take the workflow's env as shell variables"


@pytest.mark.slow
def test_ci_workflow_steps_run(tmp_path):
    """Every `run:` step of the workflow, in order, in a stand-in for the checkout, with GitHub's
    shell (bash -e -o pipefail), GITHUB_ENV and GITHUB_STEP_SUMMARY; the `uses:` steps are skipped
    (the upload's path is checked). The model is the workflow's own: the demo model. Then the same
    build (all targets) elsewhere gives the same dist bytes."""
    _toolchain()
    from tests.harness import require

    yaml = require("yaml")
    wf = yaml.safe_load(WORKFLOW.read_text())
    # The workflow's `make setup` must find this checkout set up (as `make test` leaves it): run in
    # the stand-in, an out-of-date one would reinstall mobilegen from the temporary directory.
    if subprocess.run(["make", "-q", "setup"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.fail("this checkout's .venv is older than pyproject.toml: run `make setup` first")
    ws = _workspace(tmp_path)
    env_file, summary_file = tmp_path / "github_env", tmp_path / "summary.md"
    env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    env |= {k: str(v) for k, v in wf.get("env", {}).items()}
    env |= {"GITHUB_ENV": str(env_file), "GITHUB_STEP_SUMMARY": str(summary_file), "GITHUB_WORKSPACE": str(ws), "CI": "true"}
    assert (ws / env["MODEL"]).resolve() == DEMO_MODEL
    failed = False
    ran = []
    for step in wf["jobs"]["build"]["steps"]:
        if failed and step.get("if") != "always()":
            continue
        if "uses" in step:
            if step["uses"].startswith("actions/upload-artifact@"):
                published = ws / _expand(step["with"]["path"], env)
                assert (published / "manifest.json").is_file()
            continue
        step_env = env | {k: str(v) for k, v in step.get("env", {}).items()}
        r = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", step["run"]],
                           cwd=ws, env=step_env, capture_output=True, text=True, timeout=1500)
        ran.append(step.get("name"))
        assert r.returncode == 0, f"step {step.get('name')!r} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        for line in env_file.read_text().splitlines():  # what a step exports for the next ones
            k, _, v = line.partition("=")
            env[k] = v
    assert len(ran) == sum("run" in s for s in wf["jobs"]["build"]["steps"])
    out = ws / env["OUT"]
    assert (ws / "manifest.json").read_bytes() == (out / "dist" / "manifest.json").read_bytes()
    manifest = _check_manifest(out)
    assert manifest["ok"] is True and manifest["targets"] == ["android", "ios"]
    # the epoch the step exported (GITHUB_ENV) from the last commit, when this is a git checkout
    if (ROOT / ".git").exists():
        assert env["SOURCE_DATE_EPOCH"].isdigit(), env.get("SOURCE_DATE_EPOCH")
        assert manifest["source_date_epoch"] == dist.source_date_epoch({"SOURCE_DATE_EPOCH": env["SOURCE_DATE_EPOCH"]})
        with zipfile.ZipFile(out / "dist" / "ios-sdk.zip") as zf:
            assert {i.date_time for i in zf.infolist()} == {dist._zip_time(manifest["source_date_epoch"])}
    names = {a["name"] for a in manifest["artifacts"]}
    assert names == {"android-sdk.zip", "android-sample.zip", "ios-sdk.zip", "ios-sample.zip", "report.html"}
    summary = summary_file.read_text()
    assert "## mobilegen build: ok" in summary and "ios-sdk.zip" in summary

    # All targets, built again elsewhere with the same SOURCE_DATE_EPOCH: the same dist bytes.
    again = tmp_path / "again"
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "mobilegen"), "build", "--model", str(DEMO_MODEL), "--out", str(again)],
                       env={k: v for k, v in env.items() if k != "SOURCE_DATE_EPOCH"} | {"SOURCE_DATE_EPOCH": str(manifest["source_date_epoch"])},
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for name in sorted(p.name for p in (out / "dist").iterdir()):
        assert (again / "dist" / name).read_bytes() == (out / "dist" / name).read_bytes(), name
