"""Graph IR -> plan: the list of kernel instances the GPU will run, with every parameter resolved.

One plan feeds the simulator and the renderers. Each kernel carries the integers its arithmetic
needs (multipliers, shifts, zero points, clamp bounds, padding) decided here, once, by the numeric
helpers in mobilegen.numerics; the simulator and the shader templates only execute them.

Lowering rules:
- RESHAPE and SQUEEZE become `Reshape` (bytes unchanged).
- DEQUANTIZE of a constant (float16 weights) is folded: the kernel that reads it gets float32
  weights, and a `ConstantKernel` still reports the folded tensor so dumps list every tensor an
  operator writes. DENSIFY of a constant (the reader has already densified sparse constants) folds
  the same way, and a DEQUANTIZE of its output too.
- Shape checks are done up front, per op, naming the op and the tensor.
- Precision fp16 (`half_storage_plan`, mobilegen.numerics.fp16) stores every float tensor as
  binary16 except those the plan keeps in float32 (`Plan.fp32_tensors`, `Plan.stores_half`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mobilegen.errors import ModelValidationError, UnsupportedOpError, UserInputError
from mobilegen.ir.graph import Graph, Op, Tensor
from mobilegen.ir.verify import QRANGE, verify_graph
from mobilegen.numerics import params as P
from mobilegen.numerics.fp16 import round_to_half
from mobilegen.numerics.softmax import OUTPUT_SCALE as SOFTMAX_OUTPUT_SCALE
from mobilegen.numerics.softmax import softmax_params

SUPPORTED_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "MEAN",
    "RESHAPE",
    "SQUEEZE",
    "FULLY_CONNECTED",
    "SOFTMAX",
    "QUANTIZE",
    "DEQUANTIZE",
    "DENSIFY",
    "ADD",
    "PAD",
    "CONCATENATION",
    "RELU",
    "RELU6",
)
# Ops Keras' dynamic-batch head emits; rejected with advice rather than a bare "unsupported".
DYNAMIC_BATCH_OPS = ("SHAPE", "STRIDED_SLICE", "PACK")
DYNAMIC_BATCH_ADVICE = (
    "the model computes its batch size at run time (SHAPE/STRIDED_SLICE/PACK from a dynamic-batch "
    "Keras export); convert it at batch size 1, e.g. with a tf.function whose input_signature is "
    "tf.TensorSpec([1, H, W, 3]) or keras.Input(shape, batch_size=1)"
)
ACTIVATIONS = ("NONE", "RELU", "RELU6")
SOFTMAX_SCALE_TOLERANCE = 0.001 / 128


# --------------------------------------------------------------------------------------------------
# Kernel instances
# --------------------------------------------------------------------------------------------------
@dataclass
class Kernel:
    op: int  # index of the source op
    inputs: tuple[int, ...]  # activation tensor indices the kernel reads
    output: int  # tensor index it writes

    @property
    def name(self) -> str:
        return type(self).__name__


@dataclass
class Window:
    """Geometry of a sliding-window op over [1][h][w][c]."""

    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_left: int


@dataclass
class OutputStage:
    """How an accumulator becomes the output value.

    Quantized: out = clamp(MBQM(acc, multiplier[c], shift[c]) + zp, lo, hi) (per channel or one value).
    Float: out = clamp(acc, lo, hi) with lo/hi floats (-inf/inf for no activation).
    """

    quantized: bool
    lo: float
    hi: float
    multiplier: np.ndarray | None = None  # int64 [oc] or [1]
    shift: np.ndarray | None = None  # int64 [oc] or [1]; TFLite's exponent, positive = left shift
    zero_point: int = 0


@dataclass
class Conv2D(Kernel):
    win: Window
    weights: np.ndarray  # [out][kh][kw][in]: int32 (quantized, zero point removed) or float32
    bias: np.ndarray  # [out]: int32 or float32
    in_zp: int
    stage: OutputStage
    weights_offset: int = 0  # already added to `weights`; kept for targets that store raw weights


@dataclass
class DepthwiseConv2D(Kernel):
    win: Window
    depth_multiplier: int
    weights: np.ndarray  # [kh][kw][out]: int32 (zero point removed) or float32
    bias: np.ndarray  # [out]
    in_zp: int
    stage: OutputStage
    weights_offset: int = 0  # already added to `weights`


@dataclass
class FullyConnected(Kernel):
    weights: np.ndarray  # [out][in]: int32 (zero point removed) or float32
    bias: np.ndarray  # [out]
    in_zp: int
    stage: OutputStage
    fc: Any = None  # numerics.params FC output parameters for the quantized path
    weights_offset: int = 0  # already added to `weights`


@dataclass
class Pool2D(Kernel):
    kind: str  # "avg" | "max"
    win: Window
    lo: float
    hi: float


@dataclass
class Mean(Kernel):
    """Mean over h and w of [1][h][w][c]."""

    h: int
    w: int
    c: int
    q: Any = None  # numerics.params mean parameters, None for float


@dataclass
class Add(Kernel):
    q: Any = None  # numerics.params add parameters, None for float
    lo: float = -np.inf
    hi: float = np.inf


@dataclass
class Pad(Kernel):
    paddings: np.ndarray  # [rank][2] (before, after)
    value: float | int


@dataclass
class Concat(Kernel):
    axis: int
    requant: list[Any] = field(default_factory=list)  # per input: None (copy) or params


@dataclass
class Softmax(Kernel):
    beta: float
    q: Any = None  # numerics softmax parameters, None for float


@dataclass
class Quantize(Kernel):
    """float -> q with the output's scale and zero point, or q -> q through `requant`."""

    scale: float
    zero_point: int
    requant: Any = None  # numerics.params.RequantizeParams for an 8-bit input


