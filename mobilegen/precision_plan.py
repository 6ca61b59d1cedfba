"""fp16 precision planning: which float tensors to keep in float32 at precision fp16.

At precision fp16 every stored float tensor is a binary16 number (mobilegen.numerics.fp16): the
kernels compute in float32 and round what they store, and a kernel's float weights and biases are
stored at its output tensor's precision. Two things go wrong with that on real models:

- overflow: a value whose magnitude rounds to 65520 or more is stored as infinity, and infinity
  turns into NaN as soon as a reduction (MEAN, average pool, SOFTMAX's max-subtraction) or a
  cancellation meets it. The calibration maximum is an estimate, so a tensor is also kept when its
  max |x| comes within `headroom` of the largest half, 65504;
- precision: binary16 has 11 significant bits and, below 6.1e-5, subnormals with a fixed spacing
  of 6e-8, so tensors (and weights) of small magnitude, or kernels that cancel large terms, lose
  far more than one rounding.

plan_fp16 measures both from calibration inputs. It runs the float32 plan once for the exact value
of every tensor, then, kernel by kernel and starting from those exact inputs (so one bad layer does
not drag every later layer over the tolerance), measures LOCALLY:

- own error of tensor t: the kernel writing t with fp16 weights and fp16 storage of t, against the
  same kernel in float32: max|a - b| / max|b| over t (over all calibration samples);
- reader error of t: each kernel reading t, fed t rounded to binary16 (its other inputs exact),
  against the float32 kernel: max|a - b| / max|b| over that kernel's output. This charges t for
  what its rounding does downstream (a cancellation in an ADD, SOFTMAX over large logits).

A tensor is kept in float32 when it overflows (or weights stored with it do), or its own or a
reader's error exceeds `tolerance`. Tensors joined by a RESHAPE share one storage in the engine,
so they are decided together. The plan then reports the whole-run error of the outputs against
float32 for all-fp16 storage and for the planned storage.

The keep set is a set of the graph's (TFLite) tensor indices, as mobilegen.plan.half_storage_plan
and mobilegen.export.plan_for_precision take it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mobilegen.errors import UserInputError
from mobilegen.ir.graph import Graph
from mobilegen.numerics.fp16 import round_to_half

# Local error allowed per tensor, max|a - b| / max|b|. One rounding to binary16 moves a value by at
# most 2^-11 = 4.9e-4 of itself and fp16 weights move a kernel's output about as much again; a
# depthwise convolution reading a rounded tensor sees up to 4x that: healthy MobileNets (V1, V2,
# the demo; 8 builtin images) measure at most 1.9e-3. 5e-3 is 2.6x that, ten roundings' worth.
DEFAULT_TOLERANCE = 5e-3
# A tensor whose calibration max |x| exceeds FP16_MAX / DEFAULT_HEADROOM is kept: inputs outside
# the calibration set may well be twice as large.
DEFAULT_HEADROOM = 2.0
FP16_MAX = 65504.0  # the largest finite binary16 number
FP16_INF_FROM = 65520.0  # float32 magnitudes from here up round to infinity
# Calibration samples taken from an image folder (spread evenly over it), and simulated at once.
DEFAULT_SAMPLES = 16
CHUNK = 4
# Ops that turn an infinity they read into NaN (inf - inf in SOFTMAX's max-subtraction, inf * 0 or
# inf + -inf in a sum) or spread it over a whole output: named in an overflow's reason.
SPREADS_INF = ("MEAN", "AVERAGE_POOL_2D", "SOFTMAX", "FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD")
PLAN_FILE = "precision_plan.json"
FORMAT_VERSION = 1


@dataclass
class Decision:
    """One float tensor's storage at fp16."""

    index: int  # TFLite tensor index
    name: str
    op: str  # the kind of op writing it ("CONV_2D"), "input" for a graph input
    op_index: int | None  # that op's index, None for a graph input
    max_abs: float  # max |x| over the calibration samples (float32 run)
    own_error: float  # its kernel with fp16 weights + fp16 storage vs float32, from exact inputs
    reader_error: float  # worst reader's output error when this tensor alone is rounded to fp16
    reader: str | None  # that reader, e.g. "SOFTMAX op 7"
    kept: bool  # stored as float32
    reasons: list[str] = field(default_factory=list)  # why it is kept (empty when stored as fp16)

    @property
    def error(self) -> float:
        """The local fp16 error charged to this tensor."""
        return max(self.own_error, self.reader_error)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass
