"""Epoch time of the head on cached bottlenecks vs full fine-tuning, written to TRAIN_RESULTS.md.

    .venv/bin/python benchmarks/train.py [--data builtin] [--alpha 0.25] [--resolution 128] [--epochs 3]
                                         [--scratch-epochs 0]

Same data, same machine, same batch size, both epochs include validation:
- transfer: `train --base-weights W` (the head trains on the cached base outputs); the bottleneck
  cache is filled first (its time is reported separately, it is paid once per data + weights);
- full fine-tuning: `train --base-weights W --fine-tune 13` (every block of V1 and the head train
  on augmented images, the path a model without a cache pays every epoch).
The first epoch of each traces the training step (tf.function), so the figure is the median
over the later epochs. W is a random base with BatchNorm statistics set from image-like data
(nothing is downloaded; the timing does not depend on the weights' values).
With --scratch-epochs N it also trains from scratch with the defaults (`make demo`'s recipe) for
N epochs and reports the validation accuracy per epoch and the seconds per epoch.

Target (issue 8): bottleneck epoch >= 20x faster than a full fine-tuning epoch.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RESULTS = HERE / "TRAIN_RESULTS.md"
TARGET = 20.0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _live_base(path: Path, alpha: float, resolution: int) -> Path:
    from mobilegen.convert.keras_models import _calibrate_batchnorm, calibration_images
    from mobilegen.train.model import build_base

    base = build_base("v1", alpha, resolution)
    _calibrate_batchnorm(base, calibration_images(8, resolution, resolution, seed=0), seed=0)
    base.save_weights(str(path))
    return path


def _later_epochs(history: list[dict]) -> float:
    secs = [h["seconds"] for h in history[1:]] or [history[0]["seconds"]]
    return statistics.median(secs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="builtin")
    ap.add_argument("--alpha", type=float, default=0.25)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--scratch-epochs", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from mobilegen.train import TrainConfig, train

    lines: list[str] = []
    say = lines.append
    with tempfile.TemporaryDirectory(prefix="mobilegen-bench-train-") as tmp:
        tmp = Path(tmp)
        weights = _live_base(tmp / "base.weights.h5", args.alpha, args.resolution)
        common = dict(data=args.data, alpha=args.alpha, resolution=args.resolution, batch_size=args.batch_size,
                      base_weights=weights, cache_dir=tmp / "cache", patience=0, verbose=False)
        t0 = time.monotonic()
        head = train(TrainConfig(out=tmp / "head", epochs=args.epochs, **common), progress=say)
        head_total = time.monotonic() - t0
        t0 = time.monotonic()
        again = train(TrainConfig(out=tmp / "head2", epochs=args.epochs, **common), progress=say)
        hit_total = time.monotonic() - t0
        full = train(TrainConfig(out=tmp / "full", epochs=1, fine_tune=13, fine_tune_epochs=args.epochs, **common), progress=say)
        scratch = None
        if args.scratch_epochs:
            t0 = time.monotonic()
            scratch = train(TrainConfig(data=args.data, out=tmp / "scratch", epochs=args.scratch_epochs, patience=0,
                                        alpha=args.alpha, resolution=args.resolution, verbose=False), progress=say)
            scratch_total = time.monotonic() - t0
    m = head.metrics
    head_epoch = _later_epochs(m["phases"][0]["history"])
    full_epoch = _later_epochs(full.metrics["phases"][1]["history"])
    ratio = full_epoch / head_epoch
    n_train, n_val = m["images"]["train"], m["images"]["validation"]
    import tensorflow as tf

    cmd = "python benchmarks/train.py " + " ".join(sys.argv[1:])
    out = [
        "# Training benchmark: cached bottlenecks vs full fine-tuning",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {_cpu()}, {os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f}"
        f" ({platform.system()} {platform.machine()}, Python {platform.python_version()}, TensorFlow {tf.__version__})",
        f"- command: `{cmd.strip()}`",
        f"- data: {args.data} ({n_train} train / {n_val} validation images), MobileNet V1 {args.alpha}/{args.resolution},"
        f" batch {args.batch_size}",
        "",
        "| what | seconds per epoch (median of epochs 2..) |",
        "|---|---|",
        f"| head on cached bottlenecks (`--base-weights`) | {head_epoch:.3f} |",
        f"| full fine-tuning (`--base-weights --fine-tune 13`, images) | {full_epoch:.2f} |",
        f"| **speed-up** | **{ratio:.0f}x** (target >= {TARGET:.0f}x: {'met' if ratio >= TARGET else 'NOT met'}) |",
        "",
        f"Whole `train` call, {args.epochs} head epochs: {head_total:.1f} s with the cache empty (a miss: the base runs once"
        f" over all {n_train + n_val} images), {hit_total:.1f} s with it filled (a hit:"
        f" {again.metrics['bottleneck_cache']['train']['hit']}); both include TensorFlow's set-up and tracing.",
    ]
    if scratch is not None:
        h = scratch.metrics["phases"][0]["history"]
        out += [
            "",
            f"## From scratch with the defaults ({args.scratch_epochs} epochs, `train {args.data}`)",
            "",
            f"Whole call {scratch_total:.0f} s; {_later_epochs(h):.1f} s per epoch (median of epochs 2..),"
            f" {statistics.median(x['cpu_seconds'] for x in h[1:] or h):.1f} CPU seconds per epoch (all threads);"
            f" final validation accuracy {h[-1]['val_accuracy']:.3f}, best {max(x['val_accuracy'] for x in h):.3f}.",
            "",
            "| epoch | loss | accuracy | val loss | val accuracy | seconds | CPU seconds |",
            "|---|---|---|---|---|---|---|",
        ] + [f"| {x['epoch']} | {x['loss']:.3f} | {x['accuracy']:.3f} | {x['val_loss']:.3f} | {x['val_accuracy']:.3f}"
             f" | {x['seconds']:.1f} | {x['cpu_seconds']:.1f} |" for x in h]
    out += ["", "The machine is shared: seconds depend on its load (given above); the ratio is the figure to compare.", ""]
    args.out.write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
