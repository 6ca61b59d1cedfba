"""`mobilegen build`: the configuration is checked before any work (one line naming the key and what
is allowed), a given .tflite goes through generate and host verification, the summary and
build.json carry the figures, DIR/dist is written, and a failed verification exits non-zero after
the summary and the artifacts (manifest.json ok: false). tests/test_dist.py: the artifacts themselves."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.config import SCHEMA, load_config, parse_config
from mobilegen.errors import UserInputError

ROOT = Path(__file__).resolve().parent.parent
DEMO_MODEL = ROOT / "examples" / "demo" / "model.tflite"
runner = CliRunner()


def _error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[modle]\ndata = 'x'\n", "unknown section [modle] (allowed: model, train, convert, targets, android, ios, verify)"),
        ("[model]\nalpah = 0.5\n", "unknown key 'model.alpah' (allowed in [model]: data, file, arch, alpha, resolution, labels)"),
        ("[model]\nalpha = 0.3\n", "model.alpha must be 0.25 | 0.35 | 0.5 | 0.75 | 1.0 | 1.3 | 1.4, not 0.3"),
        ("[model]\nresolution = 100\n", "model.resolution must be 96 | 128 | 160 | 192 | 224, not 100"),
        ("[model]\narch = 'v3'\n", "model.arch must be v1 | v2, not 'v3'"),
        ("[train]\nepochs = 0\n", "train.epochs must be an integer >= 1, not 0"),
        ("[train]\nepochs = true\n", "train.epochs must be an integer >= 1, not True"),
        ("[train]\naugment = 'yes'\n", "train.augment must be true or false, not 'yes'"),
        ("[convert]\nquantize = 'int4'\n", "convert.quantize must be float32 | float16 | dynamic | int8 | uint8, not 'int4'"),
        ("[convert]\nstd = 0\n", "convert.std must be a number > 0, not 0"),
        ("[convert]\ninput_shape = [1, 0, 3]\n", "convert.input_shape must be a list of integers >= 1, not 0"),
        ("[targets]\nplatforms = ['android', 'windows']\n", "targets.platforms must be a list of android | ios, not 'windows'"),
        ("[targets]\nplatforms = []\n", "targets.platforms must be a list of android | ios (a non-empty list), not []"),
        ("[verify]\nbackends = 'gpu'\n", "verify.backends must be a list of cpu | gpu (a non-empty list), not 'gpu'"),
        ("model = 3\n", "'model' must be a [model] table"),
        ("[model\n", "not valid TOML"),
    ],
)
def test_config_errors_name_the_key_and_what_is_allowed(tmp_path, text, expected):
    cfg = tmp_path / "mobilegen.toml"
    cfg.write_text(text)
    r = runner.invoke(app, ["build", str(cfg), "--out", str(tmp_path / "out")])
    assert r.exit_code == UserInputError.exit_code, r.output
    line = _error_line(r)
    assert line.startswith(f"error: {cfg}: "), line
    assert expected in line, line
    assert not (tmp_path / "out").exists()  # checked before any work


def test_config_values_and_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    cfg = tmp_path / "sub" / "mobilegen.toml"
    cfg.write_text("[model]\ndata = 'images'\nalpha = 1\nlabels = '../labels.txt'\n[train]\nseed = 3\n"
                   "[targets]\nplatforms = ['ios']\n")
    c = load_config(cfg)
    assert c.get("model", "data") == (tmp_path / "sub" / "images").resolve()
    assert c.get("model", "labels") == (tmp_path / "labels.txt").resolve()
    assert c.get("model", "alpha") == 1.0 and isinstance(c.get("model", "alpha"), float)
    assert c.get("train", "seed") == 3 and c.get("targets", "platforms") == ["ios"]
    assert c.get("train", "epochs") is None  # unset keys keep the stage's own default
    assert parse_config({"model": {"data": "builtin"}}, "x", tmp_path).get("model", "data") == "builtin"


def test_every_schema_key_is_documented_in_the_readme():
    """The README's mobilegen.toml reference (its ```toml block) shows every section and key."""
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("```toml"):]
    block = block[:block.index("```", 3)]
    sections = {}
    current = None
    for line in block.splitlines():
        line = line.lstrip("# ").split("#")[0].strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], set())
        elif "=" in line and current is not None:
            current.add(line.split("=")[0].strip())
    assert set(sections) == set(SCHEMA)
    for section, keys in SCHEMA.items():
        assert sections[section] == set(keys), f"[{section}]: README shows {sorted(sections[section])}, the schema has {sorted(keys)}"