class RunError:
    """A whole run at some storage against the float32 plan, over the calibration samples."""

    output_error: float  # max|a - b| / max|b| over each output, the worst output
    nonfinite: int  # non-finite output values (inf / NaN) over all samples
    top1_agreement: float | None  # share of samples whose first output's argmax matches float32
    worst_tensor: int | None = None  # the float tensor furthest from float32 (max|a - b| / max|b|)
    worst_tensor_error: float = 0.0


@dataclass
class PrecisionPlan:
    tolerance: float
    headroom: float
    samples: int
    decisions: list[Decision]
    runs: dict[str, RunError]  # "fp16" (every tensor fp16), "planned" (keep_fp32 in float32)

    @property
    def keep_fp32(self) -> frozenset[int]:
        return frozenset(d.index for d in self.decisions if d.kept)

    @property
    def kept(self) -> list[Decision]:
        return [d for d in self.decisions if d.kept]

    def to_dict(self) -> dict:
        def num(v):
            # JSON has no inf / NaN: written as strings so the file stays standard JSON.
            if v is None or isinstance(v, (bool, int, str)):
                return v
            return float(v) if math.isfinite(v) else str(v)

        return {
            "format": FORMAT_VERSION,
            "precision": "fp16",
            "tolerance": self.tolerance,
            "headroom": self.headroom,
            "calibration_samples": self.samples,
            "keep_fp32": sorted(self.keep_fp32),
            "tensors": [
                {**{k: num(v) for k, v in asdict(d).items() if k != "reasons"}, "error": num(d.error),
                 "reasons": list(d.reasons)}
                for d in self.decisions
            ],
            "whole_run_vs_fp32": {name: {k: num(v) for k, v in asdict(r).items()} for name, r in self.runs.items()},
        }

    def to_json(self) -> str:
        """Deterministic JSON (no dates): the same model and samples give the same bytes."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n"


def keep_set_from_json(text: str, source: str = PLAN_FILE) -> frozenset[int]:
    """The keep set of a precision_plan.json (e.g. one committed with a project)."""
    try:
        doc = json.loads(text)
        keep = doc["keep_fp32"]
        if doc.get("format") != FORMAT_VERSION or not all(isinstance(i, int) for i in keep):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise UserInputError(f"{source}: not a mobilegen precision plan (format {FORMAT_VERSION})") from None
    return frozenset(keep)


def project_keep_fp32(project: Path, options: dict) -> frozenset[int]:
    """The float tensors a generated fp16 project stores in float32: the keep set its provenance
    records in `options` (what the engine was generated with), else its precision_plan.json's;
    else none. `compare --project` and `verify --report` both read a project's plan through here."""
    kept = options.get("fp32_tensors")
    if kept is not None:
        if not isinstance(kept, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in kept):
            raise UserInputError(f"{project}: fp32_tensors in its provenance should list tensor indices, got {kept!r}")
        return frozenset(kept)
    path = Path(project) / PLAN_FILE
    return keep_set_from_json(path.read_text(), str(path)) if path.is_file() else frozenset()


# --------------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------------
class _Max:
    """max|a - b| and max|b| accumulated over sample chunks; value() = their ratio."""

    def __init__(self):
        self.num = 0.0
        self.den = 0.0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        self.num = max(self.num, _max_diff(a, b))
        self.den = max(self.den, _max_abs(b))

    def value(self) -> float:
        if self.num == 0.0:
            return 0.0
        return self.num / self.den if self.den > 0 else math.inf


def _max_abs(x: np.ndarray) -> float:
    x = np.abs(np.asarray(x, np.float64))
    return float(x.max(initial=0.0)) if not np.isnan(x).any() else math.nan


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b|, where equal values (the same infinity, NaN and NaN) count 0 and any other
    non-finite difference counts infinity."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(a - b)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    d = np.where(same, 0.0, d)
    d[np.isnan(d)] = np.inf
    return float(d.max(initial=0.0))


