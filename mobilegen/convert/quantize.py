"""Keras model -> .tflite bytes in the precisions mobilegen supports.

Every model is converted at a fixed ``[1, ...]`` input signature through
``TFLiteConverter.from_concrete_functions([fn])`` with no trackable object: passing the Keras
model as trackable makes TF 2.21 emit VAR_HANDLE ops and no weights, and ``from_keras_model``
keeps a dynamic batch (SHAPE / STRIDED_SLICE / PACK before reshapes). ``convert`` checks the
result has real weights and a finite, input-dependent output.

The ``uint8`` mode (legacy per-tensor asymmetric models, as TF1 quantization-aware training made
them) still goes through the converter's legacy path: the float32 .tflite is rebuilt as a TF1
graph with ``FakeQuantWithMinMaxArgs`` on every weight and activation (ranges calibrated by running
the float model), then ``tf.compat.v1.lite.TFLiteConverter`` with ``inference_type=tf.uint8``
quantizes it. The converter therefore chooses biases, op versions and the softmax output scale
itself; only the ranges are ours.

``Mode`` names the recipes the test suite builds Keras models with. ``Quantize`` x ``IO`` is what
``mobilegen convert`` offers for any converter (Keras, SavedModel, TF1 frozen graph:
mobilegen.convert.sources); ``configure`` sets a TFLiteConverter (v2 or v1) up for one pair:
- ``dynamic``: dynamic-range, int8 weights (per channel) and float activations; the converter
  only quantizes weights of 1024 elements or more, smaller ones stay float32.
- ``int8``: full integer; ``--io`` picks float32 (QUANTIZE/DEQUANTIZE at the edges), int8 or
  uint8 (a QUANTIZE uint8 -> int8 after the input and int8 -> uint8 before the output).
- ``uint8``: the legacy per-tensor path (see above, or a frozen graph's own FakeQuant ranges).
"""

from __future__ import annotations

import importlib
from enum import Enum

import numpy as np

from mobilegen.convert import quiet, tensorflow


class Mode(str, Enum):
    float32 = "float32"
    float16 = "float16"  # fp16 weights + DEQUANTIZE ops, float compute
    int8 = "int8"  # full integer, float input/output through QUANTIZE/DEQUANTIZE
    int8_io = "int8_io"  # full integer, int8 input and output
    uint8 = "uint8"  # legacy per-tensor asymmetric uint8, uint8 input and output


class Quantize(str, Enum):
    """`mobilegen convert --quantize`."""

    float32 = "float32"
    float16 = "float16"
    dynamic = "dynamic"  # int8 weights, float activations (hybrid ops)
    int8 = "int8"  # full integer, calibrated
    uint8 = "uint8"  # legacy per-tensor asymmetric uint8


class IO(str, Enum):
    """`mobilegen convert --io`: the type of the model's input and output tensors."""

    float32 = "float32"
    int8 = "int8"
    uint8 = "uint8"


# The --io each quantization allows; the first is its default.
ALLOWED_IO = {
    Quantize.float32: (IO.float32,),
    Quantize.float16: (IO.float32,),
    Quantize.dynamic: (IO.float32,),
    Quantize.int8: (IO.float32, IO.int8, IO.uint8),
    Quantize.uint8: (IO.uint8,),
}

# The Mode each (Quantize, IO) pair is, where the test suite has one.
MODES = {
    (Quantize.float32, IO.float32): Mode.float32,
    (Quantize.float16, IO.float32): Mode.float16,
    (Quantize.int8, IO.float32): Mode.int8,
    (Quantize.int8, IO.int8): Mode.int8_io,
    (Quantize.uint8, IO.uint8): Mode.uint8,
}
_RECIPES = {mode: pair for pair, mode in MODES.items()}


# Ops that only appear when the converter failed to freeze the variables into constants.
_VARIABLE_OPS = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"}


def schema():
    """TensorFlow's generated flatbuffer bindings for the TFLite schema (object API included)."""
    return importlib.import_module("tensorflow.lite.python.schema_py_generated")


