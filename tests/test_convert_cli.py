"""`mobilegen convert`: every source (Keras file, SavedModel, TF1 frozen graph) and every
quantization gives a batch-1 model that the simulator runs and that tracks the original.

Tolerances against the original (Keras, or the TF1 graph run in a Session) on softmax outputs,
about ten times what this test model shows (in brackets), and why:
- float32: 1e-5 absolute, 1e-4 relative [1e-7]: the same float math, only the summation order differs.
- float16: 1e-3 [9e-5]: every weight is rounded to float16 (relative error 2^-11); compute stays float.
- dynamic: 1e-2 [1e-3]: weights are int8 per output channel (error up to half a step, 1/254 of the
  channel's largest weight); activations stay float. Top-1 agrees on every validation image.
- int8 / uint8, full integer: 0.03 [3e-3 / 6e-3], eight steps of the 1/256 softmax output
  (activations quantized to 8 bits at every op), and top-1 agreement >= 90%.

The test data are tiny image folders rendered here (coloured squares on noise, three classes);
the test model is a small conv net trained on them for a few seconds, so its outputs are decisive
(an untrained net's near-uniform softmax would make every quantized model "agree").
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.harness import require

tf = None  # set by the module fixture (TensorFlow is imported lazily, as in the package)

CLASSES = ("blue", "green", "red")  # sorted, as the folder scan orders them
IMAGE = 20  # stored image size: the model's 16 px input makes load_batch resize
RES = 16
PER_CLASS = 16
DYNAMIC_BATCH_OPS = {"SHAPE", "STRIDED_SLICE", "PACK"}
TOLERANCE = {"float32": 1e-5, "float16": 1e-3, "dynamic": 1e-2, "int8": 0.03, "uint8": 0.03}
MIN_AGREEMENT = {"float32": 1.0, "float16": 1.0, "dynamic": 1.0, "int8": 0.9, "uint8": 0.9}


@pytest.fixture(scope="module", autouse=True)
def _tensorflow():
    global tf
    require("tensorflow")
    from mobilegen.convert import tensorflow

    tf = tensorflow()


def _render(root, brightness: float, seed: int):
    """ROOT/<class>/<n>.png: a coloured square (the class) at a random place on grey noise."""
    from PIL import Image

    rng = np.random.RandomState(seed)
    for label, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        channel = {"red": 0, "green": 1, "blue": 2}[name]
        for i in range(PER_CLASS):
            img = rng.uniform(40, 140, (IMAGE, IMAGE, 3))
            s = rng.randint(7, 11)
            y, x = rng.randint(0, IMAGE - s, 2)
            img[y:y + s, x:x + s] = 30
            img[y:y + s, x:x + s, channel] = 255
            img = np.clip(img * brightness, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("data") / "shapes", 1.0, seed=0)


@pytest.fixture(scope="module")
def dark_data(tmp_path_factory):
    """The same kind of images at a quarter of the brightness: a different input range."""
    return _render(tmp_path_factory.mktemp("dark") / "shapes", 0.25, seed=1)


def _images(root, split_side: str):
    from mobilegen.data.folder import scan_folder, split
    from mobilegen.data.images import load_batch

    folder = scan_folder(root)
    train, val = split(folder, 0.2, 0)
    samples = train if split_side == "train" else val
    return load_batch([s.path for s in samples], RES), np.array([s.label for s in samples])


@pytest.fixture(scope="module")
def keras_file(data, tmp_path_factory):
    """A small trained conv net saved as model.keras with labels.txt beside it. Its big weights
    (1x1 conv 16->128, depthwise 3x3 on 128, dense 128->16: >= 1024 elements each) are the ones
    the converter quantizes in dynamic mode, so every hybrid op kind appears."""
    import keras

    L = keras.layers
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    inp = keras.Input((RES, RES, 3))
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inp)
    x = L.Conv2D(128, 1, activation="relu")(x)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(16, activation="relu")(x)
    out = L.Dense(len(CLASSES), activation="softmax")(x)
    model = keras.Model(inp, out)
    # Label smoothing keeps the softmax away from 0/1, where every precision would look exact.
    model.compile(keras.optimizers.Adam(0.01), keras.losses.CategoricalCrossentropy(label_smoothing=0.4))
    xs, ys = _images(data, "train")
    model.fit(xs, np.eye(len(CLASSES))[ys], epochs=30, batch_size=16, verbose=0)
    d = tmp_path_factory.mktemp("model")
    model.save(d / "model.keras")
    (d / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    return d / "model.keras"


@pytest.fixture(scope="module")
def keras_model(keras_file):
    import keras

    return keras.models.load_model(keras_file, compile=False)


@pytest.fixture(scope="module")
def val_images(data):
    return _images(data, "val")


def _ops(buf: bytes) -> list[str]:
    from mobilegen.convert.quantize import opcode_names

    return opcode_names(buf)


def simulate(buf: bytes, x: np.ndarray) -> np.ndarray:
    """The simulator's output for float input x [1][...], dequantized to float64."""
    from mobilegen.convert.quantize import quantize_input
    from mobilegen.export import plan_for_precision
    from mobilegen.inputs import dequantize
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model

    g = read_model(buf)
    plan, _ = plan_for_precision(g, None)
    y = Simulator(plan).run([quantize_input(buf, x)])[g.outputs[0]]
    return dequantize(y, g.tensors[g.outputs[0]])


