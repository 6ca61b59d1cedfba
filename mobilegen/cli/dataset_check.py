"""`mobilegen dataset check` and `dataset split` (placeholders until their owner lands them)."""

from __future__ import annotations

from mobilegen.cli.common import user_errors
from mobilegen.errors import UserInputError


@user_errors
def check_cmd() -> None:
    """Not implemented yet."""
    raise UserInputError("dataset check: not implemented yet")


@user_errors
def split_cmd() -> None:
    """Not implemented yet."""
    raise UserInputError("dataset split: not implemented yet")
