from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from mobilegen.cli.common import user_errors
from mobilegen.extract import MANIFEST, extract
from mobilegen.tflite.reader import read_model_file


class Layout(str, Enum):
    tflite = "tflite"
    gpu = "gpu"


@user_errors
def extract_cmd(
    model: Path = typer.Argument(..., help="The .tflite model."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Directory for the .npy files and manifest.json."),
    layout: Layout = typer.Option(Layout.tflite, "--layout", help="TFLite's layouts, or the packed layouts of the GPU kernels."),
) -> None:
    """Write every constant tensor (weights, biases) as .npy plus a manifest."""
    entries = extract(read_model_file(model), out, layout is Layout.gpu)
    typer.echo(f"wrote {len(entries)} constant tensors and {MANIFEST} to {out} ({layout.value} layout)")
