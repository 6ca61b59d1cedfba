"""Every command over the op sweep at every precision: a one-line error or success, never a
traceback, and `--debug` never changes the exit code.

Also the CLI contracts around precisions and dumps: a fully integer model (int8 or legacy uint8
input and output) generates and verifies at fp16 and fp32 with its own I/O dtypes, and a
float16-weights model's simulator dump compares cleanly with the engine's (the folded DEQUANTIZE
constants are marked in tensors.json and skipped, saying so).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.errors import MobilegenError
from tests.harness import ENGINE_FLOAT_RTOL, random_input, require

PRECISIONS = ("int8", "fp16", "fp32")
INTEGER_MODES = ("int8", "int8_io", "uint8")
USER_ERROR = MobilegenError.exit_code
ROOT = Path(__file__).resolve().parent.parent

runner = CliRunner()


def _sweep():
    from tests.test_engine_cpu import _sweep_cases  # the op sweep x every model mode

    return _sweep_cases()


def _model(tmp_path: Path, name: str, kwargs: dict, mode: str) -> Path:
    require("tensorflow")
    from tests import models

    path = tmp_path / f"{name}-{mode}.tflite"
    path.write_bytes(models.tflite_model(name, models.BUILDERS[name], kwargs, mode))
    return path


def invoke(args: list[str], label: str) -> int:
    """Run `mobilegen ARGS` and `mobilegen --debug ARGS`; assert neither ends in an unexpected
    exception, only the --debug run shows a traceback, and both exit alike. Returns the code."""
    plain = runner.invoke(app, [str(a) for a in args])
    debug = runner.invoke(app, ["--debug"] + [str(a) for a in args])
    what = f"{label}: mobilegen {' '.join(map(str, args))}"
    for r in (plain, debug):
        assert r.exception is None or isinstance(r.exception, SystemExit), (
            f"{what}: {type(r.exception).__name__}: {r.exception}\n{r.output[-2000:]}"
        )
    assert "Traceback" not in plain.output, f"{what}: a traceback without --debug\n{plain.output[-2000:]}"
    assert plain.exit_code == debug.exit_code, f"{what}: exit {plain.exit_code}, with --debug {debug.exit_code}"
    if plain.exit_code == USER_ERROR:
        errors = [ln for ln in plain.output.splitlines() if ln.startswith("error: ")]
        assert len(errors) == 1, f"{what}: expected one error line\n{plain.output[-2000:]}"
    return plain.exit_code


def _valid(mode: str, precision: str) -> bool:
    return precision != "int8" or mode in INTEGER_MODES


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,mode", _sweep())
def test_every_command_without_traceback(name, kwargs, mode, tmp_path):
    from mobilegen.tflite.reader import read_model_file

    label = f"{name}({kwargs}) [{mode}]"
    model = _model(tmp_path, name, kwargs, mode)
    g = read_model_file(model)
    x = tmp_path / "x.npy"
    np.save(x, random_input(g.tensors[g.inputs[0]], 0))

    assert invoke(["inspect", model], label) == 0
    assert invoke(["inspect", model, "--json"], label) == 0
    assert invoke(["extract", model, "--out", tmp_path / "weights"], label) == 0
    assert invoke(["simulate", model, "--input", x, "--top", 0, "--dump-dir", tmp_path / "sim"], label) == 0
    for precision in PRECISIONS:
        want = 0 if _valid(mode, precision) else USER_ERROR
        dump = tmp_path / f"sim-{precision}"
        got = invoke(["simulate", model, "--input", x, "--top", 0, "--precision", precision, "--dump-dir", dump], label)
        assert got == want, f"{label}: simulate --precision {precision} exited {got}, expected {want}"
        if want == 0:
            assert invoke(["compare", dump, dump], label) == 0
        out = tmp_path / f"android-{precision}"
        # The Android SDK's first input is a picture: [1][h][w][1 or 3] (a one-line error otherwise).
        t_in = g.tensors[g.inputs[0]]
        image = len(t_in.shape) == 4 and t_in.shape[3] in (1, 3)
        want = want if image else USER_ERROR
        got = invoke(["generate", model, "--target", "android", "--out", out, "--precision", precision], label)
        assert got == want, f"{label}: generate --precision {precision} exited {got}, expected {want}"
        if want == 0:
            # the same command again: every file identical, nothing to force
            assert invoke(["generate", model, "--target", "android", "--out", out, "--precision", precision], label) == 0
    # inspect's verdict is what the commands do: generate (so verify) at the model's own precision
    support = json.loads(runner.invoke(app, ["inspect", str(model), "--json"]).output)
    default = invoke(["generate", model, "--target", "android", "--out", tmp_path / "android-default"], label)
    assert (support["support"]["generate"] is None) == (default == 0), (label, support["support"], default)
    assert support["supported"] == (default == 0 and support["support"]["simulate"] is None)
    # comparing a dump with one array is a user error, not a traceback
    assert invoke(["compare", tmp_path / "sim", x], label) == USER_ERROR


# --------------------------------------------------------------------------------------------------
# Fully integer models at float precisions: the engine keeps the model's I/O dtypes
# --------------------------------------------------------------------------------------------------
CONV = ("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"))
# many softmax rows over a picture-shaped input (the Android SDK takes pictures)
SOFTMAX = ("add_softmax_rows", dict(h=5, w=4, cin=3, c=11))


def _verify(project: Path, x: Path, backend: str, dump: Path) -> None:
    r = runner.invoke(app, ["verify", str(project), "--input", str(x), "--output", str(dump) + ".npy",
                            "--dump-dir", str(dump), "--backend", backend, "--repeat", "1"])
    assert r.exit_code == 0, r.output[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("case", [CONV, SOFTMAX], ids=lambda c: c[0])
@pytest.mark.parametrize("mode", ["int8_io", "uint8"])
@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_integer_io_model_at_float_precision(case, mode, precision, tmp_path):
    """generate + verify (CPU and GPU) of a model with 8-bit input and output at fp16/fp32: the
    engine dequantizes at the input, quantizes at the output, and matches `simulate --precision`
    on every tensor, its graph input and output keeping the model's dtypes."""
    from tests.test_engine_cpu import require_toolchain

    require_toolchain()
    from mobilegen.dump import read_dump
    from mobilegen.tflite.reader import read_model_file

    name, kwargs = case
    model = _model(tmp_path, name, kwargs, mode)
    g = read_model_file(model)
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    assert t_in.dtype == t_out.dtype == ("uint8" if mode == "uint8" else "int8"), (t_in.dtype, t_out.dtype)
    x = tmp_path / "x.npy"
    np.save(x, random_input(t_in, 3))
    project = tmp_path / "android"
    r = runner.invoke(app, ["generate", str(model), "--target", "android", "--out", str(project), "--precision", precision])
    assert r.exit_code == 0, r.output[-3000:]
    sim = tmp_path / "sim"
    r = runner.invoke(app, ["simulate", str(model), "--input", str(x), "--top", "0", "--precision", precision,
                            "--dump-dir", str(sim)])
    assert r.exit_code == 0, r.output[-3000:]
    for backend in ("cpu", "gpu"):
        dump = tmp_path / backend
        _verify(project, x, backend, dump)
        # Float tensors within the float contract; the 8-bit graph output within one step: its
        # QUANTIZE rounds float32 values the engine and the simulator (float64 sums) may place on
        # either side of a half step (as the generated instrumentation test allows).
        r = runner.invoke(app, ["compare", str(dump), str(sim), "--tolerance", "1", "--rtol", str(ENGINE_FLOAT_RTOL)])
        assert r.exit_code == 0, f"{name} [{mode}] at {precision} on {backend}:\n{r.output[-3000:]}"
        y = np.load(str(dump) + ".npy")
        assert y.dtype == t_out.dtype and y.shape == tuple(t_out.shape)
        _, values = read_dump(dump)
        assert values[g.outputs[0]].dtype == t_out.dtype


