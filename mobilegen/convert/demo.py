"""`make demo`'s model: a small MobileNet V1 built with TensorFlow, quantized to int8, with a sample
image, labels, and LiteRT's reference-kernel dump of that image to compare the simulator against.

    python -m mobilegen.convert.demo --out demo_out
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

# The built-in default: small enough to build and convert in seconds.
DEMO_ALPHA = 0.25
DEMO_RESOLUTION = 128
DEMO_LABELS = ("tabby", "tiger", "lynx", "leopard", "cheetah", "jaguar", "lion", "cougar", "ocelot", "serval")
DEMO_SEED = 0


def sample_image(path: Path, size: int) -> None:
    """A deterministic picture (stripes, a disc, a gradient) written as PNG."""
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size] / size
    r = 0.5 + 0.5 * np.sin(12 * xx + 3 * yy)
    g = np.clip(1.2 - 2.5 * np.hypot(xx - 0.55, yy - 0.45), 0, 1)
    b = yy
    rgb = (np.stack([r, g, b], -1) * 255).round().astype(np.uint8)
    Image.fromarray(rgb).save(path)


def build(out: Path) -> Path:
    from mobilegen.convert.keras_models import build_mobilenet_v1
    from mobilegen.convert.quantize import convert
    from mobilegen.dump import write_dump
    from mobilegen.inputs import load_input
    from mobilegen.tflite.reader import read_model
    from mobilegen.verify.reference import run_reference

    out.mkdir(parents=True, exist_ok=True)
    print(f"building MobileNet V1 alpha={DEMO_ALPHA} at {DEMO_RESOLUTION}px, {len(DEMO_LABELS)} classes", flush=True)
    keras_model = build_mobilenet_v1(DEMO_ALPHA, DEMO_RESOLUTION, len(DEMO_LABELS), seed=DEMO_SEED)
    print("converting to int8 (full integer)", flush=True)
    buf = convert(keras_model, "int8")
    model = out / "model.tflite"
    model.write_bytes(buf)
    (out / "labels.txt").write_text("\n".join(DEMO_LABELS) + "\n")
    sample_image(out / "sample.png", DEMO_RESOLUTION)
    g = read_model(buf)
    x = load_input(out / "sample.png", g.tensors[g.inputs[0]])
    np.save(out / "input.npy", x)  # the preprocessed sample, for `mobilegen verify`
    print("running LiteRT's reference kernels (BUILTIN_REF) on the sample image", flush=True)
    write_dump(out / "reference", g, run_reference(buf, x))
    print(f"wrote {model}, labels.txt, sample.png, input.npy, reference/", flush=True)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    build(ap.parse_args().out)


if __name__ == "__main__":
    main()
