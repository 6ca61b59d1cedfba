"""`mobilegen evaluate MODEL DATA`: top-1, top-5 and a confusion matrix of a .keras or .tflite
classifier over an image folder (mobilegen.evaluate)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from mobilegen.cli.common import progress, user_errors
from mobilegen.cli.generate import Precision
from mobilegen.errors import UserInputError
from mobilegen.export import default_precision
from mobilegen.evaluate import (
    DEFAULT_BATCH,
    evaluate_keras,
    evaluate_tflite,
    format_evaluation,
    map_samples,
    tflite_labels,
    tflite_normalization,
)
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD, read_labels
from mobilegen.tflite.reader import read_model

KERAS_SUFFIXES = (".keras", ".h5")
LABELS_BESIDE = "labels.txt"  # what `mobilegen train` writes next to model.keras
DEFAULT_VAL_SPLIT = 0.2


class Split(str, Enum):
    all = "all"
    val = "val"


def model_labels(model: Path, buf: bytes | None, labels: Path | None) -> tuple[list[str], str]:
    """The model's class names and where they came from: --labels, else the .tflite's metadata,
    else labels.txt beside the model."""
    if labels is not None:
        return read_labels(labels), str(labels)
    if buf is not None:
        names = tflite_labels(buf, source=str(model))
        if names:
            return names, f"{model} metadata"
    beside = model.parent / LABELS_BESIDE
    if beside.is_file():
        return read_labels(beside), str(beside)
    raise UserInputError(
        f"{model}: no class names (no metadata labels, no {LABELS_BESIDE} beside it); pass --labels FILE, one name per line in output order"
    )


@user_errors
def evaluate_cmd(
    model: Path = typer.Argument(..., help="A .tflite model (run by the simulator) or a .keras/.h5 Keras model."),
    data: str = typer.Argument(..., help="An image folder (one subfolder per class) or 'builtin'."),
    labels: Path = typer.Option(None, "--labels", help="The model's class names, one per line in output order (default: the .tflite's metadata, else labels.txt beside the model)."),
    mean: float = typer.Option(None, help="Image normalization (pixel - mean) / std (default: the model's metadata, else 127.5)."),
    std: float = typer.Option(None, help="Image normalization (pixel - mean) / std (default: the model's metadata, else 127.5)."),
    batch: int = typer.Option(DEFAULT_BATCH, "--batch", min=1, help="Images per simulator / predict batch."),
    split: Split = typer.Option(Split.all, "--split", help="all images, or the validation split `train` held out (same --val-split and --seed)."),
    val_split: float = typer.Option(DEFAULT_VAL_SPLIT, "--val-split", help="Validation fraction for --split val."),
    seed: int = typer.Option(0, "--seed", help="Split seed for --split val."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    precision: Precision = typer.Option(None, "--precision", help="For a .tflite: run as the engine does at int8, fp16 or fp32 (default: the model's own)."),
) -> None:
    """Top-1, top-5 and a confusion matrix of a classifier over an image folder."""
    from mobilegen.data.folder import report_skipped, resolve_data
    from mobilegen.data.folder import split as split_samples

    # Every user mistake is found before the first progress line.
    suffix = model.suffix.lower()
    if not model.exists():
        raise UserInputError(f"{model}: no such model file")
    is_tflite = suffix == ".tflite"
    if not is_tflite and suffix not in KERAS_SUFFIXES and not model.is_dir():
        raise UserInputError(f"{model}: expected a .tflite or a Keras model ({', '.join(KERAS_SUFFIXES)})")
    if not is_tflite and precision is not None:
        raise UserInputError("--precision applies to a .tflite model; a Keras model runs in float32")
    buf = model.read_bytes() if is_tflite else None
    names, names_from = model_labels(model, buf, labels)
    if is_tflite:
        g = read_model(buf)
        classes_out = g.tensors[g.outputs[0]].size
        if classes_out != len(names):
            raise UserInputError(f"{model} has {classes_out} output classes; {names_from} names {len(names)}")
    if is_tflite:
        mean, std = tflite_normalization(buf, mean, std, source=str(model))
    else:
        mean = DEFAULT_MEAN if mean is None else mean
        std = DEFAULT_STD if std is None else std
    folder = resolve_data(data)
    samples = folder.samples
    if split is Split.val:
        _, samples = split_samples(folder, val_split, seed)
        if not samples:
            raise UserInputError(f"{folder.root}: the validation split is empty (--val-split {val_split})")
    samples = map_samples(samples, folder.classes, names, where=str(folder.root))
    report_skipped(folder, progress)
    progress(f"evaluating {model} on {len(samples)} images of {folder.root} ({split.value}); labels from {names_from}")
    if is_tflite:
        e = evaluate_tflite(buf, samples, names, mean=mean, std=std, batch=batch, precision=precision)
        used_precision = precision.value if precision else default_precision(g)
    else:
        e = evaluate_keras(model, samples, names, mean=mean, std=std, batch=batch)
        used_precision = "keras"
    progress(f"done in {e.seconds:.2f} s ({e.images_per_second:.1f} images/s)")
    if as_json:
        out = {
            "model": str(model), "data": str(folder.root), "split": split.value,
            "val_split": val_split if split is Split.val else None, "seed": seed if split is Split.val else None,
            "precision": used_precision, "mean": mean, "std": std, "labels_from": names_from,
            "skipped": len(folder.skipped),
        }
        out.update(e.to_json())
        typer.echo(json.dumps(out, indent=1))
    else:
        typer.echo(format_evaluation(e))
