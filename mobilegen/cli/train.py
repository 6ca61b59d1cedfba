"""`mobilegen train`: placeholder until its owner lands it (see /work/issue8_contract.md)."""

from __future__ import annotations

import typer

from mobilegen.cli.common import user_errors


@user_errors
def train_cmd() -> None:
    """Not implemented yet."""
    raise NotImplementedError("train")
