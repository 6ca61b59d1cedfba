from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from mobilegen.cli.common import progress, user_errors
from mobilegen.errors import UserInputError


class Target(str, Enum):
    android = "android"


class Precision(str, Enum):
    int8 = "int8"
    fp16 = "fp16"
    fp32 = "fp32"


@user_errors
def generate_cmd(
    model: Path = typer.Argument(..., exists=True, dir_okay=False, help="The .tflite model."),
    target: Target = typer.Option(..., "--target", help="What to generate."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="The project directory."),
    precision: Precision = typer.Option(None, "--precision", help="Kernel arithmetic: int8 (integer, int8 models only), fp16 (float, fp16 storage) or fp32 (default: int8 for int8 models, fp32 for float)."),
    package: str = typer.Option("com.example.mobilegen", "--package", help="Java package / application id."),
    name: str = typer.Option(None, "--name", help="The SDK's name inside an app: native library lib<NAME>.so, assets under assets/<NAME>/, program cache <cacheDir>/<NAME>/ (default: the package, lowercased, dots as underscores)."),
    app_name: str = typer.Option("Mobilegen Classifier", "--app-name", help="The sample app's name."),
    labels: Path = typer.Option(None, "--labels", exists=True, dir_okay=False, help="Class names, one per line."),
    force: bool = typer.Option(False, "--force", help="Overwrite files changed since they were generated."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be written; write nothing."),
) -> None:
    """Render a native project for MODEL."""
    from mobilegen.inputs import read_labels
    from mobilegen.render.escape import validate_package
    from mobilegen.targets.android import AndroidOptions, generate_android
    from mobilegen.targets.android_files import validate_sdk_name

    validate_package(package)
    if name is not None:
        validate_sdk_name(name)
    names = read_labels(labels) if labels is not None else None
    opts = AndroidOptions(package=package, name=name, app_name=app_name, labels=names, precision=precision.value if precision else None)
    progress(f"generating {target.value} project from {model}")
    actions = generate_android(model, out, opts, force=force, dry_run=dry_run)
    for a in actions:
        if a.action != "identical":
            typer.echo(f"{a.action:>9}  {a.path}")
    counts: dict[str, int] = {}
    for a in actions:
        counts[a.action] = counts.get(a.action, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    typer.echo(f"{'would write' if dry_run else 'wrote'} {out}: {summary}")
