"""GLSL ES 3.10 compute shaders for an EngineModel: one specialized program per kernel instance
(identical sources shared), rendered from templates/kernels/glsl.

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
from dataclasses import dataclass

import numpy as np
from jinja2 import Environment

from mobilegen.errors import UnsupportedOpError
from mobilegen.render import template_environment
from mobilegen.export import EngineModel, KernelRecord, TensorRecord
from mobilegen.numerics import params as P
from mobilegen.render.engine_plan import TEMPLATES, Dispatch, Shader
from mobilegen.render.glsl_rules import check_rendered

GLSL_TEMPLATES = TEMPLATES / "kernels" / "glsl"
MAX_INVOCATIONS = 64  # per workgroup (GLES 3.1 guarantees 128)
SOFTMAX_THREADS = 64  # one workgroup per softmax row, reducing in shared memory


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


def _concat_table(p: dict, n: int) -> list[int] | None:
    """CONCATENATION input n's legacy uint8 rescale (ConcatParams rescale<n>) as a table of the
    256 results packed 4 per uint (entry x in bits 8(x % 4).. of word x / 4), or None (a copy).
    Tabulated with the simulator's float32 arithmetic, so the shader needs no float rounding
    (GLSL ES 3.10 has no `precise` to forbid fusing x * scale + bias into one rounding)."""
    if not p.get(f"rescale{n}"):
        return None
    q = P.concat_rescale_apply(np.arange(256), p[f"scale{n}"], p[f"bias{n}"], p["output_zero_point"])
    q = q.astype(np.uint32).reshape(64, 4)
    return [int(w) for w in q[:, 0] | q[:, 1] << 8 | q[:, 2] << 16 | q[:, 3] << 24]


def _pow2_at_least(n: int, cap: int) -> int:
    p = 1
    while p < n and p < cap:
        p *= 2
    return p


def _slices(c: int) -> int:
    return (c + 3) // 4


def _grid(w: int, h: int, s: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(local size, group counts) covering (w, h, s) invocations with at most 64 per group."""
    lx = _pow2_at_least(w, 8)
    ly = _pow2_at_least(h, 8)
    lz = _pow2_at_least(s, max(MAX_INVOCATIONS // (lx * ly), 1))
    local = (lx, ly, lz)
    groups = (-(-w // lx), -(-h // ly), -(-s // lz))
    return local, groups


def softmax_strides(threads: int) -> list[int]:
    """The strides of softmax's shared-memory reduction tree over `threads` (a power of two):
    threads/2, threads/4, ..., 1, unrolled by the template (one barrier() per level, each directly
    in main(): GLSL ES 3.10 allows no barrier() inside a loop)."""
    if threads < 1 or threads & (threads - 1):
        raise ValueError(f"softmax reduction over {threads} invocations: expected a power of two")
    strides = []
    stride = threads // 2
    while stride > 0:
        strides.append(stride)
        stride //= 2
    return strides


def _is_8bit(t) -> bool:
    return t.dtype in ("int8", "uint8")


@dataclass(frozen=True)
class GpuTensor:
    """A tensor as its shader sees it: the storage view and the GLSL type of one PHWC4 cell."""

    dtype: str
    h: int
    w: int
    c: int
    cell: str  # "uint" (4 x 8-bit), "vec4" (4 x float32) or "uvec2" (4 x float16, precision fp16)


class _Renderer:
    def __init__(self, em: EngineModel):
        self.em = em
        self.env = environment()
        self.fp16 = em.precision == "fp16"

    def tensor(self, tid: int) -> GpuTensor:
        t: TensorRecord = self.em.tensors[tid]
        cell = "uint" if _is_8bit(t) else "uvec2" if self.fp16 else "vec4"
        return GpuTensor(t.dtype, t.h, t.w, t.c, cell)

    def render(self, k: KernelRecord) -> tuple[str, str, tuple[int, int, int], tuple[int, int, int]] | None:
        """(base name, source, groups, local size) of kernel `k`, or None when it needs no GPU work."""
        out = self.tensor(k.output)
        inp = self.tensor(k.inputs[0])
        p = k.params
        ctx = dict(p=p, out=out, inp=inp, quantized=_is_8bit(out) and _is_8bit(inp), fp16=self.fp16)
        w_dtype = inp.dtype  # 8-bit weights share the input's type (int8 or legacy uint8)
        ctx.update(w_dtype=w_dtype, w_unpack="unpack_s8" if w_dtype == "int8" else "unpack_u8")
        out_s = _slices(out.c)
        local, groups = _grid(out.w, out.h, out_s)
        t = k.type
        if t == "Conv2D":
            win = p["win"]
            name = f"conv2d_{win['k_h']}x{win['k_w']}_s{win['stride_h']}"
            template = "conv2d.comp.j2"
        elif t == "DepthwiseConv2D":
            win = p["win"]
            name = f"depthwise_{win['k_h']}x{win['k_w']}_s{win['stride_h']}"
            if p["depth_multiplier"] > 1:
                name += f"_dm{p['depth_multiplier']}"
            template = "depthwise_conv2d.comp.j2"
        elif t == "FullyConnected":
            name, template = "fully_connected", "fully_connected.comp.j2"
        elif t in ("AveragePool2D", "MaxPool2D"):
            win = p["win"]
            kind = "avg" if t == "AveragePool2D" else "max"
            name = f"{kind}_pool_{win['k_h']}x{win['k_w']}_s{win['stride_h']}"
            template = "pool2d.comp.j2"
            ctx["kind"] = kind
        elif t == "Mean":
            name, template = "mean", "mean.comp.j2"
        elif t == "Add":
            name, template = "add", "add.comp.j2"
            ctx["inp2"] = self.tensor(k.inputs[1])
        elif t == "Pad":
            name, template = "pad", "pad.comp.j2"
        elif t == "Concat":
            name, template = "concat", "concat.comp.j2"
            ctx["inp2"] = self.tensor(k.inputs[1])
            ctx["tables"] = [_concat_table(p, n) for n in (0, 1)]
        elif t == "Softmax":
            name, template = "softmax", "softmax.comp.j2"
            rows = out.h * out.w
            local, groups = (SOFTMAX_THREADS, 1, 1), (rows, 1, 1)
            ctx["strides"] = softmax_strides(SOFTMAX_THREADS)
        elif t in ("Quantize", "Requantize", "Dequantize"):
            name, template = t.lower(), "quantize.comp.j2"
            ctx["mode"] = t
        elif t == "Reshape":
            if k.alias:
                return None
            name, template = "reshape", "reshape.comp.j2"
        elif t == "Activation":
            name, template = "activation", "activation.comp.j2"
        else:
            raise UnsupportedOpError(f"op {k.op_index}: no GLSL kernel for {t}")
        ctx["local"] = local
        ctx["comment"] = (
            f"{t} ({self.em.precision}), output [{out.h}][{out.w}][{out.c}] {out.dtype}, "
            f"workgroup {local[0]}x{local[1]}x{local[2]}"
        )
        source = self.env.get_template(template).render(**ctx)
        return name, source, groups, local


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
