"""EngineModel -> model_plan.cpp (the generated half of the C++ engine)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from mobilegen import __version__
from mobilegen.export import DTYPES, EngineModel
from mobilegen.weights import BLOB_VERSION

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@dataclass
class Dispatch:
    shader: int = -1  # index into the shader list, -1: no GPU program
    groups: tuple[int, int, int] = (0, 0, 0)


@dataclass
class Shader:
    name: str
    source: str


def cpp_float(v: float) -> str:
    """A float32 literal that reads back exactly (9 significant digits round-trip float32)."""
    text = f"{float(np.float32(v)):.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"  # "1f" is not a C++ literal
    return text + "f"


def cpp_init(value) -> str:
    """A brace initializer for a plan.h struct from nested dicts/tuples, in field order."""
    if isinstance(value, dict):
        return "{" + ", ".join(cpp_init(v) for v in value.values()) + "}"
    if isinstance(value, (tuple, list)):
        return "{" + ", ".join(cpp_init(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return cpp_float(value)
    return str(int(value))


def cpp_raw_string(text: str) -> str:
    delim = "glsl"
    if f"){delim}\"" in text:
        raise ValueError("shader source contains the raw-string delimiter")
    return f'R"{delim}(\n{text}){delim}"'


def environment() -> Environment:
    from mobilegen.render.escape import comment_text, cpp_string  # the shared escaping filters

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(cpp_string=cpp_string, comment_text=comment_text, cpp_float=cpp_float, cpp_init=cpp_init,
                       cpp_raw_string=cpp_raw_string)
    return env


def render_model_plan(
    em: EngineModel, model_name: str, model_sha256: str, shaders: list[Shader] | None = None,
    dispatch: list[Dispatch] | None = None, shader_library: str = "",
) -> str:
    """model_plan.cpp; `shader_library`, `shaders` and `dispatch` come from render_gpu (without
    them the plan has no GPU programs)."""
    shaders = shaders or []
    dispatch = dispatch or [Dispatch() for _ in em.kernels]
    return environment().get_template("cpp/engine/model_plan.cpp.j2").render(
        tool_version=__version__,
        model_name=model_name,
        model_sha256=model_sha256,
        precision=em.precision,
        tensors=em.tensors,
        kernels=em.kernels,
        dispatch=dispatch,
        shaders=shaders,
        shader_library=shader_library,
        dtypes=DTYPES,
        blob_version=BLOB_VERSION,
        plan_hash=list(em.plan_hash),
        input=em.input,
        output=em.output,
    )