@dataclass
class Dequantize(Kernel):
    scale: float
    zero_point: int


@dataclass
class Reshape(Kernel):
    shape: tuple[int, ...]


@dataclass
class Activation(Kernel):
    """Standalone RELU / RELU6."""

    kind: str
    q: Any = None  # quantized requantize + clamp parameters, None for float
    lo: float = 0.0
    hi: float = np.inf


@dataclass
class ConstantKernel(Kernel):
    """A tensor an op writes from constants only (folded DEQUANTIZE of float16 weights, DENSIFY)."""

    value: np.ndarray


def folded_tensors(plan: "Plan") -> frozenset[int]:
    """Tensors an op writes that the plan computes at generation (ConstantKernel outputs)."""
    return frozenset(k.output for k in plan.kernels if isinstance(k, ConstantKernel))


@dataclass
class Plan:
    graph: Graph
    kernels: list[Kernel]
    # "float32", or "float16" at precision fp16: float weights, biases and every stored float
    # tensor are binary16 numbers (mobilegen.numerics.fp16; half_storage_plan makes such a plan),
    # except the float tensors in fp32_tensors (and the weights of the kernels writing them).
    float_storage: str = "float32"
    # At float16 storage: the float tensors kept in float32 (TFLite tensor indices of `graph`).
    fp32_tensors: frozenset[int] = frozenset()

    def stores_half(self, index: int) -> bool:
        """Whether tensor `index` is a float tensor stored as binary16."""
        return (
            self.float_storage == "float16"
            and self.graph.tensors[index].dtype == "float32"
            and index not in self.fp32_tensors
        )

    @property
    def inputs(self) -> tuple[int, ...]:
        return self.graph.inputs

    @property
    def outputs(self) -> tuple[int, ...]:
        return self.graph.outputs


# --------------------------------------------------------------------------------------------------
# Lowering
# --------------------------------------------------------------------------------------------------
def unsupported_ops(g: Graph) -> list[tuple[int, str]]:
    return [(op.index, op.opcode) for op in g.ops if op.opcode not in SUPPORTED_OPS]


def build_plan(g: Graph) -> Plan:
    """Verify `g` and lower it to kernels. Raises located MobilegenErrors."""
    for op in g.ops:
        if op.opcode in DYNAMIC_BATCH_OPS:
            raise UnsupportedOpError(f"{op.describe()}: {DYNAMIC_BATCH_ADVICE}")
        if op.opcode not in SUPPORTED_OPS:
            raise UnsupportedOpError(
                f"{op.describe()} is not supported; supported ops: {', '.join(SUPPORTED_OPS)}"
            )
    verify_graph(g)
    lw = _Lowering(g)
    kernels = [lw.lower(op) for op in g.ops]
    return Plan(g, kernels)


def stored_float_tensors(plan: Plan) -> frozenset[int]:
    """The float tensors the engine stores at run time: the graph's float inputs and the float
    outputs of every kernel that runs (not the folded constants). These are what a keep set of
    half_storage_plan may name."""
    tensors = plan.graph.tensors
    written = [k.output for k in plan.kernels if not isinstance(k, ConstantKernel)]
    return frozenset(i for i in (*plan.graph.inputs, *written) if tensors[i].dtype == "float32")


