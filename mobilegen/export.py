"""Plan -> what the generated engines consume: a tensor table, kernel records whose params mirror
templates/engine/plan.h field for field, and the weights blob (mobilegen.weights) they point into.

All packing for the GPU layouts goes through mobilegen.layout. Both engine backends read the
packed layouts, so the blob holds each constant once. At precision fp16 storage is per tensor
(Plan.stores_half): a float tensor is float16 unless the plan keeps it in float32
(TensorRecord.half), and a kernel's float weights and biases are stored at its output tensor's
precision (the plan has already rounded them: mobilegen.numerics.fp16, plan.half_storage_plan).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mobilegen import layout
from mobilegen.errors import UnsupportedOpError, UserInputError
from mobilegen.ir.graph import Graph, Tensor
from mobilegen.ir.passes import computes_in_integers, dequantize_graph, is_quantized
from mobilegen.plan import (
    Activation,
    Add,
    Concat,
    ConstantKernel,
    Conv2D,
    DepthwiseConv2D,
    Dequantize,
    FullyConnected,
    Kernel,
    Mean,
    OutputStage,
    Pad,
    Plan,
    Pool2D,
    Quantize,
    Reshape,
    Softmax,
    Window,
    build_plan,
    half_storage_plan,
)
from mobilegen.numerics import params as P
from mobilegen.numerics.fp16 import to_half
from mobilegen.weights import BlobWriter

PRECISIONS = ("int8", "fp16", "fp32")
DTYPES = {"float32": "Float32", "int8": "Int8", "uint8": "UInt8"}
F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class TensorRecord:
    id: int
    index: int  # TFLite tensor index
    name: str
    dtype: str  # "float32" | "int8" | "uint8"
    shape: tuple[int, ...]
    h: int
    w: int
    c: int
    scale: float
    zero_point: int
    # Stored as float16: a float tensor at precision fp16 that the plan does not keep in float32
    # (Plan.stores_half). plan.h's TensorInfo::half; 8-bit tensors and other precisions: False.
    half: bool = False


@dataclass
class KernelRecord:
    type: str  # KernelType enumerator name in plan.h
    op_index: int
    inputs: tuple[int, int]  # tensor ids, -1 absent
    output: int
    params: dict[str, Any]  # plan.h *Params fields; BlobRefs as (offset, size)
    params_type: str  # plan.h struct name
    alias: bool = False  # Reshape between equal storage views: no GPU work


@dataclass
class EngineModel:
    precision: str
    tensors: list[TensorRecord]
    kernels: list[KernelRecord]
    blob: bytes
    plan_hash: bytes  # 16 bytes, also in the blob header
    inputs: list[int]  # tensor ids of the graph inputs, in the model's order
    outputs: list[int]  # tensor ids of the graph outputs, in the model's order
    folded: list[int] = field(default_factory=list)  # TFLite tensors computed at generation (fp16 weights)


def storage_view(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(h, w, c) of plan.h's storage view: rank-4 [1][h][w][c] as is, anything else as [1][1][1][n]."""
    if len(shape) == 4:
        return shape[1], shape[2], shape[3]
    return 1, 1, int(np.prod(shape, dtype=np.int64))


def _window(w: Window) -> dict:
    return {k: int(v) for k, v in vars(w).items()}


def _bound(v: float) -> float:
    """Float clamp bounds as finite float32 values (the C++ tables print them as literals)."""
    return float(np.clip(v, -F32_MAX, F32_MAX))


