"""The converter produces the intended ops, real weights, live outputs, and identical bytes."""

from __future__ import annotations

import numpy as np
import pytest
import tflite

from tests import models as M
from mobilegen.convert.quantize import Mode, quantize_input
from mobilegen.verify.reference import run_reference

pytest.importorskip("tensorflow")

_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}

# (cache name, builder, kwargs, the ops the builder is meant to produce in float32)
CASES = [
    ("conv_s2_same_relu6", M.conv2d,
     dict(h=9, w=7, cin=3, cout=5, k=3, stride=2, padding="same", activation="relu6"), ["CONV_2D"]),
    ("conv_dil_valid_nobias", M.conv2d,
     dict(h=9, w=8, cin=4, cout=3, k=3, dilation=2, padding="valid", use_bias=False), ["CONV_2D"]),
    ("conv_1x1_relu", M.conv2d,
     dict(h=4, w=5, cin=8, cout=16, k=1, activation="relu"), ["CONV_2D"]),
    ("dw_s2_dm2_relu", M.depthwise,
     dict(h=9, w=7, c=4, k=3, stride=2, padding="same", depth_multiplier=2, activation="relu"),
     ["DEPTHWISE_CONV_2D"]),
    ("dw_dil_valid", M.depthwise,
     dict(h=10, w=9, c=3, k=3, padding="valid", dilation=2), ["DEPTHWISE_CONV_2D"]),
    ("avg_pool_same", M.avg_pool, dict(h=7, w=6, c=3, pool=3, stride=2, padding="same"),
     ["AVERAGE_POOL_2D"]),
    ("max_pool_valid", M.max_pool, dict(h=7, w=6, c=3, pool=2, stride=2, padding="valid"),
     ["MAX_POOL_2D"]),
    ("mean_keep", M.mean, dict(h=5, w=7, c=6, keepdims=True), ["MEAN"]),
    ("mean_flat", M.mean, dict(h=3, w=3, c=4, keepdims=False), ["MEAN"]),
    ("dense_softmax", M.dense_softmax, dict(in_features=17, units=10),
     ["FULLY_CONNECTED", "SOFTMAX"]),
    ("add", M.add, dict(h=5, w=6, c=3), ["CONV_2D", "CONV_2D", "ADD"]),
    ("pad_odd", M.pad, dict(h=5, w=4, c=3, padding=((1, 2), (0, 3))), ["PAD"]),
    ("concat", M.concat, dict(h=5, w=5, c1=3, c2=4), ["CONV_2D", "CONCATENATION"]),
    ("relu", M.relu, dict(h=5, w=5, c=3), ["CONV_2D", "PAD", "RELU"]),
    ("relu6", M.relu6, dict(h=5, w=5, c=3), ["CONV_2D", "PAD", "RELU6"]),
    ("reshape", M.reshape, dict(h=4, w=3, c=5), ["RESHAPE"]),
]

# Ops whose every non-constant tensor is integer in the integer modes.
_ACTIVATION_TYPE = {Mode.int8: "INT8", Mode.int8_io: "INT8", Mode.uint8: "UINT8"}


def _ops_and_types(buf: bytes) -> tuple[list[str], list[str], dict[str, str]]:
    """Op names in order, the output tensor type of each op, and the graph io types."""
    m = tflite.Model.GetRootAs(buf, 0)
    g = m.Subgraphs(0)
    ops, out_types = [], []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        oc = m.OperatorCodes(op.OpcodeIndex())
        ops.append(_OP_NAMES[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())])
        out_types.append(_TYPE_NAMES[g.Tensors(op.Outputs(0)).Type()])
    io = {"input": _TYPE_NAMES[g.Tensors(g.Inputs(0)).Type()],
          "output": _TYPE_NAMES[g.Tensors(g.Outputs(0)).Type()]}
    return ops, out_types, io


