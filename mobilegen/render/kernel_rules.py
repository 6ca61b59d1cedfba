"""The decisions both GPU kernel languages share (tinygrad's renderer split): for each kernel of an
EngineModel, which template renders it, its base name, its template context and its grid, decided
once here; a small Dialect per language says how the two spell what they agree on.

    choice = choose_kernel(em, k, GLSL)   # or METAL; None: no GPU work (a RESHAPE alias)
    source = env.get_template(choice.template).render(**choice.ctx)

The GLSL renderer (render/glsl.py) and the Metal renderer (render/metal.py) differ only in their
templates, their dialect and how they assemble a library; binding slots, PHWC4 storage, grids and
threads per group are the same for both (the two C++ backends bind the same buffers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mobilegen.errors import UnsupportedOpError
from mobilegen.export import EngineModel, KernelRecord, TensorRecord
from mobilegen.numerics import params as P

MAX_INVOCATIONS = 64  # per group (GLES 3.1 guarantees 128, iPhones 512 or fewer per pipeline)
SOFTMAX_THREADS = 64  # one group per softmax row, reducing in shared / threadgroup memory


@dataclass(frozen=True)
class Dialect:
    """How one kernel language spells what both agree on."""

    name: str            # "glsl" or "metal"
    template_suffix: str  # a kernel's template is <stem><template_suffix>
    int4: str            # 4 x int32: the lanes of a cell as 8-bit kernels compute on them
    float4: str          # 4 x float32: ... as float kernels compute on them
    cell_8bit: str       # one PHWC4 cell of an 8-bit tensor (4 lanes)
    cell_fp32: str       # ... of a float tensor at fp32
    cell_fp16: str       # ... of a float tensor stored as float16 (4 halves, 8 bytes)
    group_word: str      # what the language calls a group of invocations

    def cell(self, dtype: str, fp16: bool) -> str:
        if dtype in ("int8", "uint8"):
            return self.cell_8bit
        return self.cell_fp16 if fp16 else self.cell_fp32


GLSL = Dialect("glsl", ".comp.j2", "ivec4", "vec4", "uint", "vec4", "uvec2", "workgroup")
METAL = Dialect("metal", ".metal.j2", "int4", "float4", "uint", "float4", "half4", "threadgroup")


@dataclass(frozen=True)
class GpuTensor:
    """A tensor as its kernel sees it: the storage view and the type of one PHWC4 cell."""

    dtype: str
    h: int
    w: int
    c: int
    cell: str  # Dialect.cell: 4 x 8-bit in a uint, 4 floats, or 4 halves (TensorRecord.half)


@dataclass
class KernelChoice:
    name: str                      # base name (renderers make it unique per distinct source)
    template: str                  # template file name
    ctx: dict = field(repr=False)  # the template context
    groups: tuple[int, int, int]
    local: tuple[int, int, int]    # invocations per group


def concat_table(p: dict, n: int) -> list[int] | None:
    """CONCATENATION input n's legacy uint8 rescale (ConcatParams rescale<n>) as a table of the
    256 results packed 4 per uint (entry x in bits 8(x % 4).. of word x / 4), or None (a copy).
    Tabulated with the simulator's float32 arithmetic, so the kernel needs no float rounding
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


def slices(c: int) -> int:
    return (c + 3) // 4


