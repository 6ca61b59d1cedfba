"""`make demo` end to end: `mobilegen build examples/builtin/mobilegen.toml` trains MobileNet V1
0.25 / 128 from scratch on the built-in dataset, converts it to float32 and int8, evaluates both on
the validation split, generates both projects and verifies their engines here; the summary carries
the figures, the int8 model is within 2 points of the float one, every verification is bit-exact,
and none of TensorFlow's start-up chatter reaches the terminal."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import require, require_tool

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "builtin" / "mobilegen.toml"
NOISE = re.compile(r"^([IWE]\d{4} |WARNING: All log messages|WARNING:absl:)|oneDNN|cuInit|cpu_feature_guard", re.M)


def test_make_demo_runs_this_config():
    """The Makefile's demo target is `mobilegen build` on the committed config (what this file tests)."""
    make = (ROOT / "Makefile").read_text()
    demo = make[make.index("\ndemo:"):].split("\n\n")[0]
    assert "mobilegen build examples/builtin/mobilegen.toml --out $(DEMO)" in demo, demo


def _litert_top1(model: Path, n: int) -> float:
    """Top-1 of `model` on the built-in dataset's validation split (seed 0, 0.2, as `train`
    held it out), one image at a time through LiteRT's BUILTIN_REF interpreter."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from mobilegen.data.folder import resolve_data, split
    from mobilegen.inputs import load_input
    from mobilegen.tflite.reader import read_model

    buf = model.read_bytes()
    g = read_model(buf)
    _, val = split(resolve_data("builtin"), 0.2, 0)
    assert len(val) == n
    interp = Interpreter(model_content=buf, experimental_op_resolver_type=OpResolverType.BUILTIN_REF, num_threads=1)
    interp.allocate_tensors()
    i_in, i_out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    hits = 0
    for s in val:
        interp.set_tensor(i_in, load_input(s.path, g.tensors[g.inputs[0]]))
        interp.invoke()
        hits += int(np.argmax(interp.get_tensor(i_out)[0]) == s.label)
    return hits / len(val)


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    require("tensorflow")
    require("ai_edge_litert")
    from tests.test_engine_cpu import require_toolchain

    require_toolchain()
    require_tool("clang++-19", "clang-19")  # the iOS engine's host build
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "mobilegen.cli.app", "build", str(CONFIG), "--out", str(out)],
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert not NOISE.search(r.stdout + r.stderr), (r.stdout + r.stderr)[-3000:]
    text = r.stdout[r.stdout.index("== mobilegen build: summary =="):]
    assert "MobileNet V1 alpha 0.25, 128 px, trained on builtin, 6 classes" in text, text
    assert re.search(r"training   from scratch on 1200 images, \d+ epochs", text), text

    report = json.loads((out / "build.json").read_text())
    rows = {e["name"]: e for e in report["evaluation"]}
    assert list(rows) == ["Keras float", "model-float32.tflite", "model-int8.tflite"], text
    assert all(e["n"] == 300 for e in rows.values())
    # learnable to high accuracy by the defaults, and int8 as accurate as float within 2 points
    assert rows["Keras float"]["top1"] >= 0.85, text
    assert abs(rows["model-float32.tflite"]["top1"] - rows["Keras float"]["top1"]) <= 0.01, text
    assert rows["model-int8.tflite"]["top1"] >= rows["model-float32.tflite"]["top1"] - 0.02, text

    verified = [(v["target"], v["backend"]) for v in report["verification"]]
    assert verified == [("simulator", "LiteRT BUILTIN_REF"), ("android", "cpu"), ("android", "gpu (GLES 3.1, Mesa)"),
                        ("ios", "cpu"), ("ios", "gpu (Metal, host executor)")], verified
    for v in report["verification"]:
        assert v["ok"] and v["detail"].startswith("bit-exact"), v
    assert report["ok"] and report["deployed"] == "int8"
    assert (out / "android" / "settings.gradle.kts").is_file() and (out / "ios" / "Package.swift").is_file()
    # the models carry their labels and normalization (TFLite metadata), and the projects got them
    from mobilegen.tflite.metadata import read_metadata

    meta = read_metadata((out / "model-int8.tflite").read_bytes())
    assert meta.labels == ["circle", "cross", "ring", "square", "star", "triangle"]
    assert meta.mean == [127.5] and meta.std == [127.5]
    # The bar, by LiteRT itself: the int8 .tflite run by LiteRT's reference kernels on the
    # validation images is as accurate as the float32 one within 2 points.
    litert = {name: _litert_top1(out / name, report["evaluation"][0]["n"]) for name in ("model-float32.tflite", "model-int8.tflite")}
    assert litert["model-int8.tflite"] >= litert["model-float32.tflite"] - 0.02, litert
    assert litert["model-int8.tflite"] == rows["model-int8.tflite"]["top1"], (litert, rows)  # the simulator's figure
    labels_json = next((out / "android" / "sdk" / "src" / "main" / "assets").rglob("labels.json"))
    assert "triangle" in labels_json.read_text()
    assert len(text.splitlines()) < 25, text  # a summary, not a log
