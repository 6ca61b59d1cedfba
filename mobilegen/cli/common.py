"""What every command shares: the --debug switch and turning MobilegenErrors into one line."""

from __future__ import annotations

import functools
import sys
import traceback

import typer

from mobilegen.errors import MobilegenError, UserInputError

_state = {"debug": False}


def set_debug(on: bool) -> None:
    _state["debug"] = on


def user_errors(fn):
    """Report a MobilegenError (or an OSError on a user's path) as one line on stderr and a
    non-zero exit; with --debug, as a traceback, with the same exit code (scripts branch on it)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MobilegenError as e:
            if _state["debug"]:
                traceback.print_exc()
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None
        except OSError as e:  # a path the command could not read or write (permissions, a file as a directory, disk full)
            # Only errors about a file are the user's; anything else (a missing template, say) is a bug.
            if e.filename is None:
                raise
            if _state["debug"]:
                traceback.print_exc()
            where = f"{e.filename}: " if e.filename else ""
            typer.echo(f"error: {where}{e.strerror or e}", err=True)
            raise typer.Exit(UserInputError.exit_code) from None

    return wrapper


def progress(msg: str) -> None:
    """A step of a long command, on stderr so stdout stays machine-readable."""
    print(msg, file=sys.stderr, flush=True)