# --------------------------------------------------------------------------------------------------
# float16 weights: folded constants marked in the simulator's dump, skipped by compare
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_float16_weights_dumps_compare_cleanly(precision, tmp_path):
    from tests.test_engine_cpu import require_toolchain

    require_toolchain()
    from mobilegen.tflite.reader import read_model_file

    model = _model(tmp_path, *CONV, "float16")
    g = read_model_file(model)
    folded = [op.outputs[0] for op in g.ops if op.opcode == "DEQUANTIZE" and g.tensors[op.inputs[0]].is_const]
    assert folded, "the float16 model should carry DEQUANTIZE ops of constant weights"
    x = tmp_path / "x.npy"
    np.save(x, random_input(g.tensors[g.inputs[0]], 0))
    project, sim, dump = tmp_path / "android", tmp_path / "sim", tmp_path / "cpu"
    assert runner.invoke(app, ["generate", str(model), "--target", "android", "--out", str(project),
                               "--precision", precision]).exit_code == 0
    r = runner.invoke(app, ["simulate", str(model), "--input", str(x), "--top", "0", "--precision", precision,
                            "--dump-dir", str(sim)])
    assert r.exit_code == 0, r.output
    records = json.loads((sim / "tensors.json").read_text())["tensors"]
    assert sorted(r["index"] for r in records if r.get("constant")) == sorted(folded)
    _verify(project, x, "cpu", dump)
    for a, b in ((dump, sim), (sim, dump)):
        r = runner.invoke(app, ["compare", str(a), str(b), "--rtol", str(ENGINE_FLOAT_RTOL)])
        assert r.exit_code == 0, r.output
        assert f"({len(folded)} constants folded at generation skipped)" in r.output, r.output
        assert r.output.count("skip ") == len(folded), r.output


