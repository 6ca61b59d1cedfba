"""Rendering: one Jinja configuration for every template family (C++, GLSL, Android)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined


def template_environment(directory: Path, filters: dict) -> Environment:
    """Templates under `directory` with mobilegen's rules: an undefined name is an error, trailing
    newlines are kept, block tags leave no blank lines, nothing is HTML-escaped (each language's
    escaping is an explicit filter)."""
    env = Environment(
        loader=FileSystemLoader(str(directory)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(filters)
    return env