def opcode_names(model: bytes) -> list[str]:
    """Builtin operator names of the primary subgraph, in execution order."""
    s = schema()
    m = s.Model.GetRootAs(model, 0)
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    g = m.Subgraphs(0)
    out = []
    for i in range(g.OperatorsLength()):
        oc = m.OperatorCodes(g.Operators(i).OpcodeIndex())
        out.append(names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())])
    return out


def input_shape(model) -> tuple[int, ...]:
    """The Keras model's single input shape with the batch fixed to 1."""
    if len(model.inputs) != 1:
        raise ValueError(f"expected a single-input model, got {len(model.inputs)} inputs")
    shape = tuple(model.inputs[0].shape)
    if any(d is None for d in shape[1:]):
        raise ValueError(f"input shape {shape} must be static apart from the batch")
    return (1, *shape[1:])


def default_calibration(shape: tuple[int, ...], n: int = 16) -> np.ndarray:
    """Image-like calibration samples ``[n, *shape[1:]]`` in [-1, 1]."""
    from mobilegen.convert.keras_models import calibration_images

    sample = shape[1:]
    if len(sample) == 3:
        h, w, c = sample
        return calibration_images(n, h, w, seed=0, channels=c)
    # Non-image inputs (e.g. [1, features]) still get spatially smooth values.
    size = int(np.prod(sample))
    return calibration_images(n, 1, size, seed=0, channels=1).reshape(n, *sample)


def _converter(model, shape: tuple[int, ...]):
    tf = tensorflow()

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def forward(x):
        return model(x, training=False)

    with quiet():
        return tf.lite.TFLiteConverter.from_concrete_functions([forward.get_concrete_function()])


