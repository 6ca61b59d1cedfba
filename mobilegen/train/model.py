"""The classifier: a Keras MobileNet base (no top, average pooling) and a Dropout + Dense head.

Input `[n][res][res][3]` float in [-1, 1] ((pixel - mean) / std, done outside the model: the
normalization travels in the .tflite's metadata). The saved model is `base -> dropout -> dense`
with the base as a nested model named BASE_NAME, so its weights save and load on their own
(DIR/base.weights.h5, or Keras' published `*_no_top.h5` files).

Where --base-weights files come from (nothing is downloaded at run time): a previous run's
DIR/base.weights.h5, or Keras' published ImageNet weights without the top, fetched once
beforehand on a connected machine (or by `keras.applications.MobileNet(weights="imagenet",
include_top=False)` there, which stores them in ~/.keras/models/):
- V1: https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/mobilenet_<a>_<rows>_tf_no_top.h5
  with <a> 2_5, 5_0, 7_5 or 1_0 for alpha 0.25 .. 1.0, <rows> 128 .. 224;
- V2: https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_<alpha>_<rows>_no_top.h5
  (<alpha> 0.35 .. 1.4 written as a float, <rows> 96 .. 224).
Convolution weights do not depend on the input size, so any <rows> file loads at any --resolution
(ImageNet accuracy is best at the file's own).

Blocks, for --fine-tune N (the top N unfreeze, counted from the output down):
- V1: the 13 depthwise-separable blocks `conv_dw_i` + `conv_pw_i` (with their BatchNorms), i = 1..13;
  the stem `conv1` is not a block.
- V2: the 17 inverted-residual blocks, `expanded_conv` (block 0) then `block_1` .. `block_16`; the
  final 1x1 `Conv_1` (with `Conv_1_bn`) above the last block unfreezes with any N >= 1.
"""

from __future__ import annotations

import re

from mobilegen.convert import tensorflow
from mobilegen.errors import UserInputError

BASE_NAME = "base"
HEAD_DROPOUT = "head_dropout"
HEAD_DENSE = "head_dense"
V1_BLOCKS = 13
V2_BLOCKS = 17
# From scratch on a few thousand images an epoch is ~100 steps: Keras' default BatchNorm momentum
# (0.99) leaves the moving statistics behind the weights for most of training, and validation
# (which uses them) lags far behind training accuracy. 0.9 follows within ~20 steps.
SCRATCH_BN_MOMENTUM = 0.9


def keras():
    tensorflow()  # imported quietly before Keras imports it
    import keras as k

    return k


def block_count(arch: str) -> int:
    return V1_BLOCKS if arch == "v1" else V2_BLOCKS


def build_base(arch: str, alpha: float, resolution: int):
    """The MobileNet base with random weights: [n][res][res][3] -> [n][features]."""
    k = keras()
    app = k.applications.MobileNet if arch == "v1" else k.applications.MobileNetV2
    # Keras names the model after alpha and resolution; one fixed name keeps the full model's
    # layer names (and the .tflite's tensor names) the same for every width.
    return app(input_shape=(resolution, resolution, 3), alpha=alpha, include_top=False, weights=None,
               pooling="avg", name=BASE_NAME)


def load_base_weights(base, path) -> None:
    """Weights from a Keras `.weights.h5` or legacy `.h5` of the same architecture; one-line error
    when they do not fit (another width, arch or a model with a top)."""
    try:
        base.load_weights(str(path))
    except (ValueError, KeyError, OSError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserInputError(f"--base-weights {path}: does not fit this base network ({first[:200]})") from None


def build_head(features: int, classes: int, dropout: float):
    """The head alone, [n][features] -> [n][classes] softmax (trained on cached bottlenecks)."""
    k = keras()
    x = k.Input((features,), name="bottleneck")
    y = k.layers.Dropout(dropout, name=HEAD_DROPOUT)(x)
    y = k.layers.Dense(classes, activation="softmax", name=HEAD_DENSE)(y)
    return k.Model(x, y, name="head")


def build_classifier(base, head):
    """base -> head as one model (the head's layers shared, so its trained weights come along)."""
    k = keras()
    res = base.input.shape[1]
    x = k.Input((res, res, 3), name="image")
    y = base(x)
    for name in (HEAD_DROPOUT, HEAD_DENSE):
        y = head.get_layer(name)(y)
    return k.Model(x, y, name="classifier")


def set_bn_momentum(model, momentum: float) -> None:
    k = keras()
    for layer in model.layers:
        if isinstance(layer, k.layers.BatchNormalization):
            layer.momentum = momentum


def block_of(arch: str, layer_name: str) -> int | None:
    """The 1-based block index a base layer belongs to (None: stem, or above the last block)."""
    if arch == "v1":
        m = re.match(r"conv_(?:dw|pw|pad)_(\d+)(?:_|$)", layer_name)
        return int(m.group(1)) if m else None
    if layer_name.startswith("expanded_conv"):
        return 1
    m = re.match(r"block_(\d+)_", layer_name)
    return int(m.group(1)) + 1 if m else None


def blocks(base, arch: str) -> dict[int, list]:
    """Block index (1 = lowest) -> its layers."""
    out: dict[int, list] = {}
    for layer in base.layers:
        b = block_of(arch, layer.name)
        if b is not None:
            out.setdefault(b, []).append(layer)
    return out


def freeze_for_fine_tune(base, arch: str, n: int) -> list[str]:
    """Make only the top `n` blocks of `base` trainable (and V2's final Conv_1 when n >= 1); the
    names of the layers with weights that train."""
    total = block_count(arch)
    if n > total:
        raise UserInputError(f"--fine-tune {n}: MobileNet {arch.upper()} has {total} blocks")
    base.trainable = True
    first = total - n + 1
    trained = []
    for layer in base.layers:
        b = block_of(arch, layer.name)
        top_conv = arch == "v2" and n >= 1 and layer.name.startswith(("Conv_1", "out_relu"))
        layer.trainable = (b is not None and b >= first) or top_conv
        if layer.trainable and layer.weights:
            trained.append(layer.name)
    return trained