def _assert_tracks(buf, reference, xs, mode):
    got = np.stack([simulate(buf, x[None]).ravel() for x in xs])
    err = np.abs(got - reference)
    agree = float(np.mean(got.argmax(1) == reference.argmax(1)))
    if mode == "float32":
        np.testing.assert_allclose(got, reference, rtol=1e-4, atol=TOLERANCE[mode])
    assert err.max() <= TOLERANCE[mode], f"{mode}: max |simulated - reference| {err.max():.3g}"
    assert agree >= MIN_AGREEMENT[mode], f"{mode}: top-1 agreement {agree:.2f}"
    assert np.ptp(got) > 0.1  # a live model, not a constant output


MODES = [("float32", None), ("float16", None), ("dynamic", None), ("int8", None), ("int8", "int8"),
         ("int8", "uint8"), ("uint8", None)]


@pytest.mark.parametrize("quantize,io", MODES, ids=[f"{q}-{io or 'default'}" for q, io in MODES])
def test_every_mode_simulates_and_tracks_keras(keras_file, keras_model, data, val_images, quantize, io):
    from mobilegen.convert.sources import convert_model
    from mobilegen.tflite.reader import read_model

    buf = convert_model(keras_file, quantize, io, calibration=str(data))
    ops = _ops(buf)
    assert not DYNAMIC_BATCH_OPS.intersection(ops)
    g = read_model(buf)
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    expect_io = io or ("uint8" if quantize == "uint8" else "float32")
    assert (t_in.shape, t_in.dtype, t_out.dtype) == ((1, RES, RES, 3), expect_io, expect_io)
    if quantize == "dynamic":
        _assert_hybrid(buf, g)
    xs, _ = val_images
    _assert_tracks(buf, np.asarray(keras_model(xs, training=False), np.float64), xs, quantize)


def _assert_hybrid(buf, g):
    """The flatbuffer has int8 weights on float CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED;
    the reader hands those ops float32 weights (dequantized, as the GPU delegate does)."""
    import tflite

    m = tflite.Model.GetRootAs(buf, 0).Subgraphs(0)
    hybrid = set()
    for op in g.ops:
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            stored = m.Tensors(op.inputs[1]).Type()
            if stored == tflite.TensorType.INT8:
                hybrid.add(op.opcode)
                assert g.tensors[op.inputs[1]].dtype == "float32" and g.tensors[op.inputs[1]].quant is None
    assert hybrid == {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}