def configure(converter, quantize: Quantize, io: IO, calibration: np.ndarray | None) -> None:
    """Set a TFLiteConverter (``tf.lite`` or ``tf.compat.v1.lite``) up for ``quantize`` with
    ``io`` tensors. ``calibration`` (``[n][...]`` float32, as the model's input takes it) drives
    int8. The legacy uint8 settings of a frozen graph are the caller's (sources.py): they need
    the input's mean/std rather than samples."""
    tf = tensorflow()

    if quantize is Quantize.float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize is Quantize.dynamic:
        # Optimize.DEFAULT without a representative dataset: weights only.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize is Quantize.int8:

        def representative():
            for x in calibration:
                yield [x[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io is not IO.float32:
            converter.inference_input_type = getattr(tf, io.value)
            converter.inference_output_type = getattr(tf, io.value)


def _convert_tf(model, mode: Mode, calibration: np.ndarray) -> bytes:
    converter = _converter(model, input_shape(model))
    configure(converter, *_RECIPES[mode], calibration)
    with quiet():
        return bytes(converter.convert())


def quantize_input(model: bytes, x: np.ndarray) -> np.ndarray:
    """``x`` (float) as the model's input expects it: quantized for integer inputs."""
    from ai_edge_litert.interpreter import Interpreter

    d = Interpreter(model_content=model).get_input_details()[0]
    if d["dtype"] == np.float32:
        return x.astype(np.float32)
    scale, zp = d["quantization"]
    info = np.iinfo(d["dtype"])
    q = x.astype(np.float64) / np.float32(scale)
    q = np.sign(q) * np.floor(np.abs(q) + 0.5) + zp  # round half away, like QUANTIZE
    return np.clip(q, info.min, info.max).astype(d["dtype"])


def _check(model: bytes, calibration: np.ndarray) -> None:
    """Reject a converted model without real weights (VAR_HANDLE...) or with a dead output."""
    from mobilegen.verify.reference import run_reference
    from ai_edge_litert.interpreter import Interpreter

    bad = _VARIABLE_OPS.intersection(opcode_names(model))
    if bad:
        raise RuntimeError(f"converted model has variable ops {sorted(bad)} instead of weights")
    out_index = Interpreter(model_content=model).get_output_details()[0]["index"]
    outs = []
    for x in calibration[:2]:
        y = run_reference(model, quantize_input(model, x[None]))[out_index]
        if not np.all(np.isfinite(y)):
            raise RuntimeError("converted model produces non-finite output")
        outs.append(y.astype(np.float64).ravel())
    if np.ptp(np.concatenate(outs)) == 0:
        raise RuntimeError("converted model output is constant (dead activations?)")


def _nudged(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point) that FakeQuantWithMinMaxArgs (8 bits, full range) uses for [lo, hi]."""
    lo, hi = np.float32(lo), np.float32(hi)
    scale = (hi - lo) / np.float32(255)
    zp = np.float32(0) - lo / scale
    return float(scale), int(np.clip(np.floor(zp + np.float32(0.5)), 0, 255))


def _activation_ranges(
    float_model: bytes, calibration: np.ndarray
) -> dict[int, tuple[float, float]]:
    """Per-tensor [min, max] over the calibration set of the graph input and every op output."""
    from mobilegen.verify.reference import run_reference

    s = schema()
    g = s.Model.GetRootAs(float_model, 0).Subgraphs(0)
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    for x in calibration:
        values = run_reference(float_model, x[None])
        values[g.Inputs(0)] = x
        for t, v in values.items():
            lo[t] = min(lo.get(t, np.inf), float(v.min()))
            hi[t] = max(hi.get(t, -np.inf), float(v.max()))
    ranges = {}
    for t in lo:
        # The range must contain 0 (exactly representable after nudging) and not be empty.
        a, b = min(lo[t], 0.0), max(hi[t], 0.0)
        ranges[t] = (a, b if b - a > 1e-6 else a + 1e-6)
    return ranges


# Ops whose uint8 kernels copy or compare values without rescaling: the output must keep the
# input's quantization, so its fake-quant range is the input's.
_SAME_SCALE_OPS = {"RESHAPE", "SQUEEZE", "MAX_POOL_2D", "AVERAGE_POOL_2D", "PAD"}


def _uint8_from_float(float_model: bytes, calibration: np.ndarray) -> bytes:
    """Legacy per-tensor uint8 model (uint8 input and output) from a float32 .tflite."""
    tf = tensorflow()

    tf1 = tf.compat.v1
    s = schema()
    m = s.ModelT.InitFromObj(s.Model.GetRootAs(float_model, 0))
    g = m.subgraphs[0]
    ops = opcode_names(float_model)
    ranges = _activation_ranges(float_model, calibration)
    dtypes = {s.TensorType.FLOAT32: np.float32, s.TensorType.INT32: np.int32}
    act = {
        s.ActivationFunctionType.NONE: lambda v: v,
        s.ActivationFunctionType.RELU: tf.nn.relu,
        s.ActivationFunctionType.RELU6: tf.nn.relu6,
    }
    padding = {s.Padding.SAME: "SAME", s.Padding.VALID: "VALID"}

    def const(i):
        t = g.tensors[i]
        data = bytes(bytearray(m.buffers[t.buffer].data))
        return np.frombuffer(data, dtypes[t.type]).reshape(t.shape)

    def fake_quant(v, lo, hi):
        return tf.quantization.fake_quant_with_min_max_args(v, min=lo, max=hi, num_bits=8)

    def weight(i, shape=None):
        w = const(i)
        w = w if shape is None else w.reshape(shape)
        lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
        return fake_quant(tf.constant(w), lo, hi if hi - lo > 1e-6 else lo + 1e-6)

    def bias(op):
        return const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else 0.0

    graph = tf.Graph()
    with graph.as_default():
        inp = g.inputs[0]
        x = tf1.placeholder(tf.float32, g.tensors[inp].shape, name="input")
        vals = {inp: fake_quant(x, *ranges[inp])}
        used = {inp: ranges[inp]}  # the fake-quant range each activation finally got
        for name, op in zip(ops, g.operators):
            o = op.builtinOptions
            a = vals.get(op.inputs[0])
            if name == "CONV_2D":
                w = tf.transpose(weight(op.inputs[1]), (1, 2, 3, 0))  # OHWI -> HWIO
                y = tf.nn.conv2d(a, w, (1, o.strideH, o.strideW, 1), padding[o.padding],
                                 dilations=(1, o.dilationHFactor, o.dilationWFactor, 1))
                y = act[o.fusedActivationFunction](y + bias(op))
            elif name == "DEPTHWISE_CONV_2D":
                _, kh, kw, oc = g.tensors[op.inputs[1]].shape
                ic = g.tensors[op.inputs[0]].shape[3]
                w = weight(op.inputs[1], (kh, kw, ic, oc // ic))  # [1,H,W,C*dm] -> [H,W,C,dm]
                y = tf.nn.depthwise_conv2d(a, w, (1, o.strideH, o.strideW, 1), padding[o.padding],
                                           dilations=(o.dilationHFactor, o.dilationWFactor))
                y = act[o.fusedActivationFunction](y + bias(op))
            elif name == "FULLY_CONNECTED":
                w = weight(op.inputs[1])
                a = tf.reshape(a, (-1, g.tensors[op.inputs[1]].shape[1]))
                y = act[o.fusedActivationFunction](tf.matmul(a, w, transpose_b=True) + bias(op))
                y = tf.reshape(y, g.tensors[op.outputs[0]].shape)
            elif name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
                pool = tf.nn.avg_pool2d if name == "AVERAGE_POOL_2D" else tf.nn.max_pool2d
                y = act[o.fusedActivationFunction](pool(
                    a, (o.filterHeight, o.filterWidth), (o.strideH, o.strideW), padding[o.padding]))
            elif name == "MEAN":
                y = tf.reduce_mean(a, axis=const(op.inputs[1]).tolist(), keepdims=bool(o.keepDims))
            elif name == "RESHAPE":
                y = tf.reshape(a, g.tensors[op.outputs[0]].shape)
            elif name == "SQUEEZE":
                y = tf.squeeze(a, axis=list(o.squeezeDims))
            elif name == "SOFTMAX":
                y = tf.nn.softmax(a * o.beta if o.beta != 1.0 else a)
            elif name == "ADD":
                y = act[o.fusedActivationFunction](a + vals[op.inputs[1]])
            elif name == "CONCATENATION":
                y = act[o.fusedActivationFunction](
                    tf.concat([vals[i] for i in op.inputs], axis=o.axis))
            elif name == "PAD":
                y = tf.pad(a, const(op.inputs[1]))
            elif name == "RELU":
                y = tf.nn.relu(a)
            elif name == "RELU6":
                y = tf.nn.relu6(a)
            else:
                raise NotImplementedError(f"uint8 conversion of {name} is not supported")
            out = op.outputs[0]
            if name == "SOFTMAX":
                lo, hi = 0.0, 255.0 / 256.0  # the uint8 softmax kernel requires scale 1/256, zp 0
            elif name in _SAME_SCALE_OPS:
                lo, hi = used[op.inputs[0]]
            else:
                lo, hi = ranges[out]
            used[out] = (lo, hi)
            vals[out] = fake_quant(y, lo, hi)
        with tf1.Session(graph=graph) as sess:
            converter = tf1.lite.TFLiteConverter.from_session(sess, [x], [vals[g.outputs[0]]])
            converter.inference_type = tf.uint8
            scale, zp = _nudged(*ranges[inp])
            converter.quantized_input_stats = {"input": (float(zp), 1.0 / scale)}
            with quiet():
                return bytes(converter.convert())


def convert(model, mode: Mode | str, calibration: np.ndarray | None = None) -> bytes:
    """Convert a single-input Keras model to .tflite bytes at batch 1; deterministic.

    The same model object always gives the same bytes. Tensor names embed Keras' layer names,
    whose automatic numbering counts layers made earlier in the process, so an identical model
    rebuilt later differs in those strings only; the builders in this package and in
    ``tests/models.py`` call ``keras.backend.clear_session()`` first to avoid that.

    ``calibration`` (``[n, *input_shape[1:]]`` float32) drives integer quantization; by default
    16 image-like samples from ``default_calibration``.
    """
    mode = Mode(mode)
    shape = input_shape(model)
    if calibration is None:
        calibration = default_calibration(shape)
    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.shape[1:] != shape[1:]:
        raise ValueError(f"calibration shape {calibration.shape} does not match input {shape}")
    if mode is Mode.uint8:
        buf = _uint8_from_float(_convert_tf(model, Mode.float32, calibration), calibration)
    else:
        buf = _convert_tf(model, mode, calibration)
    _check(buf, calibration)
    return buf
