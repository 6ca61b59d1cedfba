"""Metal compute kernels for an EngineModel: one library of specialized kernel functions
(identical kernels shared), rendered from templates/kernels/metal with the decisions the GLSL
renderer takes too (kernel_rules.choose_kernel: which kernel, its context, its grid).

Kernel ABI (the Metal backend, templates/cpp/engine/metal_backend.cpp, binds what the GLES
backend binds; see render/glsl.py):

    kernel void <name>(device <cell>* out_data [[buffer(0)]],
                       const device <cell>* inp_data [[buffer(1)]],
                       const device ... [[buffer(2)]],    inputs[1] (ADD, CONCATENATION) or the
                                                          per-channel vectors in BlobRef order
                       const device ... [[buffer(3)]],    the weights, raw from the blob
                       uint3 gid [[thread_position_in_grid]]
                       [, uint3 lid [[thread_position_in_threadgroup]],
                          uint3 tgid [[threadgroup_position_in_grid]]])   (SOFTMAX)

Storage is PHWC4 as on GLES: an 8-bit cell is a uint of 4 lanes, a float cell a float4, or at
precision fp16 a half4 (float arithmetic; every stored value the float16 nearest the float32
result, round to nearest even, mobilegen.numerics.fp16). Every kernel guards its grid bounds.
Each kernel is a namespace `<name>_impl` of compile-time constants and helpers, then the kernel
function; the library's head (library.metal.j2) holds every shared helper once.

host_table is metal_kernels_host.cpp, the host proof's table of the same kernels compiled as C++
(templates/cpp/metal_host: metal_shim.h, host_kernels.h): one entry thunk per kernel function.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment

from mobilegen.export import EngineModel
from mobilegen.render import template_environment
from mobilegen.render.engine_plan import TEMPLATES, Dispatch, Shader
from mobilegen.render.glsl import f32_parts, glsl_float
from mobilegen.render.kernel_rules import METAL, KernelChoice, choose_kernel

METAL_TEMPLATES = TEMPLATES / "kernels" / "metal"
_NAME = "MG_KERNEL_NAME"  # rendered in place of the kernel's name until its final name is known
_GRID_ID = ("uint3", "gid", "thread_position_in_grid")
_GROUP_IDS = (("uint3", "lid", "thread_position_in_threadgroup"),
              ("uint3", "tgid", "threadgroup_position_in_grid"))


def metal_float(v: float) -> str:
    """A Metal float literal equal to float32(v) (suffixed: the host proof compiles it as C++)."""
    return glsl_float(v) + "f"


def environment() -> Environment:
    return template_environment(METAL_TEMPLATES, dict(metal_float=metal_float, f32_parts=f32_parts))


@dataclass
class Buffer:
    slot: int
    var: str
    elem: str        # the cell type the kernel indexes
    writable: bool

    def metal(self) -> str:
        return f"{'' if self.writable else 'const '}device {self.elem}* {self.var}"

    def cpp(self) -> str:
        return f"{'' if self.writable else 'const '}{self.elem}*"


@dataclass
class HostEntry:
    name: str
    buffers: list[Buffer]
    ids: list[str]  # the id attributes, in parameter order (= host_kernels.h ThreadIds fields)
    uses_threadgroup_memory: bool


@dataclass
class MetalKernels:
    library: str              # the whole .metal source: header, helpers, every kernel function
    shaders: list[Shader]     # name = kernel function name, source = "" (model_plan emits nullptr)
    dispatch: list[Dispatch]  # one per EngineModel kernel, in order; shader -1 = alias (no work)
    host_table: str           # metal_kernels_host.cpp text


def _buffers(choice: KernelChoice) -> list[Buffer]:
    """The kernel's buffer parameters: GLES's binding slots, with the cell types Metal indexes."""
    ctx = choice.ctx
    out, inp = ctx["out"], ctx["inp"]
    buffers = [Buffer(0, "out_data", out.cell, True), Buffer(1, "inp_data", inp.cell, False)]
    stem = choice.template.removesuffix(METAL.template_suffix)
    if stem in ("add", "concat"):
        buffers.append(Buffer(2, "inp2_data", ctx["inp2"].cell, False))
    elif stem in ("conv2d", "depthwise_conv2d", "fully_connected"):
        if ctx["quantized"]:
            # int32 bias ‖ multipliers ‖ shifts; FULLY_CONNECTED: int32 bias ‖ float64 scales as uint pairs
            buffers.append(Buffer(2, "channel", "uint4" if stem == "fully_connected" else "int4", False))
            buffers.append(Buffer(3, "weights", "uint", False))
        else:
            float_cell = METAL.cell("float32", ctx["fp16"])
            buffers.append(Buffer(2, "bias", float_cell, False))
            buffers.append(Buffer(3, "weights", float_cell, False))
    return buffers


def _uses_threadgroup_memory(choice: KernelChoice) -> bool:
    """SOFTMAX reduces a row in threadgroup memory, with barriers; no other kernel shares data."""
    return choice.template.startswith("softmax")


def _ids(choice: KernelChoice) -> list[tuple[str, str, str]]:
    """(type, name, attribute) of the kernel's id parameters."""
    return [_GRID_ID, *(_GROUP_IDS if _uses_threadgroup_memory(choice) else ())]


def render_library_head() -> str:
    """The library's head: language setup and every shared helper (no kernel)."""
    return environment().get_template("library.metal.j2").render()


def render_metal(em: EngineModel) -> MetalKernels:
    """The Metal library of `em`, its kernel functions, one Dispatch per kernel (in order; a
    RESHAPE alias gets shader -1) and the host proof's kernel table. Kernels with identical
    sources share one function; function names are unique in the library."""
    env = environment()
    shaders: list[Shader] = []
    sources: list[str] = []
    entries: list[HostEntry] = []
    by_source: dict[str, int] = {}
    name_counts: dict[str, int] = {}
    dispatch: list[Dispatch] = []
    for k in em.kernels:
        choice = choose_kernel(em, k, METAL)
        if choice is None:
            dispatch.append(Dispatch(-1, (0, 0, 0)))
            continue
        buffers = _buffers(choice)
        ids = _ids(choice)
        signature_buffers = [(b.slot, b.metal()) for b in buffers]
        signature_ids = [(f"{t} {var}", attribute) for t, var, attribute in ids]
        source = env.get_template(choice.template).render(
            **choice.ctx, name=_NAME, buffers=signature_buffers, ids=signature_ids)
        index = by_source.get(source)
        if index is None:
            n = name_counts.get(choice.name, 0) + 1
            name_counts[choice.name] = n
            name = choice.name if n == 1 else f"{choice.name}_{n}"
            index = by_source[source] = len(shaders)
            shaders.append(Shader(name, ""))
            sources.append(source.replace(_NAME, name))
            entries.append(HostEntry(name, buffers, [a for _, _, a in ids], _uses_threadgroup_memory(choice)))
        dispatch.append(Dispatch(index, tuple(int(g) for g in choice.groups), tuple(int(n) for n in choice.local)))
    library = "\n".join([render_library_head(), *sources])
    host_table = env.get_template("metal_kernels_host.cpp.j2").render(kernels=entries)
    return MetalKernels(library, shaders, dispatch, host_table)
