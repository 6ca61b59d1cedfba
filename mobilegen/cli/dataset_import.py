"""`mobilegen dataset import` (placeholder until its owner lands it)."""

from __future__ import annotations

from mobilegen.cli.common import user_errors
from mobilegen.errors import UserInputError


@user_errors
def import_cmd() -> None:
    """Not implemented yet."""
    raise UserInputError("dataset import: not implemented yet")
