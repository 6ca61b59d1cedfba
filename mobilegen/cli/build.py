from __future__ import annotations

from pathlib import Path

import typer

from mobilegen.cli.common import progress, user_errors
from mobilegen.cli.generate import Target
from mobilegen.convert.quantize import Quantize


@user_errors
def build_cmd(
    config: Path = typer.Argument(None, exists=True, dir_okay=False, help="mobilegen.toml (default: ./mobilegen.toml when there is one)."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="The output directory."),
    model: Path = typer.Option(None, "--model", exists=True, help="Take this model (.keras, .h5, .tflite, frozen .pb, SavedModel dir) instead of training; overrides model.file."),
    data: str = typer.Option(None, "--data", help="An image folder or 'builtin': what to train on, or (with a model) to calibrate and evaluate on; overrides model.data."),
    target: Target = typer.Option(None, "--target", help="Which projects to generate (default: targets.platforms, else all)."),
    quantize: Quantize = typer.Option(None, "--quantize", help="The deployed model's quantization (default: convert.quantize, else int8)."),
    as_json: bool = typer.Option(False, "--json", help="Print DIR/dist/manifest.json on stdout instead of the summary table (build.json is still written)."),
) -> None:
    """Train (or take) a model, convert, evaluate, generate the projects, verify them on the host and
    write DIR/dist (reproducible zips, report, manifest): the main job. Exit 1 when a verification fails."""
    from mobilegen.build import check, run_build, summary
    from mobilegen.dist import MANIFEST
    from mobilegen.config import CONFIG_NAME, BuildConfig, load_config

    if config is None and model is None and Path(CONFIG_NAME).is_file():
        config = Path(CONFIG_NAME)
    cfg = load_config(config) if config is not None else BuildConfig()
    if model is not None:
        cfg.set("model", "file", str(model))
    if data is not None:
        cfg.set("model", "data", data)
    if target is not None:
        cfg.set("targets", "platforms", ["android", "ios"] if target is Target.all else [target.value])
    if quantize is not None:
        cfg.set("convert", "quantize", quantize.value)
    report = run_build(cfg, out, progress)
    if as_json:  # the manifest's own bytes, so `build --json > manifest.json` is the published file
        typer.echo((report.dist / MANIFEST).read_text(encoding="utf-8"), nl=False)
    else:
        typer.echo(summary(report))
    check(report)