def test_dynamic_model_generates(keras_file, tmp_path):
    """`generate` accepts a dynamic-range model (its weights folded by the reader)."""
    from typer.testing import CliRunner

    from mobilegen.cli.app import app
    from mobilegen.convert.sources import convert_model

    model = tmp_path / "dyn.tflite"
    model.write_bytes(convert_model(keras_file, "dynamic"))
    r = CliRunner().invoke(app, ["generate", str(model), "--target", "android", "--out", str(tmp_path / "proj")])
    assert r.exit_code == 0, r.output
    assert any((tmp_path / "proj").rglob("*"))


def test_int8_calibration_follows_the_data(keras_file, data, dark_data):
    """The int8 input quantization spans the calibration images' range: darker images give a
    different (narrower) range, so the calibration really runs on DATA's images."""
    from mobilegen.convert.sources import calibration_from_data, convert_model
    from mobilegen.tflite.reader import read_model

    ranges = {}
    for name, root in (("bright", data), ("dark", dark_data)):
        g = read_model(convert_model(keras_file, "int8", "int8", calibration=str(root)))
        q = g.tensors[g.inputs[0]].quant
        lo, hi = q.s * (-128 - q.zp), q.s * (127 - q.zp)
        cal = calibration_from_data(str(root), RES)
        # The range holds the data (and 0), within a step at each end.
        assert lo <= min(cal.min(), 0) + q.s and hi >= max(cal.max(), 0) - q.s
        assert lo >= min(cal.min(), 0) - 2 * q.s and hi <= max(cal.max(), 0) + 2 * q.s
        ranges[name] = (lo, hi)
    assert ranges["dark"][1] < ranges["bright"][1] - 0.5


def test_savedmodel_converts_at_batch_1(keras_model, val_images, tmp_path):
    """tf.saved_model.save of a tf.Module with a dynamic-batch serving signature: the weights
    survive (no VAR_HANDLE: quantize._check) and the model is batch 1."""
    from mobilegen.convert.sources import convert_model

    class Serving(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, RES, RES, 3], tf.float32)])
        def serve(self, x):
            return self.model(x, training=False)

    module = Serving(keras_model)
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    keras_model.export(str(tmp_path / "exported"), verbose=False)  # Keras 3's own SavedModel export
    xs, _ = val_images
    reference = np.asarray(keras_model(xs, training=False), np.float64)
    for directory, mode in (("sm", "float32"), ("sm", "dynamic"), ("exported", "float32")):
        buf = convert_model(tmp_path / directory, mode)
        ops = _ops(buf)
        assert not DYNAMIC_BATCH_OPS.intersection(ops) and "VAR_HANDLE" not in ops
        _assert_tracks(buf, reference, xs, mode)


def test_legacy_h5_keras_file_converts(keras_model, val_images, tmp_path):
    from mobilegen.convert.sources import convert_model

    keras_model.save(tmp_path / "model.h5")
    xs, _ = val_images
    _assert_tracks(convert_model(tmp_path / "model.h5", "float32"),
                   np.asarray(keras_model(xs, training=False), np.float64), xs, "float32")


def _frozen_graph(path, fake_quant: bool):
    """A TF1 graph (conv 3x3/2 + relu6, mean, matmul, softmax) with variables, frozen by
    graph_util.convert_variables_to_constants; optionally with FakeQuant on the input, the weights
    and every activation (what TF1 quantization-aware training leaves). Returns a function that
    runs the frozen graph in a Session."""
    tf1 = tf.compat.v1
    rng = np.random.RandomState(0)

    def fq(v, lo, hi):
        return tf.quantization.fake_quant_with_min_max_args(v, min=lo, max=hi) if fake_quant else v

    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, [None, RES, RES, 3], name="input")
        w1 = tf1.Variable(rng.normal(0, 0.4, (3, 3, 3, 8)).astype(np.float32))
        b1 = tf1.Variable(rng.normal(0, 0.2, 8).astype(np.float32))
        w2 = tf1.Variable(rng.normal(0, 1.0, (8, 5)).astype(np.float32))
        y = tf.nn.relu6(tf.nn.conv2d(fq(x, -1.0, 1.0), fq(w1, -1.5, 1.5), (1, 2, 2, 1), "SAME") + b1)
        y = fq(tf.reduce_mean(fq(y, 0.0, 6.0), axis=[1, 2]), 0.0, 6.0)
        y = fq(tf.matmul(y, fq(w2, -3.0, 3.0)), -12.0, 12.0)
        tf.nn.softmax(y, name="output")
        with tf1.Session(graph=g) as sess:
            sess.run(tf1.global_variables_initializer())
            frozen = tf1.graph_util.convert_variables_to_constants(sess, g.as_graph_def(), ["output"])
    path.write_bytes(frozen.SerializeToString())

    def run(xs):
        graph = tf.Graph()
        with graph.as_default():
            tf.graph_util.import_graph_def(frozen, name="")
            with tf1.Session(graph=graph) as sess:
                return sess.run("output:0", {"input:0": xs}).astype(np.float64)

    return run