def test_compare_missing_tensor_still_fails(tmp_path):
    """Only tensors marked constant are skipped: any other tensor missing on one side fails."""
    from mobilegen.dump import INDEX_FILE

    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
    rec = lambda i, **kw: {"index": i, "name": f"t{i}", "shape": [2], "dtype": "float32", "scale": None,
                           "zero_point": None, **kw}
    for i in (0, 1):
        np.save(a / f"{i}.npy", np.ones(2, np.float32))
    np.save(b / "0.npy", np.ones(2, np.float32))
    (a / INDEX_FILE).write_text(json.dumps({"tensors": [rec(0), rec(1, constant=True)]}))
    (b / INDEX_FILE).write_text(json.dumps({"tensors": [rec(0)]}))
    r = runner.invoke(app, ["compare", str(a), str(b)])
    assert r.exit_code == 0 and "1 constants folded at generation skipped" in r.output, r.output
    (a / INDEX_FILE).write_text(json.dumps({"tensors": [rec(0), rec(1)]}))
    r = runner.invoke(app, ["compare", str(a), str(b)])
    assert r.exit_code == 1 and "missing in B" in r.output, r.output


# --------------------------------------------------------------------------------------------------
# One-line errors and readable tables
# --------------------------------------------------------------------------------------------------
def test_compare_dump_against_single_array(tmp_path):
    d = tmp_path / "dump"
    d.mkdir()
    np.save(d / "0.npy", np.zeros(3, np.int8))
    np.save(tmp_path / "y.npy", np.zeros(3, np.int8))
    for args in ((d, tmp_path / "y.npy"), (tmp_path / "y.npy", d)):
        r = runner.invoke(app, ["compare", *map(str, args)])
        assert r.exit_code == USER_ERROR
        assert r.output.strip().splitlines() == [
            f"error: cannot compare dump directory {d} with the single array {tmp_path / 'y.npy'}: give two dump "
            "directories or two .npy files (a dump's <index>.npy is one tensor of it)"
        ]


def test_labels_with_empty_line(tmp_path):
    from mobilegen.inputs import read_labels

    path = tmp_path / "labels.txt"
    path.write_text("cat\ndog\n\n\n")  # blank lines at the end are harmless
    assert read_labels(path) == ["cat", "dog"]
    path.write_text("cat\n\ndog\n")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"never read: the labels are checked first")
    r = runner.invoke(app, ["generate", str(model), "--target", "android", "--out", str(tmp_path / "out"),
                            "--labels", str(path)])
    assert r.exit_code == USER_ERROR, r.output
    assert r.output.strip().splitlines() == [f"error: {path}:2: empty label; expected one class name per line"]
    with pytest.raises(MobilegenError, match=r"labels\.txt:2: empty label"):
        read_labels(path)
    path.write_text("cat\n  \t\ndog\n")
    with pytest.raises(MobilegenError, match=r"labels\.txt:2: empty label"):
        read_labels(path)