def _stack(g: Graph, samples: list[list[np.ndarray]]) -> list[np.ndarray]:
    """The graph inputs of `samples` batched as Simulator.run_batch takes them."""
    from mobilegen.sim.runner import Simulator

    out = []
    for j, i in enumerate(g.inputs):
        t = g.tensors[i]
        out.append(np.stack([np.asarray(s[j]) for s in samples]).reshape(Simulator.batch_shape(t.shape, len(samples))))
    return out


def _check_samples(g: Graph, samples: list[list[np.ndarray]]) -> None:
    if not samples:
        raise UserInputError("fp16 planning needs at least one calibration sample")
    for n, s in enumerate(samples):
        if len(s) != len(g.inputs):
            raise UserInputError(f"calibration sample {n} has {len(s)} inputs; the model takes {len(g.inputs)}")
        for x, i in zip(s, g.inputs):
            t = g.tensors[i]
            x = np.asarray(x)
            if tuple(x.shape) != tuple(t.shape) or x.dtype != np.dtype(t.dtype):
                raise UserInputError(f"calibration sample {n}: {x.dtype}{list(x.shape)} for input {t.describe()}; "
                                     f"expected {t.dtype}{list(t.shape)}")


def _has_float_weights(k) -> bool:
    from mobilegen.plan import Conv2D, DepthwiseConv2D, FullyConnected

    return isinstance(k, (Conv2D, DepthwiseConv2D, FullyConnected)) and not k.stage.quantized


def _fmt(v: float) -> str:
    return f"{v:.2g}" if math.isfinite(v) else str(v)


def plan_fp16(g: Graph, samples: list[list[np.ndarray]], tolerance: float = DEFAULT_TOLERANCE,
              headroom: float = DEFAULT_HEADROOM) -> PrecisionPlan:
    """Which float tensors of `g` to keep in float32 at precision fp16, from calibration `samples`
    (each sample: the graph inputs, in order, at the inputs' shapes and dtypes). See the module
    docstring for what is measured."""
    # Overflow to infinity (and the NaN it makes in SOFTMAX) is what is being measured: no warnings.
    with np.errstate(over="ignore", invalid="ignore"):
        return _plan_fp16(g, samples, tolerance, headroom)