def test_missing_config_and_nothing_to_build(tmp_path, monkeypatch):
    r = runner.invoke(app, ["build", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "does not exist" in r.output  # Typer's exists=True
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["build", "--out", str(tmp_path / "o")])
    assert r.exit_code == UserInputError.exit_code
    assert "nothing to build: set model.data" in _error_line(r)


def test_frozen_graph_needs_its_arrays(tmp_path):
    pb = tmp_path / "graph.pb"
    pb.write_bytes(b"\0")
    r = runner.invoke(app, ["build", "--model", str(pb), "--out", str(tmp_path / "o")])
    assert r.exit_code == UserInputError.exit_code
    assert "a frozen graph needs convert.input_array" in _error_line(r)


def _toolchain():
    from tests.harness import require, require_tool
    from tests.test_engine_cpu import require_toolchain

    require_toolchain()
    require("ai_edge_litert")
    require_tool("clang++-19", "clang-19")  # the iOS engine's host build


@pytest.mark.slow
def test_build_a_given_tflite_generates_and_verifies_both_targets(tmp_path):
    """The demo's int8 .tflite (no dataset): generate Android and iOS, verify each on the CPU and
    GPU backends bit-exact against the simulator, and the simulator against LiteRT's reference."""
    _toolchain()
    model = tmp_path / "model.tflite"
    shutil.copy(DEMO_MODEL, model)
    shutil.copy(DEMO_MODEL.with_name("labels.txt"), tmp_path / "labels.txt")
    out = tmp_path / "out"
    # One real subprocess run of the console command (the others use CliRunner).
    r = subprocess.run([sys.executable, "-m", "mobilegen.cli.app", "build", "--model", str(model), "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    text = r.stdout
    assert "== mobilegen build: summary ==" in text
    assert "10 classes" in text
    for line in ("simulator  LiteRT BUILTIN_REF", "android    cpu", "android    gpu (GLES 3.1, Mesa)",
                 "ios        cpu", "ios        gpu (Metal, host executor)"):
        row = next((ln for ln in text.splitlines() if line in ln), None)
        # 33 written tensors; simulator vs LiteRT also compares the graph input both dumps hold
        want = "34/34" if "LiteRT" in line else "33/33"
        assert row is not None and f"ok   bit-exact, {want} tensors" in row, text
    assert "accuracy not measured" in text
    report = json.loads((out / "build.json").read_text())
    assert report["ok"] is True and report["deployed"] == "given"
    assert [v["target"] for v in report["verification"]] == ["simulator", "android", "android", "ios", "ios"]
    assert set(report["projects"]) == {"android", "ios"}
    assert (out / "android" / "settings.gradle.kts").is_file() and (out / "ios" / "Package.swift").is_file()
    assert sorted(p.name for p in (out / "dist").iterdir()) == [
        "android-sample.zip", "android-sdk.zip", "ios-sample.zip", "ios-sdk.zip", "manifest.json", "report.html"]
    assert json.loads((out / "dist" / "manifest.json").read_text())["ok"] is True


@pytest.mark.slow
def test_failed_verification_prints_the_summary_then_exits_1(tmp_path, monkeypatch):
    """A verification that fails (here: the engine's dump loses a tensor, as a broken engine would)
    is a FAIL row in the summary and exit code 1, so CI can gate on `build`."""
    _toolchain()
    import mobilegen.verify.host as host

    real = host.run_host

    def losing_a_tensor(*args, dump_dir=None, **kwargs):
        report = real(*args, dump_dir=dump_dir, **kwargs)
        victim = sorted(Path(dump_dir).glob("*.npy"))[3]
        import numpy as np

        a = np.load(victim)
        a.flat[0] = a.flat[0] + 1 if a.dtype.kind == "f" else ~a.flat[0]
        np.save(victim, a)
        return report

    monkeypatch.setattr(host, "run_host", losing_a_tensor)
    r = runner.invoke(app, ["build", "--model", str(DEMO_MODEL), "--out", str(tmp_path / "o"), "--target", "android"])
    assert r.exit_code == 1, r.output
    assert "FAIL 1 of 33 tensors over tolerance" in r.output
    assert "error: verification failed: android cpu" in r.output
    assert json.loads((tmp_path / "o" / "build.json").read_text())["ok"] is False
    # The artifacts are written all the same, saying so; --json prints that manifest, then exit 1.
    dist = tmp_path / "o" / "dist"
    manifest = json.loads((dist / "manifest.json").read_text())
    assert manifest["ok"] is False
    assert [v["ok"] for v in manifest["verification"] if v["target"] == "android"] == [False, False]
    assert {a["name"] for a in manifest["artifacts"]} == {"android-sdk.zip", "android-sample.zip", "report.html"}
    assert (tmp_path / "o" / "report.html").is_file()
    r = runner.invoke(app, ["build", "--model", str(DEMO_MODEL), "--out", str(tmp_path / "o"), "--target", "android", "--json"])
    assert r.exit_code == 1, r.output
    assert json.loads(r.stdout)["ok"] is False and r.stdout == (dist / "manifest.json").read_text()
    assert "error: verification failed: android cpu" in r.stderr


@pytest.mark.slow
def test_build_at_fp16_holds_the_engine_to_the_fp16_tolerance(tmp_path):
    """targets.precision = "fp16" on the demo's int8 model (no dataset, so no precision plan): the
    engine's whole run spreads from the fp16 simulator by a few 1e-3 (tests/test_fp16.py), which is
    within compare's fp16 tolerance; held to the fp32 contract (5e-5) it would fail."""
    _toolchain()
    model = tmp_path / "model.tflite"
    shutil.copy(DEMO_MODEL, model)
    config = tmp_path / "mobilegen.toml"
    config.write_text('[targets]\nplatforms = ["android"]\nprecision = "fp16"\n\n[verify]\nbackends = ["cpu"]\n')
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["build", str(config), "--model", str(model), "--out", str(out)])
    assert r.exit_code == 0, r.output
    report = json.loads((out / "build.json").read_text())
    assert report["precision"] == "fp16" and report["fp32_tensors"] is None
    row = next(v for v in report["verification"] if v["target"] == "android")
    assert row["ok"] and row["detail"].startswith("within tolerance"), row
    assert "no precision plan, every float tensor is stored as fp16" in r.output
