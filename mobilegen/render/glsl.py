"""GLSL ES 3.10 compute shaders for an EngineModel (being written: returns no programs yet)."""

from __future__ import annotations

from mobilegen.export import EngineModel
from mobilegen.render.engine_plan import Dispatch, Shader


def render_gpu(em: EngineModel) -> tuple[list[Shader], list[Dispatch]]:
    """(shader programs, one Dispatch per kernel of `em`)."""
    return [], [Dispatch() for _ in em.kernels]