@pytest.mark.parametrize("fake_quant", [False, True], ids=["plain", "fakequant"])
def test_frozen_graph_converts_and_simulates(tmp_path, fake_quant):
    from mobilegen.convert.keras_models import calibration_images
    from mobilegen.convert.sources import convert_model

    pb = tmp_path / "graph.pb"
    run = _frozen_graph(pb, fake_quant)
    xs = calibration_images(8, RES, RES, seed=3)  # image-like, in [-1, 1]
    reference = run(xs)
    frozen = dict(input_array="input", output_array="output", input_shape="1,16,16,3")
    buf = convert_model(pb, "float32", labels=list("abcde"), mean=128.0, std=127.0, **frozen)
    assert _ops(buf) == ["CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    from mobilegen.tflite.metadata import read_metadata

    meta = read_metadata(buf)  # given labels win; the normalization travels too
    assert (meta.labels, meta.mean, meta.std) == (list("abcde"), [128.0], [127.0])
    # The FakeQuant graph computes fake-quantized values; its float conversion drops them.
    _assert_tracks(buf, reference if not fake_quant else _frozen_graph(tmp_path / "plain.pb", False)(xs), xs, "float32")
    if fake_quant:
        # Legacy uint8 from the graph's own ranges, the seed's toco path: mean 127.5 / std 127.5
        # maps uint8 pixels onto the input FakeQuant range [-1, 1].
        buf = convert_model(pb, "uint8", mean=127.5, std=127.5, **frozen)
        from mobilegen.tflite.reader import read_model

        g = read_model(buf)
        assert not DYNAMIC_BATCH_OPS.intersection(_ops(buf))
        assert {g.tensors[i].dtype for i in g.inputs + g.outputs} == {"uint8"}
        # The uint8 model computes what the fake-quantized graph computes, to a few output steps.
        got = np.stack([simulate(buf, x[None]).ravel() for x in xs])
        assert np.abs(got - reference).max() <= 4 / 256
        assert np.array_equal(got.argmax(1), reference.argmax(1))


def test_frozen_uint8_without_fake_quant_is_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from mobilegen.cli.app import app

    pb = tmp_path / "graph.pb"
    _frozen_graph(pb, False)
    r = CliRunner().invoke(app, ["convert", str(pb), "--out", str(tmp_path / "m.tflite"), "--quantize", "uint8",
                                 "--input-array", "input", "--output-array", "output", "--input-shape", "1,16,16,3"])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "FakeQuant" in lines[0], r.output
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize("args,message", [
    (["--quantize", "int8"], "--calibration"),
    (["--quantize", "dynamic", "--io", "uint8"], "--io uint8"),
    (["--input-array", "x"], "frozen graph"),
], ids=["int8-without-data", "io-mismatch", "frozen-flag-on-keras"])
def test_cli_errors_are_one_line(keras_file, tmp_path, args, message):
    from typer.testing import CliRunner

    from mobilegen.cli.app import app

    r = CliRunner().invoke(app, ["convert", str(keras_file), "--out", str(tmp_path / "m.tflite"), *args])
    assert r.exit_code == 2, r.output
    assert r.output.count("error:") == 1 and message in r.output, r.output


def test_concrete_function_with_trackable_drops_weights_and_is_rejected(keras_model):
    """The TF 2.21 pitfall: from_concrete_functions([fn], keras_model) freezes nothing and the
    .tflite reads variables (VAR_HANDLE) it does not hold. Our Keras path keeps the weights, and
    quantize._check rejects the broken model."""
    from mobilegen.convert import quiet
    from mobilegen.convert.quantize import _check, default_calibration

    @tf.function(input_signature=[tf.TensorSpec((1, RES, RES, 3), tf.float32)])
    def forward(x):
        return keras_model(x, training=False)

    with quiet():
        broken = bytes(tf.lite.TFLiteConverter.from_concrete_functions(
            [forward.get_concrete_function()], keras_model).convert())
    assert "VAR_HANDLE" in _ops(broken)
    cal = default_calibration((1, RES, RES, 3), n=2)
    with pytest.raises(RuntimeError, match="variable ops"):
        _check(broken, cal)


def test_keras_path_keeps_the_weights(keras_file, keras_model):
    from mobilegen.convert.sources import convert_source, load_source
    from mobilegen.tflite.reader import read_model

    buf = convert_source(load_source(keras_file), "float32")
    assert not {"VAR_HANDLE", "READ_VARIABLE"}.intersection(_ops(buf))
    g = read_model(buf)
    stored = sum(t.size for t in g.tensors if t.is_const and t.dtype == "float32")
    assert stored >= keras_model.count_params()  # every weight is a constant in the file


def test_cli_writes_model_metadata_and_report(keras_file, data, tmp_path):
    """int8 from DATA: labels.txt beside the model and the normalization travel in the metadata;
    the report compares Keras, float32 and int8 on the validation split (F.eval.json)."""
    from typer.testing import CliRunner

    from mobilegen.cli.app import app

    from mobilegen.tflite.metadata import read_metadata

    out = tmp_path / "m.tflite"
    r = CliRunner().invoke(app, ["convert", str(keras_file), "--out", str(out), "--quantize", "int8",
                                 "--calibration", str(data), "--mean", "127.5", "--std", "127.5"])
    assert r.exit_code == 0, r.output
    meta = read_metadata(out.read_bytes())
    assert meta is not None and list(meta.labels) == list(CLASSES)
    assert list(meta.mean) == [127.5] and list(meta.std) == [127.5]
    report = json.loads((tmp_path / "m.eval.json").read_text())
    names = [row["name"] for row in report["rows"]]
    assert names[0] == "keras" and names[1] == "float32 .tflite" and names[2].startswith("int8")
    assert report["n"] == len(_images(data, "val")[1])  # DATA's validation split, as `train` holds it out
    rows = {row["name"]: row for row in report["rows"]}
    assert rows["float32 .tflite"]["agreement_with_keras"] == 1.0
    assert rows[names[2]]["agreement_with_keras"] >= MIN_AGREEMENT["int8"]
    assert report["top1_drop_points_vs_float32"] <= 2.0  # the bar for int8
    assert "keras" in r.output


def test_plan_refuses_integer_weights_under_float_activations(keras_file):
    """Were the reader's folding to miss a hybrid op, the plan must not read its int8 weights as
    raw numbers (what the simulator once did silently): the op is refused, naming it."""
    from mobilegen.convert.sources import convert_model
    from mobilegen.errors import UnsupportedOpError
    from mobilegen.export import plan_for_precision
    from mobilegen.tflite.reader import read_model

    for kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        g = read_model(convert_model(keras_file, "float32"))
        op = next(o for o in g.ops if o.opcode == kind)
        w = g.tensors[op.inputs[1]]
        from mobilegen.ir.graph import Quantization

        w.data, w.dtype = np.clip(np.round(w.data * 100), -127, 127).astype(np.int8), "int8"
        w.quant = Quantization(np.array([0.01], np.float32), np.array([0], np.int64))
        with pytest.raises(UnsupportedOpError, match=f"{kind}.*a float op with int8 (filter|weights)"):
            plan_for_precision(g)