def _output(buf: bytes, x: np.ndarray) -> np.ndarray:
    m = tflite.Model.GetRootAs(buf, 0)
    return run_reference(buf, quantize_input(buf, x))[m.Subgraphs(0).Outputs(0)]


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
@pytest.mark.parametrize("name,builder,kwargs,core", CASES, ids=[c[0] for c in CASES])
def test_builder_produces_intended_ops(name, builder, kwargs, core, mode):
    buf = M.tflite_model(name, builder, kwargs, mode)
    ops, out_types, io = _ops_and_types(buf)
    if mode is Mode.float16:
        # One DEQUANTIZE per fp16 weight/bias constant, ahead of the compute.
        assert [o for o in ops if o != "DEQUANTIZE"] == core
        has_weights = any(o in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") for o in core)
        assert ("DEQUANTIZE" in ops) == has_weights
    elif mode is Mode.int8:
        assert ops == ["QUANTIZE", *core, "DEQUANTIZE"]
        assert io == {"input": "FLOAT32", "output": "FLOAT32"}
    else:
        assert ops == core
    if mode in _ACTIVATION_TYPE:
        inner = out_types[1:-1] if mode is Mode.int8 else out_types
        assert set(inner) == {_ACTIVATION_TYPE[mode]}
        if mode is not Mode.int8:
            assert io == {"input": _ACTIVATION_TYPE[mode], "output": _ACTIVATION_TYPE[mode]}


@pytest.fixture(scope="module")
def mobilenet_v1():
    from mobilegen.convert.keras_models import build_mobilenet_v1

    return build_mobilenet_v1(alpha=0.25, resolution=96, classes=10, seed=0)


def _assert_live_softmax(p: np.ndarray) -> None:
    p = p.astype(np.float64).ravel()
    assert np.all(np.isfinite(p))
    assert p.max() < 0.999
    assert np.ptp(p) > 1e-3
    assert abs(p.sum() - 1.0) < 0.05


@pytest.mark.slow
def test_mobilenet_v1_keras_is_live(mobilenet_v1):
    from mobilegen.convert.keras_models import calibration_images

    x = calibration_images(4, 96, 96, seed=1)
    for p in np.asarray(mobilenet_v1(x, training=False)):
        _assert_live_softmax(p)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [Mode.int8, Mode.int8_io, Mode.uint8], ids=lambda m: m.value)
def test_mobilenet_v1_quantized_tracks_float(mobilenet_v1, mode):
    from mobilegen.convert.keras_models import calibration_images
    from mobilegen.convert.quantize import convert

    buf = convert(mobilenet_v1, mode)
    out = tflite.Model.GetRootAs(buf, 0).Subgraphs(0)
    q = out.Tensors(out.Outputs(0)).Quantization()
    x = calibration_images(16, 96, 96, seed=1)  # not the calibration set (seed 0)
    expect = np.asarray(mobilenet_v1(x, training=False))
    got = []
    for i in range(len(x)):
        y = _output(buf, x[i : i + 1]).astype(np.float64)
        if mode is not Mode.int8:
            y = (y - q.ZeroPoint(0)) * q.Scale(0)
        _assert_live_softmax(y)
        got.append(y.ravel())
    got = np.array(got)
    # The random network is deep enough that quantization noise flips near ties now and then.
    assert np.mean(got.argmax(1) == expect.argmax(1)) >= 0.75
    assert np.abs(got - expect).mean() < 0.02


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_conversion_is_deterministic(mobilenet_v1, mode):
    from mobilegen.convert.quantize import convert

    assert convert(mobilenet_v1, mode) == convert(mobilenet_v1, mode)


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_small_conversion_is_deterministic(mode):
    from mobilegen.convert.quantize import convert

    kwargs = dict(h=6, w=6, cin=3, cout=4, k=3, activation="relu")
    assert convert(M.conv2d(**kwargs), mode) == convert(M.conv2d(**kwargs), mode)
