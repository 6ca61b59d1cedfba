"""One-op models swept over awkward shapes, every dtype, against LiteRT's reference kernels.

Every tensor an operator writes must match: integer tensors bit for bit, float tensors within
harness.FLOAT_RTOL. A failure names the model, its parameters, the op and the tensor.
"""

from __future__ import annotations

import pytest

from tests.harness import check_against_reference, require

MODES = ("float32", "float16", "int8", "int8_io", "uint8")

CONV_CASES = [
    dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"),
    dict(h=8, w=8, cin=5, cout=6, k=3, stride=1, padding="valid", activation="relu6"),
    dict(h=11, w=7, cin=13, cout=7, k=1, stride=1, padding="same", activation="relu"),
    dict(h=9, w=9, cin=4, cout=9, k=1, stride=2, padding="valid"),
    dict(h=10, w=6, cin=6, cout=5, k=(3, 2), stride=(2, 1), padding="same", use_bias=False),
    dict(h=12, w=11, cin=3, cout=8, k=3, stride=1, padding="same", dilation=2),
    dict(h=5, w=5, cin=17, cout=3, k=5, stride=1, padding="valid"),
]
DEPTHWISE_CASES = [
    dict(h=7, w=9, c=13, k=3, stride=2, padding="same"),
    dict(h=8, w=8, c=6, k=3, stride=1, padding="valid", activation="relu6"),
    dict(h=9, w=7, c=5, k=3, stride=1, padding="same", depth_multiplier=2),
    dict(h=11, w=11, c=3, k=3, stride=2, padding="valid", depth_multiplier=3, activation="relu"),
    dict(h=12, w=10, c=7, k=3, stride=1, padding="same", dilation=2),
    dict(h=6, w=5, c=4, k=5, stride=2, padding="same"),
]
OTHER_CASES = [
    ("avg_pool", dict(h=9, w=7, c=5, pool=3, stride=2, padding="same")),
    ("avg_pool", dict(h=8, w=8, c=6, pool=2, stride=2, padding="valid")),
    ("max_pool", dict(h=9, w=7, c=5, pool=3, stride=2, padding="same")),
    ("max_pool", dict(h=7, w=7, c=13, pool=2, stride=1, padding="valid")),
    ("mean", dict(h=7, w=5, c=13, keepdims=True)),
    ("mean", dict(h=4, w=6, c=8, keepdims=False)),
    ("dense_softmax", dict(in_features=37, units=11)),
    ("add", dict(h=7, w=5, c=13)),
    ("pad", dict(h=5, w=7, c=3)),
    ("concat", dict(h=5, w=6, c1=3, c2=5)),
    ("relu", dict(h=6, w=7, c=5)),
    ("relu6", dict(h=6, w=7, c=5)),
    ("reshape", dict(h=4, w=6, c=5)),
]


def _label(name, kwargs, mode):
    return f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items())}) [{mode}]"


def _check(name, kwargs, mode):
    require("tensorflow")
    from tests import models

    buf = models.tflite_model(name, models.BUILDERS[name], kwargs, mode)
    for seed in (0, 1):
        check_against_reference(buf, _label(name, kwargs, mode), seed=seed)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kwargs", CONV_CASES, ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_conv2d(kwargs, mode):
    _check("conv2d", kwargs, mode)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kwargs", DEPTHWISE_CASES, ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_depthwise(kwargs, mode):
    _check("depthwise", kwargs, mode)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,kwargs", OTHER_CASES, ids=lambda v: v if isinstance(v, str) else "-".join(f"{x}" for x in v.values()))
def test_other_ops(name, kwargs, mode):
    _check(name, kwargs, mode)
