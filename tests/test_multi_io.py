"""Models with several inputs or outputs, end to end: the simulator against LiteRT BUILTIN_REF,
the generated engine (CPU fallback and GLES on llvmpipe) against the simulator on every tensor,
and the CLI (`inspect`, `simulate`, `generate`, `verify`, `compare`) with one --input/--output per
graph input/output.

The detector is BlazeFace-shaped (MediaPipe's face detector): a strided conv, depthwise-separable
residual blocks (ADD; a stride-2 block with ZeroPadding2D + a valid depthwise conv, its skip path
MAX_POOL_2D and channels doubled by CONCATENATION), and two heads per feature map reshaped to
[1, anchors, 4] boxes and [1, anchors, 1] scores and concatenated along the anchors: two outputs.
The second model has two image inputs (ADD of two conv branches) and two outputs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from tests.harness import ENGINE_FLOAT_RTOL, random_input, require, tensor_mismatches

MODES = ("float32", "int8", "int8_io")
CACHE = Path(__file__).parent / ".model_cache"
runner = CliRunner()


def _detector(seed: int = 0):
    import keras

    L = keras.layers
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    x = keras.Input((32, 32, 3), batch_size=1)
    c1 = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)  # [1, 16, 16, 8]
    d1 = L.DepthwiseConv2D(3, padding="same")(c1)
    r1 = L.ReLU()(L.Add()([c1, L.Conv2D(8, 1)(d1)]))
    # (1, 1) padding is not what SAME would pad (0, 1), so the converter keeps the PAD op
    d2 = L.DepthwiseConv2D(3, strides=2, padding="valid")(L.ZeroPadding2D(1)(r1))  # [1, 8, 8, 8]
    skip = L.MaxPooling2D(2)(r1)
    r2 = L.ReLU()(L.Add()([L.Conv2D(16, 1)(d2), L.Concatenate()([skip, skip])]))  # [1, 8, 8, 16]
    boxes = L.Concatenate(axis=1)([L.Reshape((16 * 16 * 2, 4))(L.Conv2D(8, 1)(r1)),
                                   L.Reshape((8 * 8 * 2, 4))(L.Conv2D(8, 1)(r2))])
    scores = L.Concatenate(axis=1)([L.Reshape((16 * 16 * 2, 1))(L.Conv2D(2, 1)(r1)),
                                    L.Reshape((8 * 8 * 2, 1))(L.Conv2D(2, 1)(r2))])
    return keras.Model(x, [boxes, scores])


def _two_inputs(seed: int = 0):
    import keras

    L = keras.layers
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    a = keras.Input((12, 10, 3), batch_size=1)
    b = keras.Input((12, 10, 3), batch_size=1)
    s = L.Add()([L.Conv2D(8, 3, padding="same", activation="relu")(a), L.Conv2D(8, 3, padding="same")(b)])
    heat = L.Conv2D(5, 1)(s)
    cls = L.Softmax()(L.Dense(6)(L.GlobalAveragePooling2D()(s)))
    return keras.Model([a, b], [heat, cls])


BUILDERS = {"detector": _detector, "two_inputs": _two_inputs}


def _calibration(model, n: int = 12) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(0)
    yy = [np.linspace(-1, 1, int(t.shape[1]))[:, None, None] for t in model.inputs]
    out = []
    for k in range(n):
        sample = []
        for t, y in zip(model.inputs, yy):
            shape = (1, *map(int, t.shape[1:]))
            smooth = np.sin(3 * y + k) * np.cos(np.linspace(-2, 2, shape[2])[None, :, None] * (1 + k % 3))
            sample.append((0.6 * smooth + 0.4 * rng.uniform(-1, 1, shape)).astype(np.float32).clip(-1, 1))
        out.append(sample)
    return out


def _convert(model, mode: str) -> bytes:
    """A multi-input/output Keras model at batch 1 in `mode` (float32, int8: float I/O, int8_io)."""
    from mobilegen.convert import quiet, tensorflow

    tf = tensorflow()
    specs = [tf.TensorSpec((1, *t.shape[1:]), tf.float32) for t in model.inputs]

    @tf.function(input_signature=specs)
    def forward(*xs):
        return model(list(xs) if len(xs) > 1 else xs[0], training=False)

    with quiet():
        conv = tf.lite.TFLiteConverter.from_concrete_functions([forward.get_concrete_function()])
    if mode != "float32":
        cal = _calibration(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: iter(cal)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode == "int8_io":
            conv.inference_input_type = conv.inference_output_type = tf.int8
    with quiet():
        return bytes(conv.convert())


def model_bytes(name: str, mode: str) -> bytes:
    require("tensorflow")
    import inspect

    key = hashlib.sha256((inspect.getsource(BUILDERS[name]) + inspect.getsource(_convert) + mode).encode()).hexdigest()[:16]
    path = CACHE / f"multi_io-{name}-{mode}-{key}.tflite"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        data = _convert(BUILDERS[name](), mode)
        tmp = path.with_suffix(".tmp" + str(np.random.default_rng().integers(1 << 30)))
        tmp.write_bytes(data)
        tmp.replace(path)
    return path.read_bytes()


CASES = [pytest.param(name, mode, id=f"{name}-{mode}") for name in BUILDERS for mode in MODES]


def _inputs(g, seed: int) -> list[np.ndarray]:
    return [random_input(g.tensors[i], seed + 10 * n) for n, i in enumerate(g.inputs)]


@pytest.mark.parametrize("name,mode", CASES)
def test_model_shape(name, mode):
    """The converted models really have the structure the test is about."""
    from mobilegen.tflite.reader import read_model

    g = read_model(model_bytes(name, mode))
    ops = {op.opcode for op in g.ops}
    if name == "detector":
        assert (len(g.inputs), len(g.outputs)) == (1, 2)
        assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "PAD", "MAX_POOL_2D", "RESHAPE", "CONCATENATION"} <= ops, ops
        assert sorted(tuple(g.tensors[i].shape) for i in g.outputs) == [(1, 640, 1), (1, 640, 4)]
    else:
        assert (len(g.inputs), len(g.outputs)) == (2, 2)
    io_dtype = "int8" if mode == "int8_io" else "float32"
    assert all(g.tensors[i].dtype == io_dtype for i in g.inputs + g.outputs)


@pytest.mark.parametrize("name,mode", CASES)
def test_simulator_matches_reference(name, mode):
    require("ai_edge_litert")
    from mobilegen.plan import build_plan
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model
    from mobilegen.verify.reference import run_reference

    buf = model_bytes(name, mode)
    g = read_model(buf)
    for seed in (0, 1):
        xs = _inputs(g, seed)
        ours = Simulator(build_plan(g)).run(xs)
        ref = run_reference(buf, xs)
        where = {i: f"{name} [{mode}] seed {seed}: {op.describe()} output {g.tensors[i].describe()}"
                 for op in g.ops for i in op.outputs}
        problems = tensor_mismatches(ours, ref, where, ("sim", "reference"))
        assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["cpu", "gpu"])
@pytest.mark.parametrize("name,mode", CASES)
def test_engine_matches_simulator(name, mode, backend, tmp_path):
    """generate, then verify with one --input per graph input and one --output per graph output:
    every tensor of the dump and every output file equals the simulator (floats within the
    engines' tolerance), and compare of the two dumps exits 0."""
    from tests.test_engine_cpu import require_toolchain

    require_toolchain()
    from mobilegen.dump import read_dump
    from mobilegen.export import plan_for_precision
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model

    buf = model_bytes(name, mode)
    model = tmp_path / f"{name}.tflite"
    model.write_bytes(buf)
    g = read_model(buf)
    project = tmp_path / "android"
    r = runner.invoke(app, ["generate", str(model), "--target", "android", "--out", str(project)])
    assert r.exit_code == 0, r.output[-3000:]
    plan, _ = plan_for_precision(g)
    xs = _inputs(g, 5)
    args = []
    for n, x in enumerate(xs):
        np.save(tmp_path / f"x{n}.npy", x)
        args += ["--input", str(tmp_path / f"x{n}.npy")]
    outs = [tmp_path / f"y{n}.npy" for n in range(len(g.outputs))]
    for p in outs:
        args += ["--output", str(p)]
    dump = tmp_path / "dump"
    r = runner.invoke(app, ["verify", str(project), *args, "--dump-dir", str(dump), "--backend", backend, "--repeat", "1"])
    assert r.exit_code == 0, r.output[-3000:]
    want = Simulator(plan).run(xs)
    records, got = read_dump(dump)
    assert [rec["index"] for rec in records] == g.written_tensors()
    where = {i: f"{name} [{mode}] on {backend}: tensor {i} {g.tensors[i].name!r}" for i in g.written_tensors()}
    problems = tensor_mismatches(got, want, where, ("engine", "simulator"), ENGINE_FLOAT_RTOL)
    assert not problems, "\n".join(problems)
    for i, p in zip(g.outputs, outs):
        y = np.load(p)
        assert y.dtype == want[i].dtype and y.shape == want[i].shape
        np.testing.assert_array_equal(y, got[i])
    sim = tmp_path / "sim"
    r = runner.invoke(app, ["simulate", str(model), *[a for n in range(len(xs)) for a in ("--input", str(tmp_path / f"x{n}.npy"))],
                            "--top", "0", "--dump-dir", str(sim)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["compare", str(dump), str(sim), "--rtol", str(ENGINE_FLOAT_RTOL)])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("name", list(BUILDERS))
def test_cli_counts_and_inspect(name, tmp_path):
    """inspect says supported; simulate and verify name the expected count of --input."""
    model = tmp_path / f"{name}.tflite"
    model.write_bytes(model_bytes(name, "int8"))
    r = runner.invoke(app, ["inspect", str(model)])
    assert r.exit_code == 0 and r.output.rstrip().endswith("supported: yes (simulate, generate and verify)"), r.output
    s = json.loads(runner.invoke(app, ["inspect", str(model), "--json"]).output)
    assert s["supported"] and s["support"] == {"simulate": None, "generate": None}
    from mobilegen.tflite.reader import read_model_file

    g = read_model_file(model)
    x = tmp_path / "x.npy"
    np.save(x, random_input(g.tensors[g.inputs[0]], 0))
    too_many = ["--input", str(x)] * (len(g.inputs) + 1)
    r = runner.invoke(app, ["simulate", str(model), *too_many, "--top", "0"])
    assert r.exit_code == 2
    assert f"{len(g.inputs) + 1} --input given; the model has {len(g.inputs)} inputs" in r.output, r.output


def test_inspect_names_what_generate_refuses(tmp_path):
    """A model the simulator runs but the engine does not (concatenation along the height of a
    rank-4 tensor) is "simulate only", with the engine's reason."""
    require("tensorflow")
    import keras

    L = keras.layers
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    x = keras.Input((4, 5, 3), batch_size=1)
    m = keras.Model(x, L.Concatenate(axis=1)([L.Conv2D(3, 1)(x), x]))
    model = tmp_path / "concat_h.tflite"
    model.write_bytes(_convert(m, "float32"))
    r = runner.invoke(app, ["inspect", str(model)])
    assert r.exit_code == 0
    last = r.output.rstrip().splitlines()[-1]
    assert last.startswith("supported: simulate only; generate and verify refuse it: op ") and "axis 1" in last, last
    s = json.loads(runner.invoke(app, ["inspect", str(model), "--json"]).output)
    assert s["supported"] is False and s["support"]["simulate"] is None and "axis 1" in s["support"]["generate"]
    r = runner.invoke(app, ["generate", str(model), "--target", "android", "--out", str(tmp_path / "out")])
    assert r.exit_code == 2 and "axis 1" in r.output
