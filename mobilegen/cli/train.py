"""`mobilegen train DATA --out DIR`: train a MobileNet classifier on an image folder (or the built-in
dataset), from scratch or by transfer learning from base weights (mobilegen/train)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mobilegen.cli.common import progress, user_errors
from mobilegen.train.config import (
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DEFAULT_FINE_TUNE_EPOCHS,
    DEFAULT_LR_FINE_TUNE,
    DEFAULT_PATIENCE,
    DEFAULT_VAL_SPLIT,
    TrainConfig,
)
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD


@user_errors
def train_cmd(
    data: str = typer.Argument(..., help="An image folder (one subfolder of JPEG/PNG images per class) or 'builtin'."),
    out: Path = typer.Option(..., "--out", help="Output directory: model.keras, labels.txt, metrics.json, base.weights.h5, logs/."),
    arch: str = typer.Option("v1", "--arch", help="MobileNet version: v1 or v2."),
    alpha: float = typer.Option(0.25, "--alpha", help="Width multiplier: 0.25, 0.5, 0.75, 1.0 (V2: 0.35 .. 1.4)."),
    resolution: int = typer.Option(128, "--resolution", help="Input size in pixels: 96, 128, 160, 192, 224."),
    base_weights: Path | None = typer.Option(None, "--base-weights", help="Weights of the base network (.weights.h5 / .h5, e.g. Keras' mobilenet_*_no_top.h5 or a previous run's DIR/base.weights.h5): transfer learning on cached bottlenecks."),
    fine_tune: int = typer.Option(0, "--fine-tune", help="After the head, also train the top N blocks (V1: 13 depthwise-separable blocks; V2: 17 inverted-residual blocks) on images."),
    epochs: int = typer.Option(DEFAULT_EPOCHS, "--epochs", help="Epochs (of the head with --base-weights, of the whole network without)."),
    fine_tune_epochs: int = typer.Option(DEFAULT_FINE_TUNE_EPOCHS, "--fine-tune-epochs", help="Epochs of --fine-tune."),
    batch_size: int = typer.Option(DEFAULT_BATCH, "--batch-size", help="Global batch size (split across workers)."),
    learning_rate: float | None = typer.Option(None, "--learning-rate", help="Peak Adam learning rate (cosine decay); default 2e-2 from scratch, 1e-2 for the head."),
    fine_tune_learning_rate: float = typer.Option(DEFAULT_LR_FINE_TUNE, "--fine-tune-learning-rate", help="Learning rate of --fine-tune."),
    val_split: float = typer.Option(DEFAULT_VAL_SPLIT, "--val-split", help="Share of each class held out for validation."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, initial weights, shuffling and augmentation."),
    no_augment: bool = typer.Option(False, "--no-augment", help="No flips, crops or colour jitter when training on images."),
    patience: int = typer.Option(DEFAULT_PATIENCE, "--patience", help="Stop after N epochs without a lower validation loss (0: never); the best epoch's weights are kept."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Bottleneck cache (default $MOBILEGEN_CACHE/bottlenecks or ~/.cache/mobilegen/bottlenecks)."),
    distribute: str = typer.Option("none", "--distribute", help="none, or multiworker (tf.distribute.MultiWorkerMirroredStrategy from TF_CONFIG)."),
    mean: float = typer.Option(DEFAULT_MEAN, "--mean", help="Input normalization: (pixel - mean) / std."),
    std: float = typer.Option(DEFAULT_STD, "--std", help="Input normalization: (pixel - mean) / std."),
) -> None:
    """Train an image classifier; prints a JSON summary on stdout."""
    from mobilegen.train import train

    cfg = TrainConfig(data=data, out=out, arch=arch, alpha=alpha, resolution=resolution, base_weights=base_weights,
                      fine_tune=fine_tune, epochs=epochs, fine_tune_epochs=fine_tune_epochs, batch_size=batch_size,
                      learning_rate=learning_rate, fine_tune_learning_rate=fine_tune_learning_rate, val_split=val_split,
                      seed=seed, augment=not no_augment, patience=patience, cache_dir=cache_dir, distribute=distribute,
                      mean=mean, std=std)
    cfg.validate()  # before TensorFlow's import: option errors come at once
    r = train(cfg, progress)
    m = r.metrics
    summary = {"out": str(r.out), "model": str(r.model), "labels": str(r.labels), "metrics": str(r.metrics_path),
               "final": m["final"], "epochs_run": m["epochs_run"], "bottleneck_cache": m["bottleneck_cache"],
               "workers": m["workers"], "weights_sha256": m["weights_sha256"]}
    typer.echo(json.dumps(summary))
