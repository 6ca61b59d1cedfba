"""Bad input is a user error: one line on stderr naming the thing and what was expected, a
non-zero exit, no traceback (a traceback with --debug).

Most cases go through the library (`read_model` -> `build_plan` -> `Simulator`) and check the
error class and message; `test_cli_one_line` then runs every case through the real CLI
(`inspect` and `simulate`) for the message format, and one case runs as a real subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.errors import ModelFormatError, ModelValidationError, UnsupportedOpError
from mobilegen.plan import build_plan
from mobilegen.sim.runner import Simulator
from mobilegen.tflite.reader import read_model
from tests import models as M
from tests.harness import model_bytes, random_input, require, schema

CONV = ("conv_small", M.conv2d, dict(h=6, w=5, cin=3, cout=4, k=3, activation="relu"))
DENSE = ("dense_softmax_small", M.dense_softmax, dict(in_features=7, units=5))


def tanh(h, w, c, seed=0):
    """A standalone TANH (not supported by mobilegen)."""
    import keras

    return M._model((h, w, c), lambda x: keras.layers.Activation("tanh")(x), seed)


# -- flatbuffer rewriting through TensorFlow's generated object API --------------------------------
def edit(buf: bytes, fn) -> bytes:
    """`buf` unpacked into the object API, changed in place by fn(model), packed again."""
    import flatbuffers

    s = schema()
    m = s.ModelT.InitFromObj(s.Model.GetRootAs(buf, 0))
    fn(m)
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_index(m, opcode: str) -> int:
    s = schema()
    code = getattr(s.BuiltinOperator, opcode)
    sub = m.subgraphs[0]
    for i, op in enumerate(sub.operators):
        oc = m.operatorCodes[op.opcodeIndex]
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code:
            return i
    raise AssertionError(f"no {opcode} in the model")


def set_output_quant(opcode: str, scale=None, zero_point=None):
    """An edit that changes the quantization of the output of the first `opcode` op."""

    def fn(m):
        sub = m.subgraphs[0]
        t = sub.tensors[sub.operators[op_index(m, opcode)].outputs[0]]
        if scale is not None:
            t.quantization.scale = [scale]
        if zero_point is not None:
            t.quantization.zeroPoint = [zero_point]

    return fn


def set_input_quant(opcode: str, scale: float):
    def fn(m):
        sub = m.subgraphs[0]
        sub.tensors[sub.operators[op_index(m, opcode)].inputs[0]].quantization.scale = [scale]

    return fn


def conv_output_shape(m):
    sub = m.subgraphs[0]
    sub.tensors[sub.operators[op_index(m, "CONV_2D")].outputs[0]].shape = [1, 6, 5, 5]


def conv_input_out_of_range(m):
    op = m.subgraphs[0].operators[op_index(m, "CONV_2D")]
    op.inputs = [99, *op.inputs[1:]]


def conv_options_of_add(m):
    s = schema()
    op = m.subgraphs[0].operators[op_index(m, "CONV_2D")]
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.AddOptions, s.AddOptionsT()


def conv_without_filter(m):
    op = m.subgraphs[0].operators[op_index(m, "CONV_2D")]
    op.inputs = [op.inputs[0]]


def conv_filter_absent(m):
    op = m.subgraphs[0].operators[op_index(m, "CONV_2D")]
    op.inputs = [op.inputs[0], -1, op.inputs[2]]


def opcode_out_of_range(m):
    m.subgraphs[0].operators[0].opcodeIndex = 42


def reverse_ops(m):
    m.subgraphs[0].operators.reverse()


def cycle(m):
    """QUANTIZE reads the conv output, which the conv computes from QUANTIZE's output."""
    sub = m.subgraphs[0]
    q, c = op_index(m, "QUANTIZE"), op_index(m, "CONV_2D")
    sub.tensors[sub.operators[c].outputs[0]].type = sub.tensors[sub.operators[q].inputs[0]].type
    sub.operators[q].inputs = [sub.operators[c].outputs[0]]


def externalize_and_break(size_too: bool):
    def fn(m):
        b = next(b for b in m.buffers if b.data is not None and len(b.data) > 0)
        n = len(b.data)
        b.data = None
        b.offset, b.size = (64, 1 << 40) if size_too else (1 << 20, n)

    return fn


def dynamic_batch_model() -> bytes:
    """What `TFLiteConverter.from_keras_model` makes of a model without a fixed batch."""
    tf = require("tensorflow")
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    inp = keras.Input((4, 4, 3))
    model = keras.Model(inp, L.Dense(3)(L.Flatten()(L.Conv2D(2, 3)(inp))))
    return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