def _plan_fp16(g: Graph, samples: list[list[np.ndarray]], tolerance: float, headroom: float) -> PrecisionPlan:
    from mobilegen.export import plan_for_precision
    from mobilegen.plan import ConstantKernel, Reshape, half_storage_plan, storage_groups, stored_float_tensors
    from mobilegen.sim.kernels import run_kernel
    from mobilegen.sim.runner import Simulator

    if not (tolerance > 0 and math.isfinite(tolerance)):
        raise UserInputError(f"fp16 tolerance {tolerance}: expected a positive number")
    if not headroom >= 1:
        raise UserInputError(f"fp16 headroom {headroom}: expected a number >= 1")
    plan32, _ = plan_for_precision(g, "fp32")  # an integer model runs dequantized, as at fp16
    g32 = plan32.graph
    _check_samples(g32, samples)
    plan16 = half_storage_plan(plan32)  # the same kernels with fp16 weights
    tensors = g32.tensors
    writer = {k.output: (pos, k) for pos, k in enumerate(plan32.kernels)}
    readers: dict[int, list[int]] = {}
    for pos, k in enumerate(plan32.kernels):
        for i in set(k.inputs):
            readers.setdefault(i, []).append(pos)
    floats = sorted(stored_float_tensors(plan32))

    max_abs = {i: 0.0 for i in floats}
    own = {i: _Max() for i in floats}
    via = {(i, pos): _Max() for i in floats for pos in readers.get(i, ())}
    sim32 = Simulator(plan32)
    cache: dict = {}
    for start in range(0, len(samples), CHUNK):
        chunk = samples[start : start + CHUNK]
        n = len(chunk)
        values = sim32.run_batch(_stack(g32, chunk))
        for i in floats:
            max_abs[i] = max(max_abs[i], _max_abs(values[i]))
        for i in g32.inputs:
            if i in own:
                own[i].add(round_to_half(values[i]), values[i])
        for pos, (k32, k16) in enumerate(zip(plan32.kernels, plan16.kernels)):
            if isinstance(k32, ConstantKernel):
                continue
            t = tensors[k32.output]
            exact = values[k32.output]
            shape = Simulator.batch_shape(t.shape, n)
            args = [values[i] for i in k32.inputs]
            if k32.output in own:
                stored = run_kernel(k16, args, t.dtype, shape, cache, n) if _has_float_weights(k16) else exact
                own[k32.output].add(round_to_half(stored), exact)
            if isinstance(k32, Reshape) or t.dtype != "float32":
                continue  # a copy (its tensors share storage) / a QUANTIZE: its step is coarser
            for i in set(k32.inputs):
                if (i, pos) in via:
                    rounded = [round_to_half(a) if j == i else a for a, j in zip(args, k32.inputs)]
                    via[(i, pos)].add(run_kernel(k32, rounded, t.dtype, shape, cache, n), exact)
        del values

    def label(pos: int) -> str:
        return f"{g32.ops[plan32.kernels[pos].op].opcode} op {plan32.kernels[pos].op}"

    decisions: dict[int, Decision] = {}
    for i in floats:
        t = tensors[i]
        pos, k = writer.get(i, (None, None))
        worst = max(readers.get(i, ()), key=lambda p: via[(i, p)].value(), default=None)
        d = Decision(
            index=i, name=t.name, op=g32.ops[k.op].opcode if k is not None else "input",
            op_index=k.op if k is not None else None, max_abs=max_abs[i], own_error=own[i].value(),
            reader_error=via[(i, worst)].value() if worst is not None else 0.0,
            reader=label(worst) if worst is not None else None, kept=False,
        )
        reduced = sorted({g32.ops[plan32.kernels[p].op].opcode for p in readers.get(i, ())} & set(SPREADS_INF))
        if not max_abs[i] < FP16_INF_FROM:  # NaN in float32 too counts: nothing to gain from fp16
            d.reasons.append(f"overflow: max |x| {_fmt(max_abs[i])} >= {FP16_INF_FROM:g} becomes inf in fp16"
                             + (f" (read by {', '.join(reduced)}: inf/NaN downstream)" if reduced else ""))
        elif max_abs[i] * headroom > FP16_MAX:
            d.reasons.append(f"near overflow: max |x| {_fmt(max_abs[i])} is within {headroom:g}x of the fp16 maximum {FP16_MAX:g}")
        if k is not None and _has_float_weights(k):
            k16 = plan16.kernels[pos]
            w = max(_max_abs(k.weights), _max_abs(k.bias))
            if not all(np.isfinite(a).all() for a in (k16.weights, k16.bias)):
                d.reasons.append(f"weight overflow: max |w| {_fmt(w)} >= {FP16_INF_FROM:g} becomes inf in fp16")
        if not d.reasons:  # an overflow's errors are its consequence, not another reason
            if d.own_error > tolerance:
                what = "fp16 weights and storage" if k is not None and _has_float_weights(k) else "fp16 storage"
                d.reasons.append(f"error {_fmt(d.own_error)} > tolerance {tolerance:g} ({what})")
            if d.reader_error > tolerance:
                d.reasons.append(f"error {_fmt(d.reader_error)} > tolerance {tolerance:g} in the output of {d.reader} "
                                 "reading it as fp16")
        d.kept = bool(d.reasons)
        decisions[i] = d
    # RESHAPE joins storage: a group is kept as a whole.
    groups = {i: group for group in storage_groups(plan32) for i in group}
    for i, d in decisions.items():
        if not d.kept:
            causes = sorted(j for j in groups.get(i, ()) if j != i and decisions[j].reasons)
            if causes:
                d.kept = True
                d.reasons.append(f"shares storage with tensor {causes[0]} (a RESHAPE chain), which is kept")

    pp = PrecisionPlan(tolerance, headroom, len(samples), [decisions[i] for i in sorted(decisions)], {})
    pp.runs = whole_run_errors(plan32, samples, pp.keep_fp32)
    return pp


