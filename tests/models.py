"""Small Keras models (batch 1, fixed seeds) that each convert to one intended TFLite op.

Converter behaviour these builders work around (TF 2.21):
- a RELU / RELU6 right after CONV_2D, DEPTHWISE_CONV_2D, ADD or FULLY_CONNECTED is fused into
  that op's ``fused_activation_function``, and one after RESHAPE is moved in front of it and fused
  the same way; after PAD or CONCATENATION (or on the graph input) it stays a standalone op, so
  ``relu`` / ``relu6`` put a PAD between the conv and the activation.
- GlobalAveragePooling2D becomes MEAN (``keep_dims`` as requested), Flatten / Reshape become
  RESHAPE with a constant shape tensor.

``tflite_model`` converts through ``mobilegen.convert.quantize.convert`` and caches the bytes
under ``tests/.model_cache/`` so a test session (xdist workers included) converts each model once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path

CACHE_DIR = Path(__file__).parent / ".model_cache"


def _model(shape, body, seed: int = 0):
    import keras

    # Fresh layer-name counters: tensor names (and so the .tflite bytes) embed them.
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape, batch_size=1)
    return keras.Model(inp, body(inp))


def _layers():
    import keras

    return keras.layers


def conv2d(h, w, cin, cout, k, stride=1, padding="same", dilation=1, activation=None,
           use_bias=True, seed=0):
    """CONV_2D (activation fused)."""
    L = _layers()
    return _model((h, w, cin), lambda x: L.Conv2D(
        cout, k, strides=stride, padding=padding, dilation_rate=dilation,
        activation=activation, use_bias=use_bias,
        bias_initializer="random_normal" if use_bias else "zeros")(x), seed)


def depthwise(h, w, c, k, stride=1, padding="same", depth_multiplier=1, dilation=1,
              activation=None, seed=0):
    """DEPTHWISE_CONV_2D (activation fused)."""
    L = _layers()
    return _model((h, w, c), lambda x: L.DepthwiseConv2D(
        k, strides=stride, padding=padding, depth_multiplier=depth_multiplier,
        dilation_rate=dilation, activation=activation,
        bias_initializer="random_normal")(x), seed)


def avg_pool(h, w, c, pool, stride, padding="valid", seed=0):
    """AVERAGE_POOL_2D on the input."""
    L = _layers()
    return _model((h, w, c), lambda x: L.AveragePooling2D(pool, stride, padding)(x), seed)


def max_pool(h, w, c, pool, stride, padding="valid", seed=0):
    """MAX_POOL_2D on the input."""
    L = _layers()
    return _model((h, w, c), lambda x: L.MaxPooling2D(pool, stride, padding)(x), seed)


def mean(h, w, c, keepdims=True, seed=0):
    """MEAN over H and W (GlobalAveragePooling2D)."""
    L = _layers()
    return _model((h, w, c), lambda x: L.GlobalAveragePooling2D(keepdims=keepdims)(x), seed)


def dense_softmax(in_features, units, seed=0):
    """FULLY_CONNECTED then SOFTMAX on a ``[1, in_features]`` input."""
    L = _layers()
    return _model((in_features,), lambda x: L.Softmax()(
        L.Dense(units, bias_initializer="random_normal")(x)), seed)


def add(h, w, c, seed=0):
    """Two CONV_2D branches (3x3 and 1x1) joined by ADD: inputs with different scales."""
    L = _layers()
    return _model((h, w, c), lambda x: L.Add()(
        [L.Conv2D(c, 3, padding="same")(x), L.Conv2D(c, 1)(x)]), seed)


def pad(h, w, c, padding=((1, 2), (0, 3)), seed=0):
    """PAD (ZeroPadding2D) on the input; ``padding`` is ((top, bottom), (left, right))."""
    L = _layers()
    return _model((h, w, c), lambda x: L.ZeroPadding2D(padding)(x), seed)


def concat(h, w, c1, c2, seed=0):
    """CONCATENATION of a CONV_2D output (c2 channels) and the input (c1 channels)."""
    L = _layers()
    return _model((h, w, c1), lambda x: L.Concatenate()([L.Conv2D(c2, 1)(x), x]), seed)


def _standalone_activation(h, w, c, layer, seed):
    # The PAD keeps the converter from fusing the activation into the conv.
    L = _layers()
    return _model((h, w, c), lambda x: layer(L.ZeroPadding2D(1)(L.Conv2D(c, 3, padding="same")(x))),
                  seed)


def relu(h, w, c, seed=0):
    """CONV_2D, PAD, then a standalone RELU."""
    return _standalone_activation(h, w, c, _layers().ReLU(), seed)


def relu6(h, w, c, seed=0):
    """CONV_2D, PAD, then a standalone RELU6."""
    return _standalone_activation(h, w, c, _layers().ReLU(6.0), seed)


def reshape(h, w, c, target=None, seed=0):
    """RESHAPE of the input to ``target`` (default ``[h * w, c]``)."""
    L = _layers()
    return _model((h, w, c), lambda x: L.Reshape(target or (h * w, c))(x), seed)


def add_softmax_rows(h, w, cin, c, stddev=1.5, seed=0):
    """Two CONV_2D branches without activation (negative values survive) joined by ADD, then
    SOFTMAX over the channels of each of the h * w pixels (many rows); large weights spread the
    logits over tens of units, so rows hold exps that underflow to zero next to large ones."""
    import keras

    L = _layers()
    init = [keras.initializers.RandomNormal(stddev=stddev, seed=seed + i) for i in range(2)]
    return _model((h, w, cin), lambda x: L.Softmax()(L.Add()([
        L.Conv2D(c, 3, padding="same", kernel_initializer=init[0], bias_initializer="random_normal")(x),
        L.Conv2D(c, 1, kernel_initializer=init[1])(x)])), seed)


BUILDERS = {f.__name__: f for f in (conv2d, depthwise, avg_pool, max_pool, mean, dense_softmax,
                                    add, pad, concat, relu, relu6, reshape, add_softmax_rows)}


def _source_digest() -> str:
    """Digest of the code that determines a converted model, so edits invalidate the cache."""
    from mobilegen.convert import keras_models, quantize

    h = hashlib.sha256()
    for mod in (keras_models, quantize):
        h.update(Path(mod.__file__).read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def tflite_model(name: str, builder, kwargs: dict, mode: str) -> bytes:
    """The .tflite bytes of ``builder(**kwargs)`` converted in ``mode``, cached on disk.

    ``name`` only labels the cache file; the key hashes the builder name, kwargs, mode, the
    TensorFlow version and the converting code.
    """
    mode = getattr(mode, "value", mode)
    key = json.dumps(
        [builder.__name__, kwargs, mode, importlib.metadata.version("tensorflow"),
         _source_digest()],
        sort_keys=True, default=repr,
    )
    path = CACHE_DIR / f"{name}-{mode}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.tflite"
    if path.exists():
        return path.read_bytes()

    from mobilegen.convert.quantize import convert

    buf = convert(builder(**kwargs), mode)
    CACHE_DIR.mkdir(exist_ok=True)
    # Concurrent xdist workers may convert the same model; os.replace makes the last write win
    # atomically and every writer produces identical bytes.
    fd, tmp = tempfile.mkstemp(dir=CACHE_DIR, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(buf)
    os.replace(tmp, path)
    return buf
