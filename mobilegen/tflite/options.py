"""Builtin operator options -> plain dicts with normalized keys.

Only the options of operators that some pass or kernel reads are decoded; other operators get an
empty dict and are rejected (with their name) by the support check, not here.
"""

from __future__ import annotations

from typing import Any

import tflite
from tflite.BuiltinOptions import BuiltinOptions

_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_MAX_RANK = 16  # no real tensor has more dims; bounds loops over corrupt vectors
_OPTION_NAMES = {v: k for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}


class OptionsError(ValueError):
    """Options that do not fit the operator (another operator's options table, an out-of-range enum)."""


def _pad(v: int) -> str:
    if v not in _PADDING:
        raise OptionsError(f"has padding {v}; expected 0 (SAME) or 1 (VALID)")
    return _PADDING[v]


def _act(v: int) -> str:
    if v not in _ACTIVATION:
        raise OptionsError(f"has fused activation {v}; expected 0..{len(_ACTIVATION) - 1}")
    return _ACTIVATION[v]


def _ints(obj, name: str) -> list[int]:
    n = getattr(obj, name + "Length")()
    if n > _MAX_RANK:
        raise OptionsError(f"has {n} {name} entries; expected at most {_MAX_RANK}")
    return [int(getattr(obj, name)(j)) for j in range(n)]


# opcode -> (options class, [(key, getter)])
_FIELDS: dict[str, tuple[type, list[tuple[str, Any]]]] = {
    "CONV_2D": (
        tflite.Conv2DOptions,
        [
            ("padding", lambda o: _pad(o.Padding())),
            ("stride_h", lambda o: o.StrideH()),
            ("stride_w", lambda o: o.StrideW()),
            ("dilation_h", lambda o: o.DilationHFactor()),
            ("dilation_w", lambda o: o.DilationWFactor()),
            ("activation", lambda o: _act(o.FusedActivationFunction())),
        ],
    ),
    "DEPTHWISE_CONV_2D": (
        tflite.DepthwiseConv2DOptions,
        [
            ("padding", lambda o: _pad(o.Padding())),
            ("stride_h", lambda o: o.StrideH()),
            ("stride_w", lambda o: o.StrideW()),
            ("dilation_h", lambda o: o.DilationHFactor()),
            ("dilation_w", lambda o: o.DilationWFactor()),
            ("depth_multiplier", lambda o: o.DepthMultiplier()),
            ("activation", lambda o: _act(o.FusedActivationFunction())),
        ],
    ),
    "FULLY_CONNECTED": (
        tflite.FullyConnectedOptions,
        [
            ("activation", lambda o: _act(o.FusedActivationFunction())),
            ("weights_format", lambda o: o.WeightsFormat()),
            ("keep_num_dims", lambda o: bool(o.KeepNumDims())),
        ],
    ),
    "SOFTMAX": (tflite.SoftmaxOptions, [("beta", lambda o: float(o.Beta()))]),
    "ADD": (tflite.AddOptions, [("activation", lambda o: _act(o.FusedActivationFunction()))]),
    "CONCATENATION": (
        tflite.ConcatenationOptions,
        [("axis", lambda o: o.Axis()), ("activation", lambda o: _act(o.FusedActivationFunction()))],
    ),
    "MEAN": (tflite.ReducerOptions, [("keep_dims", lambda o: bool(o.KeepDims()))]),
    "RESHAPE": (tflite.ReshapeOptions, [("new_shape", lambda o: _ints(o, "NewShape"))]),
    "SQUEEZE": (tflite.SqueezeOptions, [("squeeze_dims", lambda o: _ints(o, "SqueezeDims"))]),
}
_POOL = (
    tflite.Pool2DOptions,
    [
        ("padding", lambda o: _pad(o.Padding())),
        ("stride_h", lambda o: o.StrideH()),
        ("stride_w", lambda o: o.StrideW()),
        ("filter_h", lambda o: o.FilterHeight()),
        ("filter_w", lambda o: o.FilterWidth()),
        ("activation", lambda o: _act(o.FusedActivationFunction())),
    ],
)
_FIELDS["AVERAGE_POOL_2D"] = _POOL
_FIELDS["MAX_POOL_2D"] = _POOL

# Defaults of the schema, used when an operator carries no options table at all (strides and
# window sizes of 0 are then rejected by the plan, naming the op).
_POOL_DEFAULTS = {"padding": "SAME", "stride_h": 0, "stride_w": 0, "filter_h": 0, "filter_w": 0, "activation": "NONE"}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "CONV_2D": {"padding": "SAME", "stride_h": 0, "stride_w": 0, "dilation_h": 1, "dilation_w": 1, "activation": "NONE"},
    "DEPTHWISE_CONV_2D": {"padding": "SAME", "stride_h": 0, "stride_w": 0, "dilation_h": 1, "dilation_w": 1,
                          "depth_multiplier": 0, "activation": "NONE"},
    "AVERAGE_POOL_2D": _POOL_DEFAULTS,
    "MAX_POOL_2D": _POOL_DEFAULTS,
    "CONCATENATION": {"axis": 0, "activation": "NONE"},
    "SOFTMAX": {"beta": 0.0},
    "ADD": {"activation": "NONE"},
    "MEAN": {"keep_dims": False},
    "RESHAPE": {},
    "SQUEEZE": {"squeeze_dims": []},
    "FULLY_CONNECTED": {"activation": "NONE", "weights_format": 0, "keep_num_dims": False},
}


def parse_options(opcode: str, op) -> dict[str, Any]:
    """Decode the builtin options of flatbuffer operator `op` whose resolved name is `opcode`.

    Raises OptionsError when the options table is of another operator's type (reading it as this
    operator's would decode unrelated bytes) or a field is out of range."""
    spec = _FIELDS.get(opcode)
    if spec is None:
        return {}
    cls, fields = spec
    table = op.BuiltinOptions()
    if table is None:
        return dict(_DEFAULTS.get(opcode, {}))
    kind = op.BuiltinOptionsType()
    if kind != getattr(BuiltinOptions, cls.__name__):
        raise OptionsError(f"has options of type {_OPTION_NAMES.get(kind, kind)}; expected {cls.__name__}")
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    return {key: get(obj) for key, get in fields}