# name -> (make bytes, error class, regex the message must match, the reader already fails)
def _cases():
    conv = lambda: model_bytes(CONV, "int8")  # noqa: E731  QUANTIZE, CONV_2D, DEQUANTIZE
    dense = lambda: model_bytes(DENSE, "int8")  # noqa: E731  QUANTIZE, FULLY_CONNECTED, SOFTMAX, DEQUANTIZE
    rng = np.random.default_rng(0)
    noise = rng.bytes(4096)
    cases = {
        "empty": (lambda: b"", ModelFormatError, r"0 bytes is too short", True),
        "random_bytes": (lambda: noise, ModelFormatError, r"file identifier .* expected b'TFL3'", True),
        "random_bytes_tfl3": (lambda: noise[:4] + b"TFL3" + noise[8:], ModelFormatError, r"corrupt|claims|past the end|expected", True),
        "wrong_identifier": (lambda: conv()[:4] + b"TFL2" + conv()[8:], ModelFormatError, r"file identifier is b'TFL2', expected b'TFL3'", True),
        "buffer_offset_past_end": (lambda: edit(conv(), externalize_and_break(False)), ModelFormatError, r"buffer \d+ .* past the end of the \d+-byte file", True),
        "buffer_size_past_end": (lambda: edit(conv(), externalize_and_break(True)), ModelFormatError, r"buffer \d+ .* past the end of the \d+-byte file", True),
        "tensor_index_out_of_range": (lambda: edit(conv(), conv_input_out_of_range), ModelFormatError, r"operator 1 \(CONV_2D\) input refers to tensor 99, but the subgraph has 6 tensors", True),
        "opcode_index_out_of_range": (lambda: edit(conv(), opcode_out_of_range), ModelFormatError, r"operator 0 uses opcode index 42, but the model has 3 operator codes", True),
        "options_of_another_op": (lambda: edit(conv(), conv_options_of_add), ModelFormatError,
                                  r"operator 1 \(CONV_2D\) has options of type AddOptions; expected Conv2DOptions", True),
        "missing_input": (lambda: edit(conv(), conv_without_filter), ModelValidationError, r"op 1 \(CONV_2D\) has 1 inputs; expected 2..3", False),
        "absent_required_input": (lambda: edit(conv(), conv_filter_absent), ModelValidationError,
                                  r"op 1 \(CONV_2D\) lacks a required input \(tensor index -1\)", False),
        "unsupported_tanh": (lambda: model_bytes(("tanh_small", tanh, dict(h=4, w=4, c=3)), "float32"), UnsupportedOpError,
                             r"op 0 \(TANH\) is not supported; supported ops: CONV_2D, DEPTHWISE_CONV_2D, .*SOFTMAX", False),
        "conv_output_shape": (lambda: edit(conv(), conv_output_shape), ModelValidationError,
                              r"op 1 \(CONV_2D\): output tensor 4 .* has shape \[1, 6, 5, 5\]; expected \[1, 6, 5, 4\]", False),
        "scale_zero": (lambda: edit(conv(), set_output_quant("CONV_2D", scale=0.0)), ModelValidationError, r"tensor 4 .* quantization scale 0.0; expected scales > 0", False),
        "scale_negative": (lambda: edit(conv(), set_output_quant("CONV_2D", scale=-0.5)), ModelValidationError, r"tensor 4 .* quantization scale -0.5; expected scales > 0", False),
        "scale_nan": (lambda: edit(conv(), set_output_quant("CONV_2D", scale=float("nan"))), ModelValidationError, r"tensor 4 .* non-finite quantization scale", False),
        "scale_inf": (lambda: edit(conv(), set_output_quant("CONV_2D", scale=float("inf"))), ModelValidationError, r"tensor 4 .* non-finite quantization scale", False),
        "zero_point_high": (lambda: edit(conv(), set_output_quant("CONV_2D", zero_point=128)), ModelValidationError, r"tensor 4 .* zero point 128; expected -128..127 for int8", False),
        "zero_point_low": (lambda: edit(conv(), set_output_quant("CONV_2D", zero_point=-129)), ModelValidationError, r"zero point -129; expected -128..127", False),
        "misordered_ops": (lambda: edit(conv(), reverse_ops), ModelValidationError, r"op 0 \(DEQUANTIZE\) reads tensor 4 .* before op 1 \(CONV_2D\) writes it", False),
        "cycle": (lambda: edit(conv(), cycle), ModelValidationError, r"op 0 \(QUANTIZE\) reads tensor 4 .* before op 1 \(CONV_2D\) writes it \(a cycle", False),
        "softmax_degenerate_scale": (lambda: edit(dense(), set_input_quant("SOFTMAX", 1e-10)), ModelValidationError,
                                     r"op \d \(SOFTMAX\): .*too small.*LiteRT aborts", False),
        "dynamic_batch": (dynamic_batch_model, UnsupportedOpError, r"op 1 \(SHAPE\): .*convert it at batch size 1", False),
    }
    # Truncations: inside the header, inside the root table, and in the middle and end of the data.
    for cut in (4, 9, 20, 64, 600, 1000, -300):
        cases[f"truncated_{cut}"] = (lambda cut=cut: conv()[:cut], ModelFormatError, r"too short|corrupt|claims|past the end|holds", True)
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Each case's bytes, built once per module (and worker)."""
    return {}


