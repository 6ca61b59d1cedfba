"""`mobilegen pull`: fetch a tensor dump from a device (owned by helper E; placeholder)."""

from __future__ import annotations

from pathlib import Path

import typer

from mobilegen.cli.common import user_errors
from mobilegen.errors import UserInputError


@user_errors
def pull_cmd(out: Path = typer.Argument(..., file_okay=False, help="Where to put the dump.")) -> None:
    """Fetch a tensor dump written by a generated app's debug mode from a device."""
    raise UserInputError("mobilegen pull is not implemented yet")