def test_compare_shortens_long_names(tmp_path):
    from mobilegen.compare import NAME_WIDTH, short_name
    from mobilegen.dump import INDEX_FILE

    long = "model/block_13/conv_dw/BatchNorm/FusedBatchNormV3;model/block_13/conv_dw/depthwise;Relu6" * 2
    s = short_name(long)
    assert len(s) == NAME_WIDTH and s.startswith(long[:20]) and s.endswith(long[-20:]) and "..." in s
    assert short_name("conv") == "conv"
    d = tmp_path / "d"
    d.mkdir()
    np.save(d / "4.npy", np.zeros(2, np.float32))
    (d / INDEX_FILE).write_text(json.dumps({"tensors": [{"index": 4, "name": long, "shape": [2], "dtype": "float32"}]}))
    r = runner.invoke(app, ["compare", str(d), str(d)])
    assert r.exit_code == 0 and s in r.output and long not in r.output
    r = runner.invoke(app, ["compare", str(d), str(d), "--verbose"])
    assert r.exit_code == 0 and long in r.output


# --------------------------------------------------------------------------------------------------
# Every MobileNet of the tests, integer and float, generates at every precision it can run
# --------------------------------------------------------------------------------------------------
def _mobilenets():
    from tests.test_mobilenet import CASES

    return [
        pytest.param(fam, alpha, res, classes, mode, id=f"{fam}-{alpha}-{res}-{classes}-{mode}")
        for fam, alpha, res, classes, modes in CASES
        for mode in modes
    ]


@pytest.mark.slow
@pytest.mark.parametrize("family,alpha,resolution,classes,mode", _mobilenets())
def test_mobilenet_generates_at_every_precision(family, alpha, resolution, classes, mode, tmp_path):
    from tests.test_mobilenet import mobilenet_tflite

    model = tmp_path / "mobilenet.tflite"
    model.write_bytes(mobilenet_tflite(family, alpha, resolution, classes, mode))
    label = f"MobileNet {family} {alpha} {resolution} [{mode}]"
    assert invoke(["inspect", model], label) == 0
    for precision in PRECISIONS:
        want = 0 if _valid(mode, precision) else USER_ERROR
        got = invoke(["generate", model, "--target", "android", "--out", tmp_path / precision, "--precision", precision], label)
        assert got == want, f"{label}: generate --precision {precision} exited {got}, expected {want}"


def _user_error_cases(tmp_path: Path) -> list[tuple[str, list]]:
    """Each of issue 8's commands given something wrong: a one-line error, no traceback."""
    empty = tmp_path / "empty"
    (empty / "cat").mkdir(parents=True)
    (empty / "dog").mkdir()
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer")
    text = tmp_path / "model.txt"
    text.write_text("x")
    config = tmp_path / "mobilegen.toml"
    config.write_text("[model]\nalpha = 0.3\n")
    return [
        ("train, no such folder", ["train", tmp_path / "missing", "--out", tmp_path / "t1"]),
        ("train, empty class folders", ["train", empty, "--out", tmp_path / "t2"]),
        ("train, bad width", ["train", empty, "--out", tmp_path / "t3", "--alpha", "0.3"]),
        ("convert, not a model", ["convert", text, "--out", tmp_path / "c.tflite", "--quantize", "float32"]),
        ("convert, int8 without data", ["convert", junk, "--out", tmp_path / "c.tflite", "--quantize", "int8"]),
        ("evaluate, not a flatbuffer", ["evaluate", junk, empty]),
        ("evaluate, demo model on a folder without images", ["evaluate", ROOT / "examples" / "demo" / "model.tflite", empty]),
        ("build, bad config", ["build", config, "--out", tmp_path / "b"]),
    ]


def test_issue8_commands_report_user_errors_in_one_line(tmp_path):
    for label, args in _user_error_cases(tmp_path):
        assert invoke(args, label) == USER_ERROR, label