def storage_groups(plan: Plan) -> list[frozenset[int]]:
    """Tensors that must share one storage precision: a RESHAPE's output is its input's bytes (an
    alias on the GPU when the two storage views match), so every chain of RESHAPEs is one group.
    Every other stored float tensor is a group of its own."""
    parent: dict[int, int] = {i: i for i in stored_float_tensors(plan)}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for k in plan.kernels:
        if isinstance(k, Reshape) and k.inputs[0] in parent and k.output in parent:
            parent[root(k.output)] = root(k.inputs[0])
    groups: dict[int, set[int]] = {}
    for i in parent:
        groups.setdefault(root(i), set()).add(i)
    return [frozenset(g) for _, g in sorted(groups.items())]


def half_storage_plan(plan: Plan, keep_fp32: frozenset[int] = frozenset()) -> Plan:
    """`plan` with fp16 storage (mobilegen.numerics.fp16), except the float tensors in `keep_fp32`
    (TFLite tensor indices of plan.graph), which stay float32.

    A kernel's float weights and biases are stored at its output tensor's precision: rounded to
    binary16 here, once, when the output is stored as half (so that the simulator runs and the
    weights blob stores the same numbers), left float32 when the output is kept. The simulator
    rounds exactly the tensors the plan stores as half (Plan.stores_half).

    Storage-preserving kernels: a RESHAPE's output shares its input's storage (storage_groups), so
    a keep set naming either keeps the whole chain in float32 (the result's fp32_tensors lists
    every member). A folded constant (ConstantKernel: float16 or sparse weights) is reported in
    float32 when a kernel reading it keeps its output in float32 (it is that kernel's weights).
    An index that is not a stored float tensor (stored_float_tensors: out of range, 8-bit, a
    weight) is a UserInputError: its storage is not the plan's to choose. `plan` must have float32
    storage (build_plan's): the float32 weights of kept kernels come from it."""
    if plan.float_storage != "float32":
        raise ValueError(f"half_storage_plan takes a plan with float32 storage, not {plan.float_storage}")
    keep = frozenset(int(i) for i in keep_fp32)
    stored = stored_float_tensors(plan)
    tensors = plan.graph.tensors
    for i in sorted(keep - stored):
        what = tensors[i].describe() if 0 <= i < len(tensors) else f"tensor {i} (the graph has {len(tensors)})"
        raise UserInputError(
            f"keep_fp32 names {what}: expected a float tensor the engine stores (a float graph input or a kernel's float output)"
        )
    fp32 = set()
    for group in storage_groups(plan):
        if group & keep:
            fp32 |= group
    # Folded constants read by a kernel that keeps its output in float32 keep their float32 value.
    folded = folded_tensors(plan)
    for k in reversed(plan.kernels):  # readers first: a folded DEQUANTIZE of a folded DENSIFY
        if k.output in fp32:
            fp32 |= {i for i in plan.graph.ops[k.op].inputs if i in folded}
    fp32_tensors = frozenset(fp32)
    half = Plan(plan.graph, [], float_storage="float16", fp32_tensors=fp32_tensors)
    for k in plan.kernels:
        if isinstance(k, (Conv2D, DepthwiseConv2D, FullyConnected)) and not k.stage.quantized and half.stores_half(k.output):
            k = replace(k, weights=round_to_half(k.weights), bias=round_to_half(k.bias))
        half.kernels.append(k)
    return half


def _same_or_valid(padding: str, in_size: int, k: int, stride: int, dil: int, op: Op) -> tuple[int, int]:
    """(out size, pad before) as kernels/padding.h computes them; the odd pixel goes after."""
    k_eff = (k - 1) * dil + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size - k_eff + stride) // stride
    total = max((out - 1) * stride + k_eff - in_size, 0)
    if out < 1:
        raise ModelValidationError(
            f"{op.describe()}: a {k}x window (dilation {dil}) does not fit an input of size {in_size} with {padding} padding"
        )
    return out, total // 2


