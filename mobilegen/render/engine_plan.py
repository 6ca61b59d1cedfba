"""EngineModel -> model_plan.cpp (the generated half of the C++ engine)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment

from mobilegen import __version__
from mobilegen.export import DTYPES, EngineModel
from mobilegen.render import template_environment
from mobilegen.render.escape import comment_text, cpp_string, float32_literal
from mobilegen.weights import BLOB_VERSION

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@dataclass
class Dispatch:
    shader: int = -1  # index into the shader list, -1: no GPU program
    groups: tuple[int, int, int] = (0, 0, 0)
    threads: tuple[int, int, int] = (0, 0, 0)  # per group (GLES local size, Metal threadsPerThreadgroup)


@dataclass
class Shader:
    name: str
    source: str


def cpp_init(value) -> str:
    """A brace initializer for a plan.h struct from nested dicts/tuples, in field order."""
    if isinstance(value, dict):
        return "{" + ", ".join(cpp_init(v) for v in value.values()) + "}"
    if isinstance(value, (tuple, list)):
        return "{" + ", ".join(cpp_init(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return float32_literal(value)
    return str(int(value))


def cpp_raw_string(text: str) -> str:
    delim = "glsl"
    if f"){delim}\"" in text:
        raise ValueError("shader source contains the raw-string delimiter")
    return f'R"{delim}(\n{text}){delim}"'


def environment() -> Environment:
    return template_environment(
        TEMPLATES,
        dict(cpp_string=cpp_string, comment_text=comment_text, cpp_float=float32_literal, cpp_init=cpp_init,
             cpp_raw_string=cpp_raw_string),
    )


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
        inputs=em.inputs,
        outputs=em.outputs,
    )
