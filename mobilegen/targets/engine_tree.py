"""The C++ engine's files for one model: the static sources under templates/cpp, the generated
model_plan.cpp (tables + GLSL programs) and the weights blob. Relative paths are those under an
Android module's src/main/cpp; the blob's place is the caller's choice."""

from __future__ import annotations

import hashlib
from pathlib import Path

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


def write_engine_tree(model: Path, out: Path, precision: str | None = None) -> Path:
    """Development helper: the engine sources and `model.mgw` for `model` under `out`."""
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.tflite.reader import read_model

    data = Path(model).read_bytes()
    em = export_plan(*plan_for_precision(read_model(data, source=str(model)), precision))
    out = Path(out)
    for rel, text in engine_files(em, Path(model).name, data).items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (out / "model.mgw").write_bytes(em.blob)
    return out


if __name__ == "__main__":
    import sys

    write_engine_tree(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
