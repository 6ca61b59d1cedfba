"""`mobilegen dataset fetch` (placeholder until its owner lands it)."""

from __future__ import annotations

from mobilegen.cli.common import user_errors
from mobilegen.errors import UserInputError


@user_errors
def fetch_cmd() -> None:
    """Not implemented yet."""
    raise UserInputError("dataset fetch: not implemented yet")
