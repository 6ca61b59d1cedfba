"""Deterministic Keras MobileNets with live activations, and image-like calibration data.

``weights=None`` MobileNets are numerically dead (logits ~1e-7, which makes LiteRT's reference
softmax abort), and downloading trained weights is not an option, so the BatchNorm moving
statistics are set from calibration data instead: every BN then normalises its real input
distribution and activations keep a unit-ish scale all the way to the logits.
"""

from __future__ import annotations

import numpy as np

from mobilegen.convert import tensorflow


def calibration_images(
    n: int, height: int, width: int, seed: int = 0, channels: int = 3
) -> np.ndarray:
    """``n`` float32 images ``[n, height, width, channels]`` in [-1, 1], deterministic in ``seed``.

    Image-like rather than white noise: a colour gradient, a few soft blobs and low-frequency
    waves, plus a little pixel noise, so neighbouring pixels correlate as in photos.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(
        np.linspace(0.0, 1.0, height, dtype=np.float64),
        np.linspace(0.0, 1.0, width, dtype=np.float64),
        indexing="ij",
    )
    out = np.empty((n, height, width, channels), dtype=np.float32)
    for i in range(n):
        img = rng.normal(0.0, 0.4, channels) + (
            rng.normal(0.0, 0.5, channels) * yy[..., None]
            + rng.normal(0.0, 0.5, channels) * xx[..., None]
        )
        for _ in range(rng.integers(2, 6)):
            cy, cx = rng.uniform(0.0, 1.0, 2)
            r = rng.uniform(0.05, 0.4)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2.0 * r * r))
            img += blob[..., None] * rng.normal(0.0, 0.8, channels)
        for _ in range(2):
            fy, fx = rng.uniform(0.5, 4.0, 2)
            phase = rng.uniform(0.0, 2.0 * np.pi)
            wave = np.sin(2.0 * np.pi * (fy * yy + fx * xx) + phase)
            img += wave[..., None] * rng.normal(0.0, 0.2, channels)
        img += rng.normal(0.0, 0.05, img.shape)
        # tanh keeps the range [-1, 1] without the flat plateaus hard clipping would make.
        out[i] = np.tanh(img)
    return out


def _calibrate_batchnorm(model, images: np.ndarray, seed: int) -> None:
    """Randomise BN gamma/beta, then set moving mean/variance from data in graph order.

    beta is centred at +1 rather than 0: with most ReLU units in their linear range the random
    network is far less chaotic, so quantization noise is not amplified layer after layer (int8
    MobileNet V1 0.25/96 agrees with float on top-1 for ~12% of images with beta ~ N(0, 0.1),
    ~90% with beta ~ N(1, 0.1)).
    """
    tensorflow()  # imported quietly before Keras imports it
    import keras

    rng = np.random.default_rng(seed)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for bn in bns:
        c = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 1.5, c).astype(np.float32))
        bn.beta.assign(rng.normal(1.0, 0.1, c).astype(np.float32))
    # model.layers is topologically sorted, and each prefix model shares the live layers, so a
    # BN's input is computed with every earlier BN already calibrated.
    for bn in bns:
        prefix = keras.Model(model.input, bn.input)
        x = np.asarray(prefix(images, training=False), dtype=np.float64)
        bn.moving_mean.assign(x.mean(axis=(0, 1, 2)).astype(np.float32))
        bn.moving_variance.assign(x.var(axis=(0, 1, 2)).astype(np.float32))


def _finish(model, resolution: int, seed: int):
    _calibrate_batchnorm(model, calibration_images(16, resolution, resolution, seed=seed), seed)
    return model


def build_mobilenet_v1(
    alpha: float = 1.0,
    resolution: int = 224,
    classes: int = 1000,
    seed: int = 0,
    depth_multiplier: int = 1,
):
    """Keras MobileNet V1 (random weights at ``seed``, BN statistics from calibration data)."""
    tensorflow()  # imported quietly before Keras imports it
    import keras

    keras.backend.clear_session()  # layer-name counters end up in the .tflite tensor names
    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNet(
        input_shape=(resolution, resolution, 3),
        alpha=alpha,
        depth_multiplier=depth_multiplier,
        include_top=True,
        weights=None,
        classes=classes,
    )
    return _finish(model, resolution, seed)


def build_mobilenet_v2(
    alpha: float = 1.0, resolution: int = 224, classes: int = 1000, seed: int = 0
):
    """Keras MobileNet V2 (random weights at ``seed``, BN statistics from calibration data)."""
    tensorflow()  # imported quietly before Keras imports it
    import keras

    keras.backend.clear_session()  # layer-name counters end up in the .tflite tensor names
    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNetV2(
        input_shape=(resolution, resolution, 3),
        alpha=alpha,
        include_top=True,
        weights=None,
        classes=classes,
    )
    return _finish(model, resolution, seed)