class _Exporter:
    def __init__(self, plan: Plan, precision: str):
        self.plan = plan
        self.g = plan.graph
        self.precision = precision
        # A kernel's float weights and biases in the blob: float16 when its output tensor is
        # stored as float16 (Plan.stores_half), else float32. Set per kernel by kernel().
        self.to_float = self._float32
        self.blob = BlobWriter()
        self.ids: dict[int, int] = {}
        self.tensors: list[TensorRecord] = []
        self.folded: list[int] = []

    def tensor_id(self, index: int) -> int:
        if index not in self.ids:
            t: Tensor = self.g.tensors[index]
            if t.dtype not in DTYPES:
                raise UnsupportedOpError(f"{t.describe()}: the engine stores only {', '.join(DTYPES)} tensors")
            if len(t.shape) == 4 and t.shape[0] != 1 or len(t.shape) > 4:
                raise UnsupportedOpError(f"{t.describe()}: the engine supports batch 1 and rank <= 4")
            h, w, c = storage_view(t.shape)
            q = t.quant
            self.ids[index] = len(self.tensors)
            self.tensors.append(
                TensorRecord(
                    len(self.tensors), index, t.name, t.dtype, tuple(t.shape), h, w, c,
                    q.s if q is not None else 0.0, q.zp if q is not None else 0, self.plan.stores_half(index),
                )
            )
        return self.ids[index]

    # -- blob helpers -----------------------------------------------------------------------------
    @staticmethod
    def _float32(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, np.float32)
    def vec(self, v: np.ndarray, dtype) -> tuple[int, int]:
        return self.blob.add(layout.pad_vector(np.asarray(v).astype(dtype)))

    def weights_raw(self, w_adjusted: np.ndarray, offset: int, quantized: bool, src: Tensor) -> np.ndarray:
        """The model's own weight values (int8/uint8 raw, or float at the storage precision) from
        the plan's offset-adjusted ones."""
        if not quantized:
            return self.to_float(w_adjusted)
        return (w_adjusted - offset).astype(src.dtype)

    def bias(self, k, quantized: bool) -> tuple[int, int]:
        """int32, or float at the storage precision."""
        return self.vec(k.bias, np.int32) if quantized else self.blob.add(layout.pad_vector(self.to_float(k.bias)))

    def stage(self, st: OutputStage, out_c: int) -> dict:
        if st.quantized:
            m = np.broadcast_to(st.multiplier, (out_c,))
            s = np.broadcast_to(st.shift, (out_c,))
            return {
                "act_min": int(st.lo), "act_max": int(st.hi), "zero_point": int(st.zero_point),
                "lo": 0.0, "hi": 0.0,
                "multipliers": self.vec(m, np.int32), "shifts": self.vec(s, np.int32),
            }
        return {
            "act_min": 0, "act_max": 0, "zero_point": 0, "lo": _bound(st.lo), "hi": _bound(st.hi),
            "multipliers": (0, 0), "shifts": (0, 0),
        }

    # -- kernels ----------------------------------------------------------------------------------
    def export(self) -> EngineModel:
        if not self.g.inputs or not self.g.outputs:
            raise UnsupportedOpError("the engine needs a model with at least one input and one output")
        inputs = [self.tensor_id(i) for i in self.g.inputs]
        records = []
        for k in self.plan.kernels:
            if isinstance(k, ConstantKernel):
                self.folded.append(k.output)
                continue
            records.append(self.kernel(k))
        written = {r.output for r in records}
        for i in self.g.outputs:
            if i not in self.ids or self.ids[i] not in written:
                raise UnsupportedOpError(
                    f"graph output {self.g.tensors[i].describe()}: the engine returns tensors that an operator writes at run time"
                )
        outputs = [self.tensor_id(i) for i in self.g.outputs]
        blob, plan_hash = self.finish(records, inputs, outputs)
        return EngineModel(self.precision, self.tensors, records, blob, plan_hash, inputs, outputs, self.folded)

    def finish(self, records: list[KernelRecord], inputs: list[int], outputs: list[int]) -> tuple[bytes, bytes]:
        # The hash covers the per-tensor storage through "fp32_tensors" (the float tensors an fp16
        # plan keeps in float32), present only when there are some: a plan without any (every
        # int8 / fp32 / all-fp16 plan) hashes as before per-tensor storage existed.
        tensors = [{f: v for f, v in vars(t).items() if f != "half"} for t in self.tensors]
        table = {"tensors": tensors, "kernels": [vars(r) for r in records], "precision": self.precision,
                 "inputs": inputs, "outputs": outputs}
        kept = [t.id for t in self.tensors if t.dtype == "float32" and self.precision == "fp16" and not t.half]
        if kept:
            table["fp32_tensors"] = kept
        table = json.dumps(table, sort_keys=True, default=list)
        digest = hashlib.sha256(self.blob.payload() + table.encode()).digest()[:16]
        return self.blob.finish(digest), digest

    def record(self, k: Kernel, ktype: str, ptype: str, params: dict, inputs=None) -> KernelRecord:
        ins = [self.tensor_id(i) for i in (inputs if inputs is not None else k.inputs)]
        ins += [-1] * (2 - len(ins))
        return KernelRecord(ktype, k.op, (ins[0], ins[1]), self.tensor_id(k.output), params, ptype)

    def kernel(self, k: Kernel) -> KernelRecord:
        method = getattr(self, "k_" + type(k).__name__.lower(), None)
        if method is None:
            raise UnsupportedOpError(f"op {k.op}: the engine has no {k.name} kernel")
        # float constants at the precision of the tensor the kernel writes
        self.to_float = to_half if self.plan.stores_half(k.output) else self._float32
        return method(k)

    def _conv(self, k, packed: np.ndarray, dm: int) -> dict:
        q = k.stage.quantized
        return {
            "win": _window(k.win),
            "depth_multiplier": dm,
            "input_offset": -int(k.in_zp) if q else 0,
            "weights_offset": int(k.weights_offset) if q else 0,
            "weights": self.blob.add(packed),
            "bias": self.bias(k, q),
            "out": self.stage(k.stage, k.win.out_c),
        }

    def weight_tensor(self, k: Kernel) -> Tensor:
        return self.g.tensors[self.g.ops[k.op].inputs[1]]

    def k_conv2d(self, k: Conv2D) -> KernelRecord:
        src = self.weight_tensor(k)
        raw = self.weights_raw(k.weights, k.weights_offset, k.stage.quantized, src)
        params = self._conv(k, layout.conv_filter_to_o4hwi4(raw), 1)
        return self.record(k, "Conv2D", "ConvParams", params)

    def k_depthwiseconv2d(self, k: DepthwiseConv2D) -> KernelRecord:
        src = self.weight_tensor(k)
        raw = self.weights_raw(k.weights, k.weights_offset, k.stage.quantized, src)
        params = self._conv(k, layout.depthwise_filter_to_c4hw4(raw[None]), k.depth_multiplier)
        return self.record(k, "DepthwiseConv2D", "ConvParams", params)

    def k_fullyconnected(self, k: FullyConnected) -> KernelRecord:
        q = k.stage.quantized
        src = self.weight_tensor(k)
        raw = self.weights_raw(k.weights, k.weights_offset, q, src)
        out_c, in_c = raw.shape
        params = {
            "in_c": in_c, "out_c": out_c,
            "input_offset": -int(k.in_zp) if q else 0,
            "weights_offset": int(k.weights_offset) if q else 0,
            "output_offset": int(k.fc.output_offset) if q else 0,
            "act_min": int(k.stage.lo) if q else 0, "act_max": int(k.stage.hi) if q else 0,
            "lo": 0.0 if q else _bound(k.stage.lo), "hi": 0.0 if q else _bound(k.stage.hi),
            "weights": self.blob.add(layout.fc_weights_to_o4i4(raw)),
            "bias": self.bias(k, q),
            "scales": self.vec(np.asarray(k.fc.effective_scales, np.float64), np.float64) if q else (0, 0),
        }
        return self.record(k, "FullyConnected", "FullyConnectedParams", params)

    def k_pool2d(self, k: Pool2D) -> KernelRecord:
        q = self.g.tensors[k.output].dtype in ("int8", "uint8")
        params = {
            "win": _window(k.win),
            "act_min": int(k.lo) if q else 0, "act_max": int(k.hi) if q else 0,
            "lo": 0.0 if q else _bound(k.lo), "hi": 0.0 if q else _bound(k.hi),
        }
        ktype = "AveragePool2D" if k.kind == "avg" else "MaxPool2D"
        return self.record(k, ktype, "PoolParams", params)

    def k_mean(self, k: Mean) -> KernelRecord:
        m = k.q
        params = {
            "h": k.h, "w": k.w, "c": k.c, "count": k.h * k.w,
            "input_zero_point": m.input_zero_point if m else 0,
            "output_zero_point": m.output_zero_point if m else 0,
            "multiplier": m.multiplier if m else 0, "shift": m.shift if m else 0,
            "act_min": m.qmin if m else 0, "act_max": m.qmax if m else 0,
        }
        return self.record(k, "Mean", "MeanParams", params)

    def k_add(self, k: Add) -> KernelRecord:
        p = k.q
        if p is None:
            params = {f: 0 for f in _ADD_INT_FIELDS}
            params.update(lo=_bound(k.lo), hi=_bound(k.hi))
        else:
            params = {f: int(getattr(p, f)) for f in _ADD_INT_FIELDS}
            params.update(lo=0.0, hi=0.0)
        return self.record(k, "Add", "AddParams", params)

    def k_pad(self, k: Pad) -> KernelRecord:
        p = k.paddings
        x = self.g.tensors[k.inputs[0]]
        if len(x.shape) != 4 or p[0].any() or p[3].any():
            raise UnsupportedOpError(f"op {k.op}: the engine pads only height and width of [1][h][w][c]")
        params = {
            "pad_top": int(p[1][0]), "pad_bottom": int(p[1][1]), "pad_left": int(p[2][0]), "pad_right": int(p[2][1]),
            "value": int(k.value),
        }
        return self.record(k, "Pad", "PadParams", params)

    def k_concat(self, k: Concat) -> KernelRecord:
        # The kernel concatenates the channels of storage views (storage_view): for rank-4
        # tensors that is axis 3; rank < 4 tensors are stored flat, so any axis with only unit
        # dimensions before it (a detector's [1, boxes, 4] ++ [1, boxes2, 4]) is a flat
        # concatenation, c0 and c1 being the inputs' element counts.
        shape = self.g.tensors[k.output].shape
        rank = len(shape)
        flat = rank < 4 and int(np.prod(shape[: k.axis], dtype=np.int64)) == 1
        if len(k.inputs) != 2 or not (flat or (rank == 4 and k.axis == 3)):
            raise UnsupportedOpError(
                f"op {k.op}: the engine concatenates two inputs along the channels of [1][h][w][c], "
                f"or along an axis of a rank < 4 tensor with only unit dimensions before it (got axis {k.axis} "
                f"of {list(shape)}, {len(k.inputs)} inputs)"
            )
        c0, c1 = (storage_view(self.g.tensors[i].shape)[2] for i in k.inputs)
        params: dict = {"c0": int(c0), "c1": int(c1)}
        # Legacy uint8 inputs whose quantization differs from the output's are rescaled as
        # ConcatenationWithScaling does: roundf(x * scale + bias) + zp_out, float32 throughout.
        rescale = [(0, 0.0, 0.0)] * 2
        output_zp = 0
        for n, q in enumerate(k.requant[:2] if k.requant else []):
            if q is None:
                continue
            in_s, in_zp, out_s, out_zp = q
            if np.float32(in_s) == np.float32(out_s) and int(in_zp) == int(out_zp):
                continue  # concat_rescale_uint8 copies it
            scale, bias = P.concat_rescale_params(in_s, in_zp, out_s)
            rescale[n] = (1, float(scale), float(bias))
            output_zp = int(out_zp)
        for n, (flag, scale, bias) in enumerate(rescale):
            params.update({f"rescale{n}": flag, f"scale{n}": scale, f"bias{n}": bias})
        params["output_zero_point"] = output_zp
        return self.record(k, "Concat", "ConcatParams", params)

    def k_softmax(self, k: Softmax) -> KernelRecord:
        p = k.q
        params = {
            "input_multiplier": p.input_multiplier if p else 0,
            "input_left_shift": p.input_left_shift if p else 0,
            "diff_min": p.diff_min if p else 0,
            "output_min": p.output_min if p else 0,
            "output_max": p.output_max if p else 0,
            "beta": float(np.float32(k.beta)),
        }
        return self.record(k, "Softmax", "SoftmaxParams", params)

    def k_quantize(self, k: Quantize) -> KernelRecord:
        y = self.g.tensors[k.output]
        info = np.iinfo(y.dtype)
        params = {
            "scale": float(k.scale), "zero_point": int(k.zero_point),
            "input_zero_point": 0, "output_zero_point": 0, "multiplier": 0, "shift": 0,
            "qmin": int(info.min), "qmax": int(info.max),
        }
        if k.requant is not None:
            r = k.requant
            params.update(
                scale=0.0, zero_point=0, input_zero_point=r.input_zero_point, output_zero_point=r.output_zero_point,
                multiplier=r.multiplier, shift=r.shift,
            )
            return self.record(k, "Requantize", "QuantizeParams", params)
        return self.record(k, "Quantize", "QuantizeParams", params)

    def k_dequantize(self, k: Dequantize) -> KernelRecord:
        params = {
            "scale": float(k.scale), "zero_point": int(k.zero_point),
            "input_zero_point": 0, "output_zero_point": 0, "multiplier": 0, "shift": 0, "qmin": 0, "qmax": 0,
        }
        return self.record(k, "Dequantize", "QuantizeParams", params)

    def k_reshape(self, k: Reshape) -> KernelRecord:
        r = self.record(k, "Reshape", None, {})
        a, b = self.tensors[r.inputs[0]], self.tensors[r.output]
        if a.half != b.half:  # plan.storage_groups: a RESHAPE's output shares its input's storage
            raise ValueError(f"op {k.op}: RESHAPE between float16 and float32 storage")
        r.alias = (a.h, a.w, a.c) == (b.h, b.w, b.c)
        return r

    def k_activation(self, k: Activation) -> KernelRecord:
        p = k.q
        params = {
            "input_zero_point": p.input_zero_point if p else 0,
            "output_offset": p.output_offset if p else 0,
            "multiplier": p.multiplier if p else 0, "shift": p.shift if p else 0,
            "act_min": p.act_min if p else 0, "act_max": p.act_max if p else 0,
            "lo": 0.0 if p else _bound(k.lo), "hi": 0.0 if p else _bound(k.hi),
        }
        return self.record(k, "Activation", "ActivationParams", params)


