"""GLSL ES 3.10 compute shaders for an EngineModel: one specialized program per kernel instance
(identical sources shared), rendered from templates/kernels/glsl; which kernel, its context and its
grid come from mobilegen/render/kernel_rules.py, shared with the Metal renderer.

Binding contract with the GLES backend (templates/cpp/engine/gles_backend.cpp), which keeps every
kernel within GLES 3.1's minimum of 4 storage blocks per compute shader:

    binding 0  the output tensor                        PHWC4 (uint per slice for 8-bit, vec4 float,
                                                        uvec2 of 4 halves for float at fp16)
    binding 1  inputs[0]
    binding 2  inputs[1] (ADD, CONCATENATION), or the kernel's per-channel vectors concatenated
               in BlobRef order: CONV/DEPTHWISE bias ‖ out.multipliers ‖ out.shifts,
               FULLY_CONNECTED bias ‖ scales (float64 as uint pairs, low word first)
    binding 3  the weights (params.weights), raw from the blob

At precision fp16 (mobilegen.numerics.fp16) float tensors and float constants are float16, four
to a uvec2; the kernels unpack them, compute in highp float and pack what they store.

Every kernel's shapes, offsets and constants are compiled into its source; there are no uniforms.
render_gpu checks every program (library + source) against the GLSL ES 3.10 / ES 3.1 rules that
glslang does not enforce (glsl_rules: barrier() only directly in main() outside control flow, so
loops around barriers are unrolled here; the ES 3.1 minimum workgroup, shared-memory and storage
block limits); a violation raises glsl_rules.ShaderRuleError, an internal error.
A kernel's source is only its own part: the engine compiles it after the model's one shader library
(library.glsl.j2: version, precisions and every shared helper), which it stores once.
"""

from __future__ import annotations

import math

import numpy as np
from jinja2 import Environment

from mobilegen.render import template_environment
from mobilegen.export import EngineModel, KernelRecord
from mobilegen.render.engine_plan import TEMPLATES, Dispatch, Shader
from mobilegen.render.glsl_rules import check_rendered
from mobilegen.render.kernel_rules import GLSL, choose_kernel

GLSL_TEMPLATES = TEMPLATES / "kernels" / "glsl"


def glsl_float(v: float) -> str:
    """A GLSL float literal equal to float32(v) (9 significant digits round-trip float32)."""
    f = float(np.float32(v))
    if math.isinf(f) or math.isnan(f):
        raise ValueError(f"no GLSL literal for {v!r}")
    text = f"{f:.9g}"
    if not any(ch in text for ch in ".e"):
        text += ".0"
    return text


def f32_parts(v: float) -> tuple[int, int]:
    """(m, e) with float32(v) == m * 2^e exactly and m a 24-bit integer (v positive and normal)."""
    f = float(np.float32(v))
    if not (f > 0 and math.isfinite(f)) or f < float(np.finfo(np.float32).tiny):
        raise ValueError(f"expected a positive normal float32, got {v!r}")
    frac, exp = math.frexp(f)  # f = frac * 2^exp, frac in [0.5, 1)
    m = int(frac * (1 << 24))
    assert m * 2.0 ** (exp - 24) == f
    return m, exp - 24


def environment() -> Environment:
    return template_environment(GLSL_TEMPLATES, dict(glsl_float=glsl_float, f32_parts=f32_parts))


class _Renderer:
    """Renders a kernel's GLSL from the shared decision (kernel_rules.choose_kernel)."""

    def __init__(self, em: EngineModel):
        self.em = em
        self.env = environment()

    def render(self, k: KernelRecord) -> tuple[str, str, tuple[int, int, int], tuple[int, int, int]] | None:
        """(base name, source, groups, local size) of kernel `k`, or None when it needs no GPU work."""
        choice = choose_kernel(self.em, k, GLSL)
        if choice is None:
            return None
        source = self.env.get_template(choice.template).render(**choice.ctx)
        return choice.name, source, choice.groups, choice.local


def render_library() -> str:
    """The GLSL every kernel source is compiled after (glShaderSource's first string)."""
    return environment().get_template("library.glsl.j2").render()


def render_gpu(em: EngineModel) -> tuple[str, list[Shader], list[Dispatch]]:
    """(shader library, shader programs, one Dispatch per kernel of `em`, in order). A program is
    compiled from library + its source. Kernels with identical sources share one program; RESHAPE
    between equal storage views gets shader -1 (an alias)."""
    r = _Renderer(em)
    shaders: list[Shader] = []
    by_source: dict[str, int] = {}
    name_counts: dict[str, int] = {}
    dispatch: list[Dispatch] = []
    for k in em.kernels:
        rendered = r.render(k)
        if rendered is None:
            dispatch.append(Dispatch(-1, (0, 0, 0)))
            continue
        base, source, groups, local = rendered
        index = by_source.get(source)
        if index is None:
            n = name_counts.get(base, 0) + 1
            name_counts[base] = n
            index = by_source[source] = len(shaders)
            shaders.append(Shader(base if n == 1 else f"{base}_{n}", source))
        dispatch.append(Dispatch(index, tuple(int(g) for g in groups), tuple(int(n) for n in local)))
    library = render_library()
    check_rendered(library, shaders)  # GLSL ES 3.10 rules glslang does not enforce; ShaderRuleError: our bug
    return library, shaders, dispatch
