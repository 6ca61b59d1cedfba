"""Keras model -> .tflite bytes in the precisions mobilegen supports.

Every model is converted at a fixed ``[1, ...]`` input signature through
``TFLiteConverter.from_concrete_functions([fn])`` with no trackable object: passing the Keras
model as trackable makes TF 2.21 emit VAR_HANDLE ops and no weights, and ``from_keras_model``
keeps a dynamic batch (SHAPE / STRIDED_SLICE / PACK before reshapes). ``convert`` checks the
result has real weights and a finite, input-dependent output.

The ``uint8`` mode (legacy per-tensor asymmetric models) has no converter path any more; it is
produced by rewriting the float32 model, see ``mobilegen.convert.uint8``.
"""

from __future__ import annotations

import importlib
from enum import Enum

import numpy as np


class Mode(str, Enum):
    float32 = "float32"
    float16 = "float16"  # fp16 weights + DEQUANTIZE ops, float compute
    int8 = "int8"  # full integer, float input/output through QUANTIZE/DEQUANTIZE
    int8_io = "int8_io"  # full integer, int8 input and output
    uint8 = "uint8"  # legacy per-tensor asymmetric uint8, uint8 input and output


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
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def forward(x):
        return model(x, training=False)

    return tf.lite.TFLiteConverter.from_concrete_functions([forward.get_concrete_function()])


def _convert_tf(model, mode: Mode, calibration: np.ndarray) -> bytes:
    import tensorflow as tf

    converter = _converter(model, input_shape(model))
    if mode is Mode.float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode in (Mode.int8, Mode.int8_io):

        def representative():
            for x in calibration:
                yield [x[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode is Mode.int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
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


def convert(model, mode: Mode | str, calibration: np.ndarray | None = None) -> bytes:
    """Convert a single-input Keras model to .tflite bytes at batch 1; deterministic.

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
        from mobilegen.convert.uint8 import quantize_uint8

        buf = quantize_uint8(_convert_tf(model, Mode.float32, calibration), calibration)
    else:
        buf = _convert_tf(model, mode, calibration)
    _check(buf, calibration)
    return buf