_ADD_INT_FIELDS = (
    "left_shift", "input1_offset", "input1_multiplier", "input1_shift", "input2_offset", "input2_multiplier",
    "input2_shift", "output_offset", "output_multiplier", "output_shift", "act_min", "act_max",
)


def default_precision(g: Graph) -> str:
    """int8 for integer models, fp32 for float models."""
    return "int8" if is_quantized(g) else "fp32"


def plan_for_precision(
    g: Graph, precision: str | None = None, keep_fp32: frozenset[int] = frozenset()
) -> tuple[Plan, str]:
    """The plan the engine runs at `precision` (default: the model's own). An integer model at a
    float precision runs dequantized, as TFLite's GPU delegate runs it; fp16 is float kernels with
    fp16 storage (mobilegen.numerics.fp16), for float and integer models alike, except the float
    tensors in `keep_fp32` (TFLite tensor indices; see plan.half_storage_plan), stored in float32.
    A keep set at another precision is a UserInputError."""
    precision = precision or default_precision(g)
    if precision not in PRECISIONS:
        raise UserInputError(f"precision {precision!r} is not available; available: {', '.join(PRECISIONS)}")
    if precision == "int8" and not is_quantized(g):
        raise UserInputError("precision int8 needs an int8 or uint8 model; this model is float (use fp32 or fp16)")
    if precision != "int8" and is_quantized(g):
        g = dequantize_graph(g)
    if keep_fp32 and precision != "fp16":
        raise UserInputError(f"tensors kept in float32 need precision fp16 (got {precision})")
    plan = build_plan(g)
    return (half_storage_plan(plan, frozenset(keep_fp32)) if precision == "fp16" else plan), precision


def export_plan(plan: Plan, precision: str) -> EngineModel:
    """The engine tables and weights blob for `plan` (from plan_for_precision) at `precision`."""
    # int8 runs the model's own integer kernels; fp16/fp32 run float kernels (an integer model
    # dequantized, its 8-bit graph input and output kept through boundary (DE)QUANTIZE ops).
    if precision == "int8" and not is_quantized(plan.graph):
        raise ValueError("a float plan cannot run at int8")
    if precision != "int8" and computes_in_integers(plan.graph):
        raise ValueError(f"a quantized plan cannot run at {precision}")
    if (precision == "fp16") != (plan.float_storage == "float16"):
        raise ValueError(f"a plan with {plan.float_storage} storage cannot run at {precision}")
    return _Exporter(plan, precision).export()