def whole_run_errors(plan32, samples: list[list[np.ndarray]], keep_fp32: frozenset[int]) -> dict[str, RunError]:
    """All-fp16 and planned storage against `plan32` (a float32 plan) over whole runs."""
    from mobilegen.plan import half_storage_plan, stored_float_tensors
    from mobilegen.sim.runner import Simulator

    g = plan32.graph
    sims = {"fp16": Simulator(half_storage_plan(plan32)), "planned": Simulator(half_storage_plan(plan32, keep_fp32=keep_fp32))}
    ref = Simulator(plan32)
    floats = sorted(stored_float_tensors(plan32) | {i for i in g.outputs if g.tensors[i].dtype == "float32"})
    acc = {name: {i: _Max() for i in {*floats, *g.outputs}} for name in sims}
    bad = {name: 0 for name in sims}
    agree = {name: 0 for name in sims}
    for start in range(0, len(samples), CHUNK):
        chunk = samples[start : start + CHUNK]
        xs = _stack(g, chunk)
        want = ref.run_batch(xs)
        for name, sim in sims.items():
            got = sim.run_batch(xs)
            for i, m in acc[name].items():
                m.add(got[i], want[i])
            for i in g.outputs:
                bad[name] += int(np.count_nonzero(~np.isfinite(np.asarray(got[i], np.float64))))
            a, b = (np.asarray(v[g.outputs[0]], np.float64).reshape(len(chunk), -1) for v in (got, want))
            agree[name] += int(np.sum(np.argmax(np.nan_to_num(a, nan=-np.inf), 1) == np.argmax(b, 1)))
            del got
        del want
    classifier = g.tensors[g.outputs[0]].size > 1
    runs = {}
    for name in sims:
        worst = max(floats, key=lambda i: acc[name][i].value(), default=None)
        runs[name] = RunError(
            output_error=max(acc[name][i].value() for i in g.outputs), nonfinite=bad[name],
            top1_agreement=agree[name] / len(samples) if classifier else None,
            worst_tensor=worst, worst_tensor_error=acc[name][worst].value() if worst is not None else 0.0)
    return runs


# --------------------------------------------------------------------------------------------------
# Calibration inputs
# --------------------------------------------------------------------------------------------------
def calibration_inputs(g: Graph, data, *, mean: float, std: float,
                       limit: int = DEFAULT_SAMPLES) -> list[list[np.ndarray]]:
    """Calibration samples for `g` from DATA: "builtin" or an image folder (one subfolder per
    class, or an already scanned mobilegen.data.ImageFolder; `limit` images spread evenly over it,
    decoded and normalized with (pixel - mean) / std as the SDK does:
    mobilegen.inputs.image_to_input), or a directory of .npy arrays (each one the model input, with
    or without its batch 1, or [n][...] for n samples; all of them are used)."""
    from mobilegen.data.folder import BUILTIN_NAME, resolve_data
    from mobilegen.dump import load_npy
    from mobilegen.inputs import load_input

    t = g.tensors[g.inputs[0]]
    if len(g.inputs) != 1:
        raise UserInputError(f"--calibration feeds one input; the model takes {len(g.inputs)}")
    if hasattr(data, "samples"):  # an ImageFolder
        return _images(data, t, mean, std, limit)
    path = Path(data)
    npys = sorted(path.glob("*.npy")) if str(data) != BUILTIN_NAME and path.is_dir() else []
    if npys:
        samples = []
        for p in npys:
            x = load_npy(p)
            if t.shape[:1] == (1,) and x.ndim == len(t.shape) and tuple(x.shape[1:]) == tuple(t.shape[1:]) and len(x) > 1:
                if x.dtype != np.dtype(t.dtype):
                    raise UserInputError(f"{p}: array is {x.dtype}{list(x.shape)}; the model's input {t.describe()} expects {t.dtype}")
                samples += [[x[j : j + 1]] for j in range(len(x))]
            else:
                samples.append([load_input(p, t)])
        return samples
    if str(data) != BUILTIN_NAME and path.is_dir() and any(p.is_file() and p.suffix.lower() == ".npy" for p in path.rglob("*.npy")):
        raise UserInputError(f"{path}: .npy calibration arrays must sit directly in the folder")
    return _images(resolve_data(str(data) if str(data) == BUILTIN_NAME else path), t, mean, std, limit)


