"""Whole Keras MobileNet V1 and V2 models, every tensor against LiteRT's reference kernels.

Models are built with TensorFlow at fixed seeds with BatchNorm statistics set from image-like data
(mobilegen.convert.keras_models) so activations stay alive, converted at batch 1, and cached under
tests/.model_cache for the session.
"""

from __future__ import annotations

import pytest

from tests.harness import check_against_reference, require

# (family, alpha, resolution, classes, modes)
CASES = [
    ("v1", 0.25, 128, 10, ("float32", "float16", "int8", "int8_io", "uint8")),
    ("v1", 0.5, 97, 37, ("int8",)),
    ("v1", 0.75, 160, 5, ("int8", "float32")),
    ("v2", 0.35, 96, 10, ("float32", "float16", "int8", "int8_io", "uint8")),
    ("v2", 0.5, 113, 3, ("int8",)),
]
PARAMS = [
    pytest.param(fam, alpha, res, classes, mode, id=f"{fam}-{alpha}-{res}-{classes}-{mode}")
    for fam, alpha, res, classes, modes in CASES
    for mode in modes
]
FULL_SIZE = [
    pytest.param("v1", 1.0, 224, 1000, "int8", id="v1-1.0-224-1000-int8"),
    pytest.param("v1", 1.0, 224, 1000, "float32", id="v1-1.0-224-1000-float32"),
    pytest.param("v2", 1.0, 224, 1000, "int8", id="v2-1.0-224-1000-int8"),
]


def mobilenet_tflite(family: str, alpha: float, resolution: int, classes: int, mode: str) -> bytes:
    require("tensorflow")
    from mobilegen.convert import keras_models
    from tests.models import tflite_model

    builder = keras_models.build_mobilenet_v1 if family == "v1" else keras_models.build_mobilenet_v2
    kwargs = dict(alpha=alpha, resolution=resolution, classes=classes, seed=0)
    return tflite_model(f"mobilenet_{family}", builder, kwargs, mode)


def _check(family, alpha, resolution, classes, mode):
    buf = mobilenet_tflite(family, alpha, resolution, classes, mode)
    label = f"MobileNet {family} alpha={alpha} {resolution}px {classes} classes [{mode}]"
    check_against_reference(buf, label, seed=0)
    if mode not in ("float32", "float16"):
        check_against_reference(buf, label, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("family,alpha,resolution,classes,mode", PARAMS)
def test_mobilenet(family, alpha, resolution, classes, mode):
    _check(family, alpha, resolution, classes, mode)


@pytest.mark.slow
@pytest.mark.parametrize("family,alpha,resolution,classes,mode", FULL_SIZE)
def test_mobilenet_full_size(family, alpha, resolution, classes, mode):
    _check(family, alpha, resolution, classes, mode)
