"""The C++ engine's files for one model: the static sources under templates/cpp and the generated
half (model_plan.cpp: tables + GPU programs; for iOS also the Metal library and its host table).

Relative paths are those under the engine's root: an Android module's src/main/cpp, or an iOS
project's Sources/<module>/cpp. The weights blob (EngineModel.blob) goes where the target puts its
assets or resources.

  android  the portable core + gles_backend.cpp (GLSL programs in model_plan.cpp)
  ios      the portable core + metal_api.h, metal_backend.cpp (model_plan.cpp embeds the whole
           Metal library source; its shaders name kernel functions), and the host proof only:
           metal_host/ (metal_shim.h, host_kernels.h, host_device.cpp, kernels.metal ==
           the embedded library, metal_kernels_host.cpp: the kernels as C++ for the host executor)
"""

from __future__ import annotations

import hashlib

from mobilegen.export import EngineModel
from mobilegen.render.engine_plan import TEMPLATES, Shader, render_model_plan

CPP_TEMPLATES = TEMPLATES / "cpp"
TARGETS = ("android", "ios")

# Static sources one target does not get (paths relative to templates/cpp; a folder ends in "/").
_EXCLUDED = {
    "android": ("engine/metal_api.h", "engine/metal_backend.cpp", "metal_host/"),
    "ios": ("engine/gles_backend.cpp",),
}


def static_files(target: str) -> dict[str, str]:
    """The model-independent sources of `target`'s engine tree (relative path -> text)."""
    files: dict[str, str] = {}
    for path in sorted(CPP_TEMPLATES.rglob("*")):
        if not path.is_file() or path.suffix == ".j2":
            continue
        rel = path.relative_to(CPP_TEMPLATES).as_posix()
        if any(rel == x or (x.endswith("/") and rel.startswith(x)) for x in _EXCLUDED[target]):
            continue
        files[rel] = path.read_text()
    return files


def engine_files(em: EngineModel, model_name: str, model_bytes: bytes, target: str = "android") -> dict[str, str]:
    """Relative path -> text of every C++ file (and, for iOS, the .metal library) of the engine for `em`."""
    if target not in TARGETS:
        raise ValueError(f"target {target!r}: expected one of {TARGETS}")
    files = static_files(target)
    sha = hashlib.sha256(model_bytes).hexdigest()
    if target == "android":
        from mobilegen.render.glsl import render_gpu

        library, shaders, dispatch = render_gpu(em)
        files["engine/model_plan.cpp"] = render_model_plan(em, model_name, sha, shaders, dispatch, library)
    else:
        from mobilegen.render.metal import render_metal  # imported here: Android needs none of it

        metal = render_metal(em)
        # The plan names kernel functions of the one library; their source is the library itself.
        shaders = [Shader(s.name, "") for s in metal.shaders]
        files["engine/model_plan.cpp"] = render_model_plan(em, model_name, sha, shaders, metal.dispatch, metal.library)
        files["metal_host/kernels.metal"] = metal.library
        files["metal_host/metal_kernels_host.cpp"] = metal.host_table
    return files