def _images(folder, t, mean: float, std: float, limit: int) -> list[list[np.ndarray]]:
    """`limit` images of an ImageFolder, spread evenly over it (its samples are sorted by class, so
    every class is represented), as input `t` takes them."""
    from mobilegen.inputs import image_to_input

    if limit < 1:
        raise UserInputError(f"calibration samples {limit}: expected at least 1")
    pick = np.unique(np.linspace(0, len(folder.samples) - 1, min(limit, len(folder.samples))).round().astype(int))
    return [[image_to_input(folder.samples[i].path, t, mean, std)] for i in pick]


def plan_model_fp16(model: Path, data, *, tolerance: float = DEFAULT_TOLERANCE, mean: float | None = None,
                    std: float | None = None, limit: int = DEFAULT_SAMPLES) -> PrecisionPlan:
    """plan_fp16 for a .tflite file and calibration DATA (see calibration_inputs: "builtin", an image
    folder or a scanned ImageFolder, a directory of .npy arrays), images
    normalized as the generated SDK does: --mean/--std when given, else the model's metadata, else
    DEFAULT_MEAN/DEFAULT_STD. What `generate` and `build` call at --precision fp16 --calibration."""
    from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD
    from mobilegen.tflite.metadata import image_normalization, read_metadata
    from mobilegen.tflite.reader import read_model

    model = Path(model)
    data_bytes = model.read_bytes()
    g = read_model(data_bytes, source=model.name)
    t = g.tensors[g.inputs[0]]
    channels = t.shape[-1] if len(t.shape) == 4 else 1
    mean, std = image_normalization(read_metadata(data_bytes, source=model.name), channels, mean=mean, std=std,
                                    default_mean=DEFAULT_MEAN, default_std=DEFAULT_STD, source=model.name)
    return plan_fp16(g, calibration_inputs(g, data, mean=mean, std=std, limit=limit), tolerance)


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------
def _run_line(name: str, r: RunError) -> str:
    s = f"{name}: output error {_fmt(r.output_error)}"
    if r.nonfinite:
        s += f", {r.nonfinite} non-finite values"
    if r.top1_agreement is not None:
        s += f", top-1 agrees on {r.top1_agreement:.0%}"
    if r.worst_tensor is not None:
        s += f"; worst tensor {r.worst_tensor}: {_fmt(r.worst_tensor_error)}"
    return s


def format_plan(pp: PrecisionPlan, verbose: bool = False) -> str:
    """The plan for people: the kept tensors and why, then the whole-run errors (verbose: every
    float tensor with its max |x| and local errors)."""
    kept = pp.kept
    lines = [f"fp16 precision plan: {len(kept)} of {len(pp.decisions)} float tensors kept in fp32 "
             f"(tolerance {pp.tolerance:g}, {pp.samples} calibration sample{'s' if pp.samples != 1 else ''})"]
    for d in kept:
        where = d.op if d.op_index is None else f"{d.op} op {d.op_index}"
        lines.append(f"  keep fp32  tensor {d.index} {d.name!r} ({where}): {d.reason}")
    if not kept:
        lines.append("  every float tensor is stored as fp16")
    if verbose:
        lines.append("  tensor  op                      max|x|   own err  reader err  storage")
        for d in pp.decisions:
            lines.append(f"  {d.index:>6}  {(d.op + ('' if d.op_index is None else f' {d.op_index}'))[:22]:<22}  "
                         f"{_fmt(d.max_abs):>8}  {_fmt(d.own_error):>8}  {_fmt(d.reader_error):>10}  {'fp32' if d.kept else 'fp16'}")
    for name, title in (("fp16", "all fp16"), ("planned", "planned")):
        if name in pp.runs:
            lines.append(f"  whole run vs fp32, {_run_line(title, pp.runs[name])}")
    return "\n".join(lines)
