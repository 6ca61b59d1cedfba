"""Every command of the `mobilegen` CLI, through typer's CliRunner, plus one real console-script run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilegen import __version__, layout
from mobilegen.cli.app import app
from mobilegen.convert.keras_models import build_mobilenet_v1
from mobilegen.dump import INDEX_FILE
from mobilegen.extract import MANIFEST
from mobilegen.plan import SUPPORTED_OPS, build_plan
from mobilegen.sim.runner import Simulator
from mobilegen.tflite.reader import read_model
from tests import models as M
from tests.harness import random_input, require

MOBILENET = ("mnv1_025_64_c10", build_mobilenet_v1, dict(alpha=0.25, resolution=64, classes=10, seed=0))


def model_bytes(name, builder, kwargs, mode) -> bytes:
    try:
        return M.tflite_model(name, builder, kwargs, mode)
    except ImportError:
        require("tensorflow")
        raise


def tanh(h, w, c, seed=0):
    import keras

    return M._model((h, w, c), lambda x: keras.layers.Activation("tanh")(x), seed)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    out = {}
    for mode in ("int8", "float16", "float32"):
        out[mode] = d / f"mobilenet_{mode}.tflite"
        out[mode].write_bytes(model_bytes(*MOBILENET, mode))
    out["tanh"] = d / "tanh.tflite"
    out["tanh"].write_bytes(model_bytes("tanh_small", tanh, dict(h=4, w=4, c=3), "float32"))
    g = read_model(out["int8"].read_bytes())
    out["x"] = d / "x.npy"
    np.save(out["x"], random_input(g.tensors[g.inputs[0]], 7))
    from PIL import Image

    rng = np.random.default_rng(0)
    out["png"] = d / "cat.png"
    Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(out["png"])
    out["labels"] = d / "labels.txt"
    out["labels"].write_text("".join(f"class_{i}\n" for i in range(10)))
    return out


def ok(args: list[str]):
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr, r.exception)
    return r


# -- --version / help ------------------------------------------------------------------------------
def test_version():
    r = ok(["--version"])
    assert r.stdout.strip() == f"mobilegen {__version__}"


def test_help_lists_commands():
    r = ok(["--help"])
    for cmd in ("build", "train", "convert", "evaluate", "inspect", "simulate", "extract", "compare", "generate", "verify",
                "pull"):
        assert cmd in r.stdout


# -- inspect ---------------------------------------------------------------------------------------
def test_inspect_table(files):
    r = ok(["inspect", files["int8"]])
    out = r.stdout
    assert f"model: {files['int8']}" in out
    assert re.search(r"^input: #0 \S+ float32\[1, 64, 64, 3\]", out, re.M)
    assert re.search(r"^\s*\d+\s+DEPTHWISE_CONV_2D\s+yes\s+int8\[1, 32, 32, 8\]", out, re.M)
    assert "per-channel[8] dim 3" in out  # depthwise filter scales
    assert re.search(r"^ops: \d+ \(QUANTIZE x1, CONV_2D x\d+, DEPTHWISE_CONV_2D x13", out, re.M)
    assert re.search(r"^parameters: [\d,]+ \([\d,]+ bytes\); activations: [\d,]+ bytes$", out, re.M)
    assert out.rstrip().endswith("supported: yes (simulate, generate and verify)")


def test_inspect_json(files):
    s = json.loads(ok(["inspect", files["int8"], "--json"]).stdout)
    g = read_model(files["int8"].read_bytes())
    assert s["supported"] is True and s["unsupported_ops"] == []
    assert [o["op"] for o in s["ops"]] == [op.opcode for op in g.ops]
    assert all(o["supported"] for o in s["ops"])
    assert s["params"] == g.param_count() and s["param_bytes"] == g.param_bytes()
    assert s["inputs"][0]["shape"] == [1, 64, 64, 3] and s["outputs"][0]["shape"] == [1, 10]
    dw = next(o for o in s["ops"] if o["op"] == "DEPTHWISE_CONV_2D")
    w = dw["inputs"][1]
    assert w["constant"] and w["dtype"] == "int8" and w["quantization"]["quantized_dimension"] == 3
    assert len(w["quantization"]["scale"]) == w["shape"][3]
    assert dw["options"]["padding"] in ("SAME", "VALID") and dw["params"] > 0


def test_inspect_unsupported(files):
    r = ok(["inspect", files["tanh"]])
    assert re.search(r"^\s*0\s+TANH\s+NO\s", r.stdout, re.M)
    assert f"supported: no (unsupported: TANH; supported ops: {', '.join(SUPPORTED_OPS)})" in r.stdout
    s = json.loads(ok(["inspect", files["tanh"], "--json"]).stdout)
    assert s["supported"] is False and s["unsupported_ops"] == ["TANH"]
    assert s["ops"][0]["supported"] is False


# -- simulate --------------------------------------------------------------------------------------
def check_dump(d: Path, model: Path, values: dict[int, np.ndarray] | None = None):
    g = read_model(model.read_bytes())
    records = json.loads((d / INDEX_FILE).read_text())["tensors"]
    written = g.written_tensors()
    assert [r["index"] for r in records] == written  # graph order
    assert sorted(int(p.stem) for p in d.glob("*.npy")) == sorted(written)
    for r in records:
        t = g.tensors[r["index"]]
        assert set(r) >= {"index", "name", "shape", "dtype", "scale", "zero_point"}
        assert (r["name"], r["shape"], r["dtype"]) == (t.name, list(t.shape), t.dtype)
        if t.quant is None:
            assert r["scale"] is None and r["zero_point"] is None
        else:
            assert r["scale"] == pytest.approx(float(t.quant.scale[0]), rel=0, abs=0)
            assert r["zero_point"] == int(t.quant.zero_point[0])
        a = np.load(d / f"{r['index']}.npy")
        assert a.shape == t.shape and a.dtype == np.dtype(t.dtype)
        if values is not None:
            np.testing.assert_array_equal(a, values[r["index"]])
    return g, records


@pytest.mark.parametrize("mode", ["int8", "float16"])
def test_simulate_npy(files, tmp_path, mode):
    model = files[mode]
    g = read_model(model.read_bytes())
    x = np.load(files["x"])
    if g.tensors[g.inputs[0]].dtype != x.dtype:
        pytest.skip("input type differs")
    r = ok(["simulate", model, "--input", files["x"], "--dump-dir", tmp_path / "d", "--output", tmp_path / "o" / "y.npy"])
    values = Simulator(build_plan(g)).run([x])
    check_dump(tmp_path / "d", model, values)
    y = np.load(tmp_path / "o" / "y.npy")
    np.testing.assert_array_equal(y, values[g.outputs[0]])
    lines = r.stdout.splitlines()
    assert len(lines) == 5 and all(re.fullmatch(r"\d\. \d+ \(\d+\): -?\d+\.\d{6}", line) for line in lines)
    assert "simulating" in r.stderr and "wrote" in r.stderr


def test_simulate_npy_without_batch_dim(files, tmp_path):
    x = np.load(files["x"])[0]
    np.save(tmp_path / "x.npy", x)
    ok(["simulate", files["int8"], "--input", tmp_path / "x.npy", "--output", tmp_path / "y1.npy", "--top", "0"])
    ok(["simulate", files["int8"], "--input", files["x"], "--output", tmp_path / "y2.npy", "--top", "0"])
    np.testing.assert_array_equal(np.load(tmp_path / "y1.npy"), np.load(tmp_path / "y2.npy"))


def test_simulate_png_top_labels(files, tmp_path):
    r = ok(["simulate", files["int8"], "--input", files["png"], "--top", "3", "--labels", files["labels"],
            "--dump-dir", tmp_path / "d"])
    check_dump(tmp_path / "d", files["int8"])
    lines = r.stdout.splitlines()
    assert len(lines) == 3
    scores = []
    for rank, line in enumerate(lines, 1):
        m = re.fullmatch(rf"{rank}\. class_(\d+) \((\d+)\): (\d+\.\d{{6}})", line)
        assert m and m[1] == m[2], line
        scores.append(float(m[3]))
    assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] <= scores[0] <= 1


def test_simulate_top0_prints_nothing(files, tmp_path):
    r = ok(["simulate", files["float32"], "--input", files["x"], "--top", "0"])
    assert r.stdout == ""


# -- extract ---------------------------------------------------------------------------------------
def test_extract_tflite_layout(files, tmp_path):
    r = ok(["extract", files["int8"], "--out", tmp_path / "w"])
    g = read_model(files["int8"].read_bytes())
    man = json.loads((tmp_path / "w" / MANIFEST).read_text())
    assert man["layout"] == "tflite"
    consts = [t for t in g.tensors if t.is_const]
    assert f"wrote {len(consts)} constant tensors" in r.stdout
    assert [e["index"] for e in man["tensors"]] == [t.index for t in consts]
    roles = set()
    for e in man["tensors"]:
        t = g.tensors[e["index"]]
        assert set(e) >= {"index", "file", "name", "op", "role", "shape", "tflite_shape", "dtype", "layout",
                          "scale", "zero_point", "quantized_dimension"}
        a = np.load(tmp_path / "w" / e["file"])
        assert a.dtype == t.data.dtype
        np.testing.assert_array_equal(a, t.data)  # reading back equals the model constants
        assert e["shape"] == e["tflite_shape"] == list(t.shape)
        assert (e["name"], e["dtype"]) == (t.name, t.dtype)
        if t.quant is not None:
            assert e["scale"] == [float(v) for v in t.quant.scale]
            assert e["zero_point"] == [int(v) for v in t.quant.zero_point]
            assert e["quantized_dimension"] == t.quant.axis
        if e["role"] in layout.TFLITE_LAYOUTS:
            assert e["layout"] == layout.TFLITE_LAYOUTS[e["role"]]
        assert re.fullmatch(r"op \d+ \(\w+\)", e["op"])
        roles.add(e["role"])
    assert {"conv_filter", "depthwise_filter", "bias"} <= roles


@pytest.mark.parametrize("mode", ["int8", "float16"])
def test_extract_gpu_layout(files, tmp_path, mode):
    ok(["extract", files[mode], "--out", tmp_path / "w", "--layout", "gpu"])
    g = read_model(files[mode].read_bytes())
    man = json.loads((tmp_path / "w" / MANIFEST).read_text())
    assert man["layout"] == "gpu"
    seen = set()
    for e in man["tensors"]:
        t = g.tensors[e["index"]]
        a = np.load(tmp_path / "w" / e["file"])
        assert e["tflite_shape"] == list(t.shape) and e["shape"] == list(a.shape)
        role = e["role"]
        if role in layout.GPU_LAYOUTS:
            bracket, pack = layout.GPU_LAYOUTS[role]
            assert e["layout"] == bracket
            np.testing.assert_array_equal(a, pack(t.data))
            seen.add(role)
        else:
            np.testing.assert_array_equal(a, t.data)
        c4 = lambda n: (n + 3) // 4  # noqa: E731
        if role == "conv_filter":
            o, kh, kw, i = t.shape
            assert list(a.shape) == [c4(o), kh, kw, c4(i), 4, 4]
        elif role == "depthwise_filter":
            _, kh, kw, c = t.shape
            assert list(a.shape) == [c4(c), kh, kw, 4]
        elif role == "bias":
            assert list(a.shape) == [c4(t.shape[0]) * 4]
    # float16 weights take the role of the tensor their DEQUANTIZE feeds.
    assert {"conv_filter", "depthwise_filter", "bias"} <= seen


# -- compare ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dump(files, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("dump") / "a"
    ok(["simulate", files["int8"], "--input", files["x"], "--dump-dir", d, "--top", "0"])
    return d


def test_compare_identical(dump, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(dump, b)
    r = ok(["compare", dump, b])
    n = len(json.loads((dump / INDEX_FILE).read_text())["tensors"])
    assert r.stdout.rstrip().endswith(f"all {n} tensors within tolerance")


def test_compare_names_first_divergence(dump, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(dump, b)
    records = json.loads((dump / INDEX_FILE).read_text())["tensors"]
    early, late = records[3], records[-3]  # graph order, not file or index order
    for rec, delta in ((late, 5), (early, 1)):
        p = b / f"{rec['index']}.npy"
        a = np.load(p)
        flat = a.reshape(-1).copy()
        flat[0] = flat[0] + delta if flat[0] < 100 else flat[0] - delta
        np.save(p, flat.reshape(a.shape).astype(a.dtype))
    r = CliRunner().invoke(app, ["compare", str(dump), str(b)])
    assert r.exit_code == 1, (r.stdout, r.stderr)
    err = r.stderr.strip().splitlines()
    assert len(err) == 1
    assert f"2 of {len(records)} tensors differ beyond tolerance; first in graph order: tensor {early['index']} '{early['name']}'" in err[0]
    assert re.search(rf"^\s*{early['index']}\s+1\s+1\s", r.stdout, re.M)  # max abs 1, max LSB 1
    # Within a 5 LSB tolerance everything passes.
    ok(["compare", dump, b, "--tolerance", "5"])


def test_compare_npy(tmp_path):
    a = np.linspace(-1, 1, 50, dtype=np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", a.copy())
    ok(["compare", tmp_path / "a.npy", tmp_path / "b.npy"])
    np.save(tmp_path / "c.npy", a + np.float32(1e-3))
    r = CliRunner().invoke(app, ["compare", str(tmp_path / "a.npy"), str(tmp_path / "c.npy")])
    assert r.exit_code == 1 and "first in graph order: tensor 0 'a.npy'" in r.stderr
    ok(["compare", tmp_path / "a.npy", tmp_path / "c.npy", "--rtol", "1e-2"])
    np.save(tmp_path / "d.npy", a[:10])
    r = CliRunner().invoke(app, ["compare", str(tmp_path / "a.npy"), str(tmp_path / "d.npy")])
    assert r.exit_code == 1 and "shape differs" in r.stderr


# -- the installed console script ------------------------------------------------------------------
def test_console_script(files, tmp_path):
    exe = Path(sys.executable).with_name("mobilegen")
    if not exe.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"mobilegen {__version__}"
    r = subprocess.run(
        [str(exe), "simulate", str(files["int8"]), "--input", str(files["png"]), "--labels", str(files["labels"]),
         "--top", "2", "--dump-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2 and r.stdout.startswith("1. class_")
    check_dump(tmp_path / "d", files["int8"])
    r = subprocess.run([str(exe), "compare", str(tmp_path / "d"), str(tmp_path / "d")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "within tolerance" in r.stdout