def case_bytes(models, name: str) -> bytes:
    if name not in models:
        models[name] = CASES[name][0]()
    return models[name]


def run_library(buf: bytes):
    g = read_model(buf)
    plan = build_plan(g)
    x = random_input(g.tensors[g.inputs[0]], 0)
    return Simulator(plan).run([x])


@pytest.mark.parametrize("name", sorted(CASES))
def test_library_error(models, name):
    _, cls, pattern, in_reader = CASES[name]
    buf = case_bytes(models, name)
    with pytest.raises(cls, match=pattern) as info:
        run_library(buf)
    assert "\n" not in str(info.value)
    if in_reader:
        with pytest.raises(cls):
            read_model(buf)
    else:
        read_model(buf)  # parses; the plan rejects it


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def assert_one_line(result, pattern: str | None = None) -> str:
    """Non-zero exit, exactly one line on stderr starting with `error: `, no traceback."""
    assert result.exit_code not in (0, None), result.stdout
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if pattern:
        import re

        assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_one_line(models, name, tmp_path):
    _, cls, pattern, in_reader = CASES[name]
    buf = case_bytes(models, name)
    model = tmp_path / "model.tflite"
    model.write_bytes(buf)
    x = tmp_path / "x.npy"
    try:
        g = read_model(buf)
        np.save(x, random_input(g.tensors[g.inputs[0]], 0))
    except ModelFormatError:
        np.save(x, np.zeros((1, 6, 5, 3), np.float32))
    line = assert_one_line(invoke(["simulate", str(model), "--input", str(x), "--dump-dir", str(tmp_path / "d")]), pattern)
    assert str(model) in line or not in_reader  # reader errors name the file
    assert not (tmp_path / "d").exists()
    inspected = invoke(["inspect", str(model)])
    if in_reader:
        assert_one_line(inspected, pattern)
    else:
        assert inspected.exit_code == 0, inspected.stderr  # inspect shows models the plan rejects
    # --debug: the traceback of the error's class, then the same one-line error and exit code.
    debug = invoke(["--debug", "simulate", str(model), "--input", str(x), "--dump-dir", str(tmp_path / "d")])
    assert debug.exit_code == cls.exit_code and isinstance(debug.exception, SystemExit), repr(debug.exception)
    assert "Traceback (most recent call last)" in debug.stderr and f"{cls.__module__}.{cls.__name__}" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1] == line


def test_inspect_names_unsupported_ops(models, tmp_path):
    model = tmp_path / "tanh.tflite"
    model.write_bytes(case_bytes(models, "unsupported_tanh"))
    r = invoke(["inspect", str(model)])
    assert r.exit_code == 0
    assert "supported: no (unsupported: TANH; supported ops: CONV_2D" in r.stdout
    assert any(line.split()[1:3] == ["TANH", "NO"] for line in r.stdout.splitlines() if line.strip().startswith("0 "))