class _Lowering:
    def __init__(self, g: Graph):
        self.g = g
        # DEQUANTIZE / DENSIFY outputs computed from constants, usable as weights by later ops.
        self.folded: dict[int, np.ndarray] = {}

    # -- helpers --------------------------------------------------------------------------------
    def t(self, i: int) -> Tensor:
        return self.g.tensors[i]

    def const(self, op: Op, i: int, role: str) -> np.ndarray:
        if i in self.folded:
            return self.folded[i]
        t = self.t(i)
        if t.data is None:
            raise UnsupportedOpError(f"{op.describe()}: {role} {t.describe()} must be a constant")
        return t.data

    def float_weights(self, op: Op, w: np.ndarray, role: str = "filter") -> np.ndarray:
        """The constant operand of a float op as float32. Integer weights under float activations
        (a hybrid op the reader did not fold) would be read as raw integers: refuse them."""
        if w.dtype.kind != "f":
            raise UnsupportedOpError(f"{op.describe()}: a float op with {w.dtype} {role} (a hybrid op); expected float weights")
        return w.astype(np.float32)

    def fail(self, op: Op, msg: str):
        raise ModelValidationError(f"{op.describe()}: {msg}")

    def derive(self, op: Op, fn, *args):
        """Run a numerics parameter derivation; what LiteRT's Prepare rejects becomes a located error."""
        try:
            return fn(*args)
        except ValueError as e:
            self.fail(op, str(e))

    def expect_rank(self, op: Op, t: Tensor, rank: int, role: str) -> None:
        if len(t.shape) != rank:
            self.fail(op, f"{role} {t.describe()} has rank {len(t.shape)}; expected {rank}")

    def expect_shape(self, op: Op, t: Tensor, shape: tuple[int, ...], role: str = "output") -> None:
        if tuple(t.shape) != tuple(shape):
            self.fail(op, f"{role} {t.describe()} has shape {list(t.shape)}; expected {list(shape)}")

    def quantized(self, op: Op, *tensors: Tensor) -> bool:
        """True for an integer op; all activation operands must agree."""
        kinds = {t.dtype in QRANGE for t in tensors}
        if len(kinds) > 1:
            self.fail(op, "mixes float and quantized operands: " + ", ".join(t.describe() for t in tensors))
        q = kinds.pop()
        if q:
            for t in tensors:
                if t.dtype == "int16":
                    raise UnsupportedOpError(f"{op.describe()}: int16 activations ({t.describe()}) are not supported")
                if t.quant is None or t.quant.per_channel:
                    self.fail(op, f"{t.describe()} needs per-tensor quantization")
        return q

    def act(self, op: Op) -> str:
        a = op.options.get("activation", "NONE")
        if a not in ACTIVATIONS:
            raise UnsupportedOpError(f"{op.describe()}: fused activation {a} is not supported; supported: {', '.join(ACTIVATIONS)}")
        return a

    def stage(self, op: Op, out: Tensor, quantized: bool) -> OutputStage:
        a = self.act(op)
        if quantized:
            lo, hi = self.derive(op, P.activation_range, a, out.quant.s, out.quant.zp, out.dtype)
            return OutputStage(True, lo, hi, zero_point=out.quant.zp)
        lo, hi = {"NONE": (-np.inf, np.inf), "RELU": (0.0, np.inf), "RELU6": (0.0, 6.0)}[a]
        return OutputStage(False, lo, hi)

    def window(self, op: Op, x: Tensor, k_h: int, k_w: int, out_c: int) -> Window:
        o = op.options
        _, ih, iw, ic = x.shape
        sh, sw = o["stride_h"], o["stride_w"]
        dh, dw = o.get("dilation_h", 1), o.get("dilation_w", 1)
        if min(sh, sw, dh, dw) < 1:
            self.fail(op, f"strides ({sh}, {sw}) and dilations ({dh}, {dw}) must be >= 1")
        if min(k_h, k_w) < 1:
            self.fail(op, f"window {k_h}x{k_w} must be at least 1x1")
        oh, pt = _same_or_valid(o["padding"], ih, k_h, sh, dh, op)
        ow, pl = _same_or_valid(o["padding"], iw, k_w, sw, dw, op)
        return Window(ih, iw, ic, oh, ow, out_c, k_h, k_w, sh, sw, dh, dw, pt, pl)

    def bias(self, op: Op, out_c: int, quantized: bool) -> np.ndarray:
        if len(op.inputs) < 3 or op.inputs[2] == -1:
            return np.zeros(out_c, np.int32 if quantized else np.float32)
        b = self.const(op, op.inputs[2], "bias")
        if b.shape != (out_c,):
            self.fail(op, f"bias {self.t(op.inputs[2]).describe()} has shape {list(b.shape)}; expected [{out_c}]")
        want = "int32" if quantized else "float32"
        if b.dtype != want:
            raise UnsupportedOpError(f"{op.describe()}: bias {self.t(op.inputs[2]).describe()} must be {want}")
        return b

    def weight_zp(self, op: Op, w: Tensor, x: Tensor) -> int:
        """Weight zero point: ignored for int8 (symmetric), per-tensor for legacy uint8."""
        if w.dtype == "int8":
            return 0
        if w.dtype == "uint8":
            if w.quant.per_channel:
                self.fail(op, f"uint8 weights {w.describe()} must be per-tensor quantized")
            return w.quant.zp
        raise UnsupportedOpError(f"{op.describe()}: weights {w.describe()} of type {w.dtype} with {x.dtype} input")

    # -- dispatch -------------------------------------------------------------------------------
    def lower(self, op: Op) -> Kernel:
        return getattr(self, "op_" + op.opcode.lower())(op)

    def op_conv_2d(self, op: Op) -> Kernel:
        x, wt, y = self.t(op.inputs[0]), self.t(op.inputs[1]), self.t(op.outputs[0])
        self.expect_rank(op, x, 4, "input")
        self.expect_rank(op, wt, 4, "filter")
        w = self.const(op, op.inputs[1], "filter")
        oc, kh, kw, ic = w.shape
        if ic != x.shape[3]:
            if ic < 1 or x.shape[3] % ic:
                self.fail(op, f"filter {wt.describe()} has {ic} input channels; expected {x.shape[3]}")
            raise UnsupportedOpError(f"{op.describe()}: grouped convolution ({x.shape[3]} channels, filter {ic}) is not supported")
        if x.shape[0] != 1:
            raise UnsupportedOpError(f"{op.describe()}: batch {x.shape[0]}; only batch 1 is supported")
        win = self.window(op, x, kh, kw, oc)
        self.expect_shape(op, y, (1, win.out_h, win.out_w, oc))
        q = self.quantized(op, x, y)
        b = self.bias(op, oc, q)
        if not q:
            return Conv2D(op.index, (x.index,), y.index, win, self.float_weights(op, w), b, 0, self.stage(op, y, False))
        cp = self.conv_quant(op, x, wt, y, oc, axis=0)
        return Conv2D(
            op.index, (x.index,), y.index, win, w.astype(np.int32) + cp.weights_offset, b, x.quant.zp,
            self.conv_stage(cp), cp.weights_offset,
        )

    def conv_quant(self, op: Op, x: Tensor, wt: Tensor, y: Tensor, oc: int, axis: int):
        scales = self.weight_scales(op, wt, oc, axis)
        bias = self.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        bias_scale = bias.quant.s if bias is not None and bias.quant is not None else None
        return self.derive(
            op, P.conv_params, x.quant.s, x.quant.zp, scales, self.weight_zp(op, wt, x),
            y.quant.s, y.quant.zp, self.act(op), x.dtype, oc, bias_scale,
        )

    @staticmethod
    def conv_stage(cp) -> OutputStage:
        return OutputStage(
            True, cp.act_min, cp.act_max, np.asarray(cp.multipliers, np.int64), np.asarray(cp.shifts, np.int64), cp.output_offset
        )

    def weight_scales(self, op: Op, wt: Tensor, oc: int, axis: int) -> np.ndarray:
        """Weight scales: one (per-tensor) or one per output channel along `axis`."""
        if wt.quant is None:
            self.fail(op, f"weights {wt.describe()} have no quantization parameters")
        s = wt.quant.scale
        if s.size == 1:
            return s
        if wt.quant.axis != axis or s.size != oc:
            self.fail(op, f"weights {wt.describe()} are quantized along dimension {wt.quant.axis} "
                          f"with {s.size} scales; expected dimension {axis} with {oc}")
        return s

    def op_depthwise_conv_2d(self, op: Op) -> Kernel:
        x, wt, y = self.t(op.inputs[0]), self.t(op.inputs[1]), self.t(op.outputs[0])
        self.expect_rank(op, x, 4, "input")
        self.expect_rank(op, wt, 4, "filter")
        w = self.const(op, op.inputs[1], "filter")
        one, kh, kw, oc = w.shape
        ic = x.shape[3]
        # The reference kernels derive the multiplier from the shapes; the options field is ignored.
        if one != 1 or ic < 1 or oc % ic:
            self.fail(op, f"filter {wt.describe()} must be [1][kh][kw][in*dm] with in = {ic}")
        if x.shape[0] != 1:
            raise UnsupportedOpError(f"{op.describe()}: batch {x.shape[0]}; only batch 1 is supported")
        dm = oc // ic
        win = self.window(op, x, kh, kw, oc)
        self.expect_shape(op, y, (1, win.out_h, win.out_w, oc))
        q = self.quantized(op, x, y)
        b = self.bias(op, oc, q)
        w3 = w.reshape(kh, kw, oc)
        if not q:
            return DepthwiseConv2D(op.index, (x.index,), y.index, win, dm, self.float_weights(op, w3), b, 0, self.stage(op, y, False))
        cp = self.conv_quant(op, x, wt, y, oc, axis=3)
        return DepthwiseConv2D(
            op.index, (x.index,), y.index, win, dm, w3.astype(np.int32) + cp.weights_offset, b, x.quant.zp,
            self.conv_stage(cp), cp.weights_offset,
        )

    def op_fully_connected(self, op: Op) -> Kernel:
        x, wt, y = self.t(op.inputs[0]), self.t(op.inputs[1]), self.t(op.outputs[0])
        if op.options.get("weights_format", 0) != 0:
            raise UnsupportedOpError(f"{op.describe()}: shuffled weights format is not supported")
        w = self.const(op, op.inputs[1], "weights")
        if w.ndim != 2:
            self.fail(op, f"weights {wt.describe()} must be [out][in]")
        oc, ic = w.shape
        if x.size != ic:
            if x.size % ic or x.size // ic != 1:
                raise UnsupportedOpError(f"{op.describe()}: input {x.describe()} holds {x.size} values; expected {ic} (batch 1)")
        if y.size != oc:
            self.fail(op, f"output {y.describe()} holds {y.size} values; expected {oc}")
        q = self.quantized(op, x, y)
        b = self.bias(op, oc, q)
        if not q:
            return FullyConnected(op.index, (x.index,), y.index, self.float_weights(op, w, "weights"), b, 0, self.stage(op, y, False))
        scales = self.weight_scales(op, wt, oc, axis=0)
        fc = self.derive(
            op, P.fc_params, x.quant.s, x.quant.zp, scales, self.weight_zp(op, wt, x),
            y.quant.s, y.quant.zp, self.act(op), x.dtype, oc,
        )
        st = OutputStage(True, fc.act_min, fc.act_max, zero_point=fc.output_offset)
        return FullyConnected(
            op.index, (x.index,), y.index, w.astype(np.int32) + fc.weights_offset, b, x.quant.zp, st, fc, fc.weights_offset
        )

    def _pool(self, op: Op, kind: str) -> Kernel:
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        self.expect_rank(op, x, 4, "input")
        o = op.options
        win = self.window(op, x, o["filter_h"], o["filter_w"], x.shape[3])
        self.expect_shape(op, y, (1, win.out_h, win.out_w, x.shape[3]))
        q = self.quantized(op, x, y)
        if q and (x.quant.s != y.quant.s or x.quant.zp != y.quant.zp):
            self.fail(op, f"input {x.describe()} and output {y.describe()} must share scale and zero point")
        st = self.stage(op, y, q)
        return Pool2D(op.index, (x.index,), y.index, kind, win, st.lo, st.hi)

    def op_average_pool_2d(self, op: Op) -> Kernel:
        return self._pool(op, "avg")

    def op_max_pool_2d(self, op: Op) -> Kernel:
        return self._pool(op, "max")

    def op_mean(self, op: Op) -> Kernel:
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        axes = sorted(int(a) % max(len(x.shape), 1) for a in np.ravel(self.const(op, op.inputs[1], "axes")))
        if len(x.shape) != 4 or axes != [1, 2]:
            raise UnsupportedOpError(f"{op.describe()}: MEAN over axes {axes} of {x.describe()}; only over h and w of [1][h][w][c]")
        _, h, w, c = x.shape
        want = (1, 1, 1, c) if op.options.get("keep_dims") else (1, c)
        self.expect_shape(op, y, want)
        q = self.quantized(op, x, y)
        mp = self.derive(op, P.mean_params, x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, h * w, y.dtype) if q else None
        return Mean(op.index, (x.index,), y.index, h, w, c, mp)

    def op_reshape(self, op: Op) -> Kernel:
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if x.size != y.size:
            self.fail(op, f"output {y.describe()} holds {y.size} values; input {x.describe()} holds {x.size}")
        if x.dtype != y.dtype or (x.quant and y.quant and (x.quant.s != y.quant.s or x.quant.zp != y.quant.zp)):
            self.fail(op, f"output {y.describe()} must keep the input's type and quantization")
        return Reshape(op.index, (x.index,), y.index, tuple(y.shape))

    op_squeeze = op_reshape

    def op_softmax(self, op: Op) -> Kernel:
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if x.shape != y.shape:
            self.fail(op, f"output {y.describe()} must have the input's shape {list(x.shape)}")
        beta = op.options.get("beta", 1.0)
        q = self.quantized(op, x, y)
        sp = None
        if q:
            # SoftmaxPrepare: output zero point at the type's minimum, scale within 0.001/128 of
            # 1/256; the kernel itself always writes in 1/256 steps.
            lo = QRANGE[y.dtype][0]
            if abs(y.quant.s - SOFTMAX_OUTPUT_SCALE) > SOFTMAX_SCALE_TOLERANCE or y.quant.zp != lo:
                self.fail(op, f"output {y.describe()} has scale {y.quant.s} zero point {y.quant.zp}; expected 1/256 and {lo}")
            sp = self.derive(op, softmax_params, x.quant.s, beta, x.dtype, y.dtype)
        return Softmax(op.index, (x.index,), y.index, beta, sp)

    def op_quantize(self, op: Op) -> Kernel:
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if x.shape != y.shape or y.dtype not in ("int8", "uint8") or y.quant is None or y.quant.per_channel:
            self.fail(op, f"output {y.describe()} must be per-tensor int8/uint8 with the input's shape")
        if x.dtype == "float32":
            qp = None
        elif x.dtype in ("int8", "uint8") and x.quant is not None and not x.quant.per_channel:
            qp = self.derive(op, P.requantize_params, x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, y.dtype)
        else:
            raise UnsupportedOpError(f"{op.describe()}: QUANTIZE from {x.dtype}")
        return Quantize(op.index, (x.index,), y.index, y.quant.s, y.quant.zp, qp)

    def op_densify(self, op: Op) -> Kernel:
        # The reader densified the sparse constant: DENSIFY is a copy, folded like DEQUANTIZE.
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if x.data is None:
            raise UnsupportedOpError(f"{op.describe()}: DENSIFY of {x.describe()}; expected a constant input")
        if x.dtype != y.dtype or x.shape != y.shape:
            self.fail(op, f"output {y.describe()} must have the input's dtype and shape")
        self.folded[y.index] = x.data
        return ConstantKernel(op.index, (), y.index, x.data)

    def op_dequantize(self, op: Op) -> Kernel:
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if y.dtype != "float32" or x.shape != y.shape:
            self.fail(op, f"output {y.describe()} must be float32 with the input's shape")
        xdata = self.folded.get(x.index, x.data)  # a folded DENSIFY output is a constant too
        if x.dtype == "float16":
            if xdata is None:
                raise UnsupportedOpError(f"{op.describe()}: DEQUANTIZE of float16 activations is not supported")
            value = xdata.astype(np.float32)
            self.folded[y.index] = value
            return ConstantKernel(op.index, (), y.index, value)
        if x.dtype not in ("int8", "uint8") or x.quant is None:
            raise UnsupportedOpError(f"{op.describe()}: DEQUANTIZE from {x.describe()}")
        if x.quant.per_channel:
            if xdata is None:
                raise UnsupportedOpError(f"{op.describe()}: per-channel DEQUANTIZE of activations")
            shape = [1] * len(x.shape)
            shape[x.quant.axis] = -1
            value = (x.quant.scale.astype(np.float64).reshape(shape) * (xdata.astype(np.float64) - x.quant.zero_point.reshape(shape))).astype(np.float32)
            self.folded[y.index] = value
            return ConstantKernel(op.index, (), y.index, value)
        if xdata is not None:
            value = (x.quant.s * (xdata.astype(np.float64) - x.quant.zp)).astype(np.float32)
            self.folded[y.index] = value
            return ConstantKernel(op.index, (), y.index, value)
        return Dequantize(op.index, (x.index,), y.index, x.quant.s, x.quant.zp)

    def op_add(self, op: Op) -> Kernel:
        a, b, y = self.t(op.inputs[0]), self.t(op.inputs[1]), self.t(op.outputs[0])
        if a.shape != b.shape or a.shape != y.shape:
            raise UnsupportedOpError(
                f"{op.describe()}: ADD of {a.describe()} and {b.describe()} into {y.describe()}; only equal shapes (no broadcasting) are supported"
            )
        if a.is_const or b.is_const:
            raise UnsupportedOpError(f"{op.describe()}: ADD with a constant operand is not supported")
        q = self.quantized(op, a, b, y)
        st = self.stage(op, y, q)
        ap = None
        if q:
            ap = self.derive(
                op, P.add_params, a.quant.s, a.quant.zp, b.quant.s, b.quant.zp, y.quant.s, y.quant.zp, self.act(op), y.dtype
            )
        return Add(op.index, (a.index, b.index), y.index, ap, st.lo, st.hi)

    def op_pad(self, op: Op) -> Kernel:
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        pads = np.asarray(self.const(op, op.inputs[1], "paddings")).astype(np.int64)
        if pads.shape != (len(x.shape), 2) or np.any(pads < 0):
            self.fail(op, f"paddings must be [{len(x.shape)}][2] and non-negative, got {pads.tolist()}")
        want = tuple(int(d + p[0] + p[1]) for d, p in zip(x.shape, pads))
        self.expect_shape(op, y, want)
        q = self.quantized(op, x, y)
        if q and (x.quant.s != y.quant.s or x.quant.zp != y.quant.zp):
            self.fail(op, f"input {x.describe()} and output {y.describe()} must share scale and zero point")
        # The reference pads quantized tensors with the output zero point (real 0).
        return Pad(op.index, (x.index,), y.index, pads, y.quant.zp if q else 0.0)

    def op_concatenation(self, op: Op) -> Kernel:
        xs, y = [self.t(i) for i in op.inputs], self.t(op.outputs[0])
        rank = len(y.shape)
        axis = op.options.get("axis", 0)
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis < rank:
            self.fail(op, f"axis {op.options.get('axis')} out of range for rank {rank}")
        for x in xs:
            if len(x.shape) != rank or any(x.shape[d] != y.shape[d] for d in range(rank) if d != axis):
                self.fail(op, f"input {x.describe()} does not match output {y.describe()} outside axis {axis}")
            if x.is_const:
                raise UnsupportedOpError(f"{op.describe()}: constant inputs to CONCATENATION are not supported")
        if sum(x.shape[axis] for x in xs) != y.shape[axis]:
            self.fail(op, f"inputs' sizes along axis {axis} do not add up to the output's {y.shape[axis]}")
        if self.act(op) != "NONE":
            raise UnsupportedOpError(f"{op.describe()}: fused activation on CONCATENATION is not supported")
        q = self.quantized(op, *xs, y)
        # int8 inputs must share the output's quantization (LiteRT checks); legacy uint8 inputs
        # are rescaled in float as ConcatenationWithScaling does.
        rq: list = [None] * len(xs)
        if q and y.dtype == "int8":
            self.derive(op, P.check_concat_int8, [(x.quant.s, x.quant.zp) for x in xs], y.quant.s, y.quant.zp)
        elif q:
            rq = [None if (x.quant.s, x.quant.zp) == (y.quant.s, y.quant.zp) else (x.quant.s, x.quant.zp, y.quant.s, y.quant.zp) for x in xs]
        return Concat(op.index, tuple(x.index for x in xs), y.index, axis, rq)

    def _relu(self, op: Op, kind: str) -> Kernel:
        x, y = self.t(op.inputs[0]), self.t(op.outputs[0])
        if x.shape != y.shape:
            self.fail(op, f"output {y.describe()} must have the input's shape {list(x.shape)}")
        q = self.quantized(op, x, y)
        if q:
            rp = self.derive(op, P.relu_params, kind, x.quant.s, x.quant.zp, y.quant.s, y.quant.zp, y.dtype)
            return Activation(op.index, (x.index,), y.index, kind, rp)
        return Activation(op.index, (x.index,), y.index, kind, None, 0.0, 6.0 if kind == "RELU6" else np.inf)

    def op_relu(self, op: Op) -> Kernel:
        return self._relu(op, "RELU")

    def op_relu6(self, op: Op) -> Kernel:
        return self._relu(op, "RELU6")
