"""`mobilegen dataset import`: Labelme / labelImg (Pascal VOC) annotations -> class folders of crops."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path

import typer

from mobilegen.cli.common import user_errors


class AnnotationFormat(str, Enum):
    labelme = "labelme"
    voc = "voc"


@user_errors
def import_cmd(
    annotations: Path = typer.Argument(..., exists=True,
                                       help="An annotation file, or a folder searched recursively (*.json for labelme, *.xml for voc)."),
    fmt: AnnotationFormat = typer.Option(..., "--format", help="labelme (Labelme JSON) or voc (labelImg / Pascal VOC XML)."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="The class folders go here: OUT/<label>/<crop>.png."),
    images: Path = typer.Option(None, "--images", exists=True, file_okay=False,
                                help="Look for the annotated images here first (by file name)."),
    margin: float = typer.Option(0.0, "--margin", min=0.0, max=1.0,
                                 help="Added on each side, as a fraction of the box's side; clamped to the image."),
    min_side: int = typer.Option(1, "--min-side", min=1, help="Skip crops smaller than this many pixels on a side."),
    keep_difficult: bool = typer.Option(False, "--keep-difficult", help="VOC: also crop objects marked difficult."),
    jobs: int = typer.Option(None, "--jobs", min=1, help="Annotation files decoded in parallel (default: up to 4)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of the summary."),
) -> None:
    """Crop each labelled box (or, for Labelme image-level flags, the whole image) into its class
    folder under OUT, and write OUT/import-report.json. Malformed files and bad boxes are reported
    and skipped. Exit 0 when nothing was skipped for a problem (points, lines and difficult objects
    are skipped by design), 1 otherwise, 2 for a usage error."""
    from mobilegen.dataset.annotations import import_annotations

    tty = sys.stderr.isatty()

    def progress(files: int, crops: int) -> None:
        if tty:
            print(f"\r{files} files, {crops} crops", end="", file=sys.stderr, flush=True)

    report = import_annotations(annotations, fmt.value, out, images=images, margin=margin, min_side=min_side,
                                keep_difficult=keep_difficult, jobs=jobs, on_progress=progress)
    if tty:
        print(file=sys.stderr)
    typer.echo(json.dumps(report.to_json(), indent=1, ensure_ascii=False) if as_json else report.summary())
    if not report.ok:
        raise typer.Exit(1)
