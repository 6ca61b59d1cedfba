from __future__ import annotations

import math
from enum import Enum
from pathlib import Path

import typer

from mobilegen.cli.common import progress, user_errors
from mobilegen.errors import UserInputError
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD


class Target(str, Enum):
    android = "android"
    ios = "ios"
    all = "all"


class Precision(str, Enum):
    int8 = "int8"
    fp16 = "fp16"
    fp32 = "fp32"


# Options that only one platform reads: naming one for the other platform is an error, not a no-op.
ANDROID_ONLY = ("--package", "--name")
IOS_ONLY = ("--bundle-id", "--module")


@user_errors
def generate_cmd(
    model: Path = typer.Argument(..., exists=True, dir_okay=False, help="The .tflite model."),
    target: Target = typer.Option(..., "--target", help="What to generate: android, ios, or all (DIR/android and DIR/ios)."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="The project directory."),
    precision: Precision = typer.Option(None, "--precision", help="Kernel arithmetic: int8 (integer, int8 models only), fp16 (float, fp16 storage) or fp32 (default: int8 for int8 models, fp32 for float)."),
    package: str = typer.Option(None, "--package", help="Android: Java package / application id (default com.example.mobilegen)."),
    name: str = typer.Option(None, "--name", help="Android: the SDK's name inside an app: native library lib<NAME>.so, assets under assets/<NAME>/, program cache <cacheDir>/<NAME>/ (default: the package, lowercased, dots as underscores)."),
    bundle_id: str = typer.Option(None, "--bundle-id", help="iOS: the sample app's bundle identifier, reverse-DNS (default com.example.mobilegen; the framework gets <ID>.sdk, the tests <ID>.tests)."),
    module: str = typer.Option(None, "--module", help="iOS: the SDK's module, framework and Swift package product name (default MobilegenClassifier)."),
    app_name: str = typer.Option("Mobilegen Classifier", "--app-name", help="The sample app's name."),
    labels: Path = typer.Option(None, "--labels", exists=True, dir_okay=False, help="Class names, one per line (default: the model's TFLite metadata, else class_<i>)."),
    mean: float = typer.Option(None, "--mean", help=f"The SDK's image normalization: (pixel - mean) / std (default: the model's TFLite metadata, else {DEFAULT_MEAN})."),
    std: float = typer.Option(None, "--std", help=f"The SDK's image normalization: (pixel - mean) / std (default: the model's TFLite metadata, else {DEFAULT_STD})."),
    calibration: str = typer.Option(None, "--calibration", metavar="DATA", help="Precision fp16: plan which float tensors stay fp32 from DATA (an image folder with one subfolder per class, 'builtin', or a folder of .npy input arrays); the plan is written as precision_plan.json."),
    fp16_tolerance: float = typer.Option(None, "--fp16-tolerance", metavar="X", help="With --calibration: the local error (max|a - b| / max|b| of a layer run from exact inputs) above which a tensor stays fp32 (default 5e-3)."),
    force: bool = typer.Option(False, "--force", help="Overwrite files changed since they were generated."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be written; write nothing."),
) -> None:
    """Render a native project for MODEL."""
    from mobilegen.inputs import read_labels
    from mobilegen.targets.jobs import check_conflicts, project_jobs

    given = {"--package": package, "--name": name, "--bundle-id": bundle_id, "--module": module}
    for platform, only in (("android", ANDROID_ONLY), ("ios", IOS_ONLY)):
        stray = [o for o in only if given[o] is not None]
        if stray and target.value not in (platform, "all"):
            raise UserInputError(f"{stray[0]} applies to --target {platform} or all, not {target.value}")

    names = read_labels(labels) if labels is not None else None
    for option, value in (("--mean", mean), ("--std", std)):
        if value is not None and (not math.isfinite(value) or (option == "--std" and value == 0)):
            raise UserInputError(f"{option} {value}: expected a finite number" + (", not 0" if option == "--std" else ""))
    platforms = ["android", "ios"] if target.value == "all" else [target.value]
    plan = fp16_plan(model, precision.value if precision else None, calibration, fp16_tolerance, mean, std)
    jobs = project_jobs(platforms, lambda p: out / p if target.value == "all" else out, package=package, name=name,
                        bundle_id=bundle_id, module=module, app_name=app_name, labels=names,
                        precision=precision.value if precision else None, mean=mean, std=std, precision_plan=plan)
    if not dry_run:
        check_conflicts(model, jobs, force=force)
    for job in jobs:
        progress(f"generating {job.platform} project from {model}")
        actions = job.generate(model, job.directory, job.options, force=force, dry_run=dry_run)
        for a in actions:
            if a.action != "identical":
                typer.echo(f"{a.action:>9}  {a.path}")
        counts: dict[str, int] = {}
        for a in actions:
            counts[a.action] = counts.get(a.action, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        typer.echo(f"{'would write' if dry_run else 'wrote'} {job.directory}: {summary}")


def fp16_plan(model: Path, precision: str | None, calibration: str | None, tolerance: float | None,
              mean: float | None, std: float | None):
    """The precision plan for --precision fp16 --calibration DATA (printed), or None: at fp16
    without --calibration every float tensor is fp16 (said so); --calibration or --fp16-tolerance
    at another precision is a one-line error."""
    from mobilegen.precision_plan import DEFAULT_TOLERANCE, format_plan, plan_model_fp16

    if calibration is None:
        if tolerance is not None:
            raise UserInputError("--fp16-tolerance applies with --calibration DATA (the fp16 precision plan)")
        if precision == "fp16":
            typer.echo("precision fp16: every float tensor is stored as fp16 (no precision plan; "
                       "--calibration DATA keeps tensors that overflow or lose precision in fp32)")
        return None
    if precision != "fp16":
        raise UserInputError(f"--calibration plans fp16 storage: it needs --precision fp16, not {precision or 'the model default'}")
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance > 0):
        raise UserInputError(f"--fp16-tolerance {tolerance}: expected a positive number")
    progress(f"planning fp16 storage from {calibration}")
    plan = plan_model_fp16(model, calibration, tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
                           mean=mean, std=std)
    typer.echo(format_plan(plan))
    return plan
