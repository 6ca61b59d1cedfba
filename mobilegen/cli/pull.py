"""`mobilegen pull`: fetch a tensor dump written by a generated sample app's "Dump tensors" switch."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from mobilegen.cli.common import user_errors
from mobilegen.pull import pull


class PullTarget(str, Enum):
    android = "android"
    ios = "ios"


@user_errors
def pull_cmd(
    out: Path = typer.Argument(..., file_okay=False, help="Where the dump goes (a new or empty directory)."),
    target: PullTarget = typer.Option(..., "--target", help="The device's platform: android (adb) or ios (devicectl)."),
    package: str = typer.Option(None, "--package", help="The app's id: Android applicationId or iOS bundle id."),
    project: Path = typer.Option(None, "--project", file_okay=False,
                                 help="The generated project; its sample app's id is read from it."),
    serial: str = typer.Option(None, "--serial", help="The device (adb serial, devicectl identifier) when several are attached."),
    dump: str = typer.Option(None, "--dump", help="The dump's folder name on the device (default: the latest)."),
) -> None:
    """Fetch a tensor dump from a device into OUT, check it, and print the compare command."""
    pulled = pull(out, target.value, package=package, project=project, serial=serial, dump=dump)
    typer.echo(pulled.summary())
