"""What every command shares: the --debug switch and turning MobilegenErrors into one line."""

from __future__ import annotations

import functools
import sys

import typer

from mobilegen.errors import MobilegenError

_state = {"debug": False}


def set_debug(on: bool) -> None:
    _state["debug"] = on


def user_errors(fn):
    """Report a MobilegenError as one line on stderr and a non-zero exit, unless --debug."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MobilegenError as e:
            if _state["debug"]:
                raise
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None

    return wrapper


def progress(msg: str) -> None:
    """A step of a long command, on stderr so stdout stays machine-readable."""
    print(msg, file=sys.stderr, flush=True)