def test_litert_aborts_on_degenerate_softmax(models, tmp_path):
    """The reference interpreter aborts the process on this model (so it runs in a child); ours
    is a clean error (test_library_error / test_cli_one_line)."""
    require("ai_edge_litert")
    model = tmp_path / "softmax.tflite"
    model.write_bytes(case_bytes(models, "softmax_degenerate_scale"))
    code = textwrap.dedent(f"""
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        Interpreter(model_path={str(model)!r},
                    experimental_op_resolver_type=OpResolverType.BUILTIN_REF).allocate_tensors()
        print("allocated")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "allocated" not in r.stdout, (r.returncode, r.stdout, r.stderr[-2000:])


# -- inputs ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def conv_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("conv") / "conv_int8.tflite"
    p.write_bytes(model_bytes(CONV, "int8"))
    return p


@pytest.mark.parametrize(
    "array, pattern",
    [
        (np.zeros((1, 5, 6, 3), np.float32), r"x.npy: array is float32\[1, 5, 6, 3\]; the model's input tensor 0 'x' \[1, 6, 5, 3\] float32 expects float32\[1, 6, 5, 3\]"),
        (np.zeros((1, 6, 5, 3), np.float64), r"array is float64\[1, 6, 5, 3\]; .* expects float32\[1, 6, 5, 3\]"),
        (np.zeros((1, 6, 5, 3), np.int8), r"array is int8\[1, 6, 5, 3\]"),
        (np.zeros((2, 6, 5, 3), np.float32), r"array is float32\[2, 6, 5, 3\]"),
    ],
    ids=["shape", "dtype_f64", "dtype_int8", "batch2"],
)
def test_wrong_npy_input(conv_file, tmp_path, array, pattern):
    x = tmp_path / "x.npy"
    np.save(x, array)
    assert_one_line(invoke(["simulate", str(conv_file), "--input", str(x)]), pattern)


@pytest.mark.parametrize(
    "fname, content, pattern",
    [
        ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, r"broken.png: cannot decode image"),
        ("noise.jpg", bytes(range(256)) * 4, r"noise.jpg: cannot decode image"),
        ("empty.png", b"", r"empty.png: cannot decode image"),
        ("x.npy", b"not an npy file", r"x.npy: not a readable .npy file"),
        ("pickled.npy", None, r"pickled.npy: not a readable .npy file"),
        ("x.txt", b"1 2 3", r"x.txt: expected a .npy array or an image"),
    ],
)
def test_unreadable_input(conv_file, tmp_path, fname, content, pattern):
    x = tmp_path / fname
    if content is None:
        np.save(x, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        x.write_bytes(content)
    assert_one_line(invoke(["simulate", str(conv_file), "--input", str(x)]), pattern)


def test_truncated_png(conv_file, tmp_path):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(good)
    bad = tmp_path / "cut.png"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    assert_one_line(invoke(["simulate", str(conv_file), "--input", str(bad)]), r"cut.png: cannot decode image")


def test_bad_labels(conv_file, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 6, 5, 3), np.float32))
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    # The conv output holds 120 values: two labels are not enough; checked before simulating.
    assert_one_line(invoke(["simulate", str(conv_file), "--input", str(x), "--labels", str(labels)]),
                    r"labels.txt: 2 labels for 120 classes")
    labels.write_bytes(b"\xff\xfe\xfa")
    assert_one_line(invoke(["simulate", str(conv_file), "--input", str(x), "--labels", str(labels)]),
                    r"labels.txt: labels must be UTF-8 text, one per line")


def test_unwritable_output(conv_file, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 6, 5, 3), np.float32))
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = invoke(["simulate", str(conv_file), "--input", str(x), "--top", "0", "--output", str(blocker / "y.npy")])
    assert r.exit_code != 0 and isinstance(r.exception, SystemExit)
    assert r.stderr.splitlines()[-1].startswith("error: ") and "Traceback" not in r.stderr


def test_missing_files(conv_file, tmp_path):
    missing = tmp_path / "nope.tflite"
    assert_one_line(invoke(["inspect", str(missing)]), r"nope.tflite: cannot read \(No such file or directory\)")
    assert_one_line(invoke(["inspect", str(tmp_path)]), r"cannot read \(Is a directory\)")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 6, 5, 3), np.float32))
    assert_one_line(invoke(["simulate", str(missing), "--input", str(x)]), r"nope.tflite: cannot read")
    assert_one_line(invoke(["simulate", str(conv_file), "--input", str(tmp_path / "nope.npy")]), r"nope.npy: no such file")
    assert_one_line(invoke(["simulate", str(conv_file), "--input", str(x), "--labels", str(tmp_path / "l.txt")]),
                    r"l.txt: cannot read labels")
    assert_one_line(invoke(["extract", str(missing), "--out", str(tmp_path / "w")]), r"nope.tflite: cannot read")
    assert_one_line(invoke(["compare", str(tmp_path / "a"), str(x)]), r"/a': no such file or directory; expected a dump directory, a .npy file")


def test_real_process(tmp_path):
    """The installed entry point: one line without --debug, a traceback with it."""
    model = tmp_path / "bad.tflite"
    model.write_bytes(b"\0\0\0\0TFL2" + bytes(100))
    cmd = [sys.executable, "-m", "mobilegen.cli.app"]
    r = subprocess.run([*cmd, "inspect", str(model)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"error: {model}: file identifier is b'TFL2', expected b'TFL3' (not a .tflite model)"]
    assert r.stdout == ""
    r = subprocess.run([*cmd, "--debug", "inspect", str(model)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "Traceback (most recent call last)" in r.stderr and "ModelFormatError" in r.stderr


def test_huge_add_scale_one_line(tmp_path):
    """An ADD input scale of 3e38 overflows float32 in Prepare's arithmetic: one clean line, no
    numpy warning."""
    buf = edit(model_bytes(("add_small", M.add, dict(h=4, w=4, c=3)), "int8_io"), set_input_quant("ADD", 3e38))
    model, x = tmp_path / "add.tflite", tmp_path / "x.npy"
    model.write_bytes(buf)
    np.save(x, np.zeros((1, 4, 4, 3), np.int8))
    r = subprocess.run([sys.executable, "-m", "mobilegen.cli.app", "simulate", str(model), "--input", str(x)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "(ADD): multiplier inf" in r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
