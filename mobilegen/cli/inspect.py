from __future__ import annotations

import json
from pathlib import Path

import typer

from mobilegen.cli.common import user_errors
from mobilegen.summary import format_text, summarize
from mobilegen.tflite.reader import read_model_file


@user_errors
def inspect_cmd(
    model: Path = typer.Argument(..., help="The .tflite model."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Ops, shapes, dtypes, quantization, parameter and byte counts, and whether each op is supported."""
    s = summarize(read_model_file(model))
    typer.echo(json.dumps(s, indent=1) if as_json else format_text(s, str(model)))
