"""Images as model inputs for training and evaluation (numpy + PIL, no TensorFlow).

`load_image` gives exactly the pixels that `mobilegen.inputs.image_to_input` feeds the simulator
for a float input [1][h][w][3] (it calls it), so Keras training, Keras evaluation, calibration and
the simulator all see the same values: decode, convert to RGB, bilinear resize by Pillow, then
(pixel - mean) / std in float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD, image_to_input
from mobilegen.ir.graph import Tensor

CHANNELS = 3


def _float_input(resolution: int) -> Tensor:
    """The float model input [1][resolution][resolution][3] that image_to_input decodes for."""
    return Tensor(index=0, name="image", shape=(1, resolution, resolution, CHANNELS), dtype="float32")


def load_image(path: Path, resolution: int, mean: float = DEFAULT_MEAN, std: float = DEFAULT_STD) -> np.ndarray:
    """[h][w][3] float32 (h = w = resolution): `path` decoded, resized and normalized.
    A file PIL cannot decode is a UserInputError naming it."""
    return image_to_input(Path(path), _float_input(int(resolution)), mean, std)[0]


def load_batch(paths: list[Path], resolution: int, mean: float = DEFAULT_MEAN, std: float = DEFAULT_STD) -> np.ndarray:
    """[n][h][w][3] float32: load_image of each path, in order."""
    out = np.empty((len(paths), resolution, resolution, CHANNELS), dtype=np.float32)
    for i, p in enumerate(paths):
        out[i] = load_image(p, resolution, mean, std)
    return out