def grid(w: int, h: int, s: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(local size, group counts) covering (w, h, s) invocations with at most 64 per group."""
    lx = _pow2_at_least(w, 8)
    ly = _pow2_at_least(h, 8)
    lz = _pow2_at_least(s, max(MAX_INVOCATIONS // (lx * ly), 1))
    local = (lx, ly, lz)
    groups = (-(-w // lx), -(-h // ly), -(-s // lz))
    return local, groups


def softmax_strides(threads: int) -> list[int]:
    """The strides of softmax's shared-memory reduction tree over `threads` (a power of two):
    threads/2, threads/4, ..., 1 (GLSL unrolls them: one barrier() per level, each directly in
    main(), as GLSL ES 3.10 allows no barrier() inside a loop)."""
    if threads < 1 or threads & (threads - 1):
        raise ValueError(f"softmax reduction over {threads} invocations: expected a power of two")
    strides = []
    stride = threads // 2
    while stride > 0:
        strides.append(stride)
        stride //= 2
    return strides


def is_8bit(t) -> bool:
    return t.dtype in ("int8", "uint8")


def gpu_tensor(em: EngineModel, tid: int, dialect: Dialect) -> GpuTensor:
    """Tensor `tid` as kernels see it; its cell follows its own storage (at precision fp16 a
    float tensor the plan keeps in float32 has float32 cells, the others halves)."""
    t: TensorRecord = em.tensors[tid]
    return GpuTensor(t.dtype, t.h, t.w, t.c, dialect.cell(t.dtype, t.half))


def _window_name(prefix: str, win: dict) -> str:
    return f"{prefix}_{win['k_h']}x{win['k_w']}_s{win['stride_h']}"


def choose_kernel(em: EngineModel, k: KernelRecord, dialect: Dialect) -> KernelChoice | None:
    """The kernel for `k` in `dialect`, or None when it needs no GPU work (a RESHAPE alias).

    Each tensor the kernel reads or writes has the cell of its own storage; `fp16` in the context
    says the kernel's float constants (weights, bias) are float16: they are stored at the
    precision of the kernel's output tensor (plan.half_storage_plan)."""
    fp16 = em.tensors[k.output].half
    out = gpu_tensor(em, k.output, dialect)
    inp = gpu_tensor(em, k.inputs[0], dialect)
    p = k.params
    quantized = is_8bit(out) and is_8bit(inp)
    ctx = dict(p=p, out=out, inp=inp, quantized=quantized, fp16=fp16,
               vec=dialect.int4 if quantized else dialect.float4)
    w_dtype = inp.dtype  # 8-bit weights share the input's type (int8 or legacy uint8)
    ctx.update(w_dtype=w_dtype, w_unpack="unpack_s8" if w_dtype == "int8" else "unpack_u8")
    local, groups = grid(out.w, out.h, slices(out.c))
    t = k.type
    if t == "Conv2D":
        name, stem = _window_name("conv2d", p["win"]), "conv2d"
    elif t == "DepthwiseConv2D":
        name, stem = _window_name("depthwise", p["win"]), "depthwise_conv2d"
        if p["depth_multiplier"] > 1:
            name += f"_dm{p['depth_multiplier']}"
    elif t == "FullyConnected":
        name, stem = "fully_connected", "fully_connected"
    elif t in ("AveragePool2D", "MaxPool2D"):
        kind = "avg" if t == "AveragePool2D" else "max"
        name, stem = _window_name(f"{kind}_pool", p["win"]), "pool2d"
        ctx["kind"] = kind
    elif t in ("Mean", "Add", "Pad", "Activation"):
        name = stem = t.lower()
        if t == "Add":
            ctx["inp2"] = gpu_tensor(em, k.inputs[1], dialect)
    elif t == "Concat":
        name = stem = "concat"
        ctx["inp2"] = gpu_tensor(em, k.inputs[1], dialect)
        ctx["tables"] = [concat_table(p, n) for n in (0, 1)]
    elif t == "Softmax":
        name = stem = "softmax"
        local, groups = (SOFTMAX_THREADS, 1, 1), (out.h * out.w, 1, 1)
        ctx["strides"] = softmax_strides(SOFTMAX_THREADS)
    elif t in ("Quantize", "Requantize", "Dequantize"):
        name, stem = t.lower(), "quantize"
        ctx["mode"] = t
    elif t == "Reshape":
        if k.alias:
            return None
        name = stem = "reshape"
    else:
        raise UnsupportedOpError(f"op {k.op_index}: no {dialect.name.upper()} kernel for {t}")
    ctx["local"] = local
    kept = em.precision == "fp16" and out.dtype == "float32" and not fp16
    ctx["comment"] = (
        f"{t} ({em.precision}{', output kept in float32' if kept else ''}), "
        f"output [{out.h}][{out.w}][{out.c}] {out.dtype}, "
        f"{dialect.group_word} {local[0]}x{local[1]}x{local[2]}"
    )
    return KernelChoice(name, stem + dialect.template_suffix, ctx, groups, local)
