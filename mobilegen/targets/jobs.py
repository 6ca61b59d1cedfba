"""Which projects to write and with what options, checked before anything is written: shared by
`mobilegen generate` and `mobilegen build`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mobilegen.errors import UserInputError
from mobilegen.render.escape import validate_package
from mobilegen.targets.android import AndroidOptions, generate_android
from mobilegen.targets.android_files import validate_sdk_name
from mobilegen.targets.ios import DEFAULT_BUNDLE_ID, IOSOptions, generate_ios
from mobilegen.targets.ios_files import DEFAULT_MODULE, validate_bundle_id, validate_module

DEFAULT_PACKAGE = "com.example.mobilegen"
DEFAULT_APP_NAME = "Mobilegen Classifier"


@dataclass
class ProjectJob:
    platform: str  # "android" | "ios"
    directory: Path
    generate: Callable  # generate_android / generate_ios
    options: AndroidOptions | IOSOptions


def project_jobs(platforms, directory: Callable[[str], Path], *, package: str | None = None, name: str | None = None,
                 bundle_id: str | None = None, module: str | None = None, app_name: str = DEFAULT_APP_NAME,
                 labels: list[str] | None = None, precision: str | None = None, mean: float | None = None,
                 std: float | None = None, precision_plan=None) -> list[ProjectJob]:
    """One job per platform, in the order given, every option validated (one-line errors).
    `directory(platform)`: where that platform's project goes. `precision_plan`: a
    mobilegen.precision_plan.PrecisionPlan (precision fp16 only): its keep set is stored in float32
    and the plan is written into each project as precision_plan.json."""
    keep_fp32, plan_json = frozenset(), None
    if precision_plan is not None:
        from mobilegen.precision_plan import PLAN_FILE

        if precision != "fp16":
            raise UserInputError(f"a precision plan ({PLAN_FILE}) applies to precision fp16, not {precision or 'the model default'}")
        keep_fp32, plan_json = precision_plan.keep_fp32, precision_plan.to_json()
    jobs = []
    for platform in platforms:
        if platform == "android":
            package = DEFAULT_PACKAGE if package is None else package
            validate_package(package)
            if name is not None:
                validate_sdk_name(name)
            opts = AndroidOptions(package=package, name=name, app_name=app_name, labels=labels, precision=precision,
                                  mean=mean, std=std, keep_fp32=keep_fp32, precision_plan=plan_json)
            jobs.append(ProjectJob(platform, directory(platform), generate_android, opts))
        elif platform == "ios":
            opts = IOSOptions(bundle_id=validate_bundle_id(DEFAULT_BUNDLE_ID if bundle_id is None else bundle_id),
                              module=validate_module(DEFAULT_MODULE if module is None else module), app_name=app_name,
                              labels=labels, precision=precision, mean=mean, std=std, keep_fp32=keep_fp32,
                              precision_plan=plan_json)
            jobs.append(ProjectJob(platform, directory(platform), generate_ios, opts))
        else:
            raise ValueError(f"unknown platform {platform!r}")
    return jobs


def check_conflicts(model: Path, jobs: list[ProjectJob], *, force: bool = False) -> None:
    """Dry-run every job first when there are several: a conflict in any project stops all of them
    before anything is written."""
    if len(jobs) > 1:
        for job in jobs:
            job.generate(model, job.directory, job.options, force=force, dry_run=True)
