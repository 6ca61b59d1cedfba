"""`mobilegen convert`: a Keras file, SavedModel or TF1 frozen graph -> a batch-1 .tflite with metadata.

The work is mobilegen.convert.sources.convert_job (also what `mobilegen build` runs). With
--calibration DATA and a Keras MODEL, a report compares Keras, the float32 .tflite and the
converted one on DATA's validation split: a table on stdout and F.eval.json beside F.tflite.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mobilegen.cli.common import progress, user_errors
from mobilegen.convert.quantize import IO, Quantize
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD


@user_errors
def convert_cmd(
    model: Path = typer.Argument(..., help="A Keras file (.keras/.h5), a SavedModel directory or a TF1 frozen graph (.pb)."),
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False, help="The .tflite to write."),
    quantize: Quantize = typer.Option(
        Quantize.float32, "--quantize", "-q",
        help="float32; float16 (fp16 weights); dynamic (int8 weights, float activations); int8 (full integer, "
             "calibrated on --calibration DATA); uint8 (legacy per-tensor: a frozen graph's FakeQuant ranges, "
             "or calibrated like int8)."),
    io: IO = typer.Option(None, "--io", help="Input/output tensor type: float32 (default), or int8/uint8 with --quantize int8; uint8 for --quantize uint8."),
    calibration: str = typer.Option(None, "--calibration", "-c", help="DATA: an image folder (one subfolder per class) or 'builtin'. int8 calibrates on its train split; with a Keras MODEL, the report uses its validation split."),
    calibration_samples: int = typer.Option(200, "--calibration-samples", min=1, help="Train-split images used to calibrate int8 (spread over every class)."),
    labels: Path = typer.Option(None, "--labels", dir_okay=False, help="Class names, one per line (default: labels.txt beside MODEL, else DATA's classes)."),
    mean: float = typer.Option(DEFAULT_MEAN, help="Input normalization (pixel - mean) / std: written to the metadata; calibration/report images use it; a uint8 frozen graph's quantized_input_stats."),
    std: float = typer.Option(DEFAULT_STD, help="See --mean."),
    input_array: str = typer.Option(None, "--input-array", help="Frozen graph: the input Placeholder's name."),
    output_array: str = typer.Option(None, "--output-array", help="Frozen graph: the output node's name."),
    input_shape: str = typer.Option(None, "--input-shape", help="Frozen graph: the input shape, batch 1, e.g. 1,224,224,3 (default: the Placeholder's)."),
    val_split: float = typer.Option(0.2, "--val-split", help="DATA's validation fraction, as `train` split it."),
    seed: int = typer.Option(0, "--seed", help="DATA's split seed, as `train` used it."),
    report: bool = typer.Option(True, "--report/--no-report", help="With DATA and a Keras MODEL: evaluate Keras vs float32 vs the converted model."),
) -> None:
    """Convert a model to a batch-1 .tflite (with labels and normalization metadata)."""
    from mobilegen.convert.sources import convert_job, parse_shape, write_report

    shape = parse_shape(input_shape) if input_shape else None
    result = convert_job(
        model, quantize, io, calibration=calibration, calibration_samples=calibration_samples,
        labels=labels, mean=mean, std=std, input_array=input_array, output_array=output_array,
        input_shape=shape, val_split=val_split, seed=seed, report=report, progress=progress,
    )
    for note in result.notes:
        progress(note)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(result.model)
    progress(f"wrote {out} ({len(result.model)} bytes)")
    if result.table is not None:
        typer.echo(result.table)
    if result.report is not None:
        path = write_report(out, result.report)
        progress(f"wrote {path}")
    if result.table is None and result.report is None:
        typer.echo(json.dumps({"out": str(out), "bytes": len(result.model), "quantize": quantize.value,
                               "labels": len(result.labels) if result.labels else 0}))
