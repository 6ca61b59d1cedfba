"""The C++ engine's files for one model: the static sources under templates/cpp and the generated
model_plan.cpp (tables + GLSL programs). Relative paths are those under an Android module's
src/main/cpp; the weights blob (EngineModel.blob) goes where the target puts its assets."""

from __future__ import annotations

import hashlib

from mobilegen.export import EngineModel
from mobilegen.render.engine_plan import TEMPLATES, render_model_plan
from mobilegen.render.glsl import render_gpu

CPP_TEMPLATES = TEMPLATES / "cpp"


def engine_files(em: EngineModel, model_name: str, model_bytes: bytes) -> dict[str, str]:
    """Relative path -> text of every C++ file of the engine for `em`."""
    files: dict[str, str] = {}
    for path in sorted(CPP_TEMPLATES.rglob("*")):
        if path.is_file() and path.suffix != ".j2":
            files[path.relative_to(CPP_TEMPLATES).as_posix()] = path.read_text()
    library, shaders, dispatch = render_gpu(em)
    sha = hashlib.sha256(model_bytes).hexdigest()
    files["engine/model_plan.cpp"] = render_model_plan(em, model_name, sha, shaders, dispatch, library)
    return files
