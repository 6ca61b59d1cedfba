"""The float32 noise floor: how far correct float32 evaluations of one MobileNet differ per tensor.

    .venv/bin/python benchmarks/float_noise.py            # the default sweep, writes FLOAT_NOISE.md
    .venv/bin/python benchmarks/float_noise.py --families v1 --alphas 1.0 --resolutions 224 --seeds 0

For float32 Keras MobileNet V1 and V2 (tests/models.py's builders, BatchNorm statistics from
data, converted once and cached in tests/.model_cache/ like the tests' models) at several widths,
resolutions, model seeds and inputs, every float tensor an operator writes is compared as
``rel = max|a - b| / max|b|`` (the measure of tests/harness.py and ``mobilegen compare``) for

- ``sim`` vs ``ref``: mobilegen's simulator against LiteRT's reference kernels (BUILTIN_REF), the
  pair the simulator's float contract bounds;
- ``opt`` vs ``ref``: LiteRT's own optimized kernels (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``:
  the default resolver's kernels without the XNNPACK delegate, so every intermediate tensor is
  real and readable) against its reference kernels: what two correct float32 implementations
  differ by;
- ``sim``, ``ref`` and ``opt`` vs ``f64``: the simulator's plan run in float64 end to end (same
  kernels, same float32 weights, every activation kept in float64 instead of being rounded to
  float32 after each op): the distance of each float32 evaluation from the exact result;
- ``xnn`` vs ``ref``: the default resolver (XNNPACK delegate) on the graph output only (its
  intermediate tensors are not meaningful).

Families ``v1b0`` / ``v2b0`` are the same MobileNets with BatchNorm beta centred at 0 instead of +1
(``build_mobilenet_beta0``): networks that amplify rounding far more than the tests' models.

With ``--engine`` the generated C++ engine (tests/test_engine_cpu.py's cached host builds) is run
on its CPU fallback and on GLES (Mesa llvmpipe) for each family at width 1.0 / 224 (first model
seed), and compared with the simulator (and BUILTIN_REF) per tensor: the engines' contract.

Inputs: ``uniform`` is harness.random_input (uniform [-1, 1], the tests' input), ``image`` is
mobilegen.convert.keras_models.calibration_images (smooth, image-like, in [-1, 1]) at seeds that
the BatchNorm calibration does not use. BLAS and TensorFlow run on one thread; LiteRT with
num_threads=1.
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
           "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.metadata  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
RESULTS = HERE / "FLOAT_NOISE.md"

DEFAULT_CASES = [
    # family, alpha, resolution
    ("v1", 0.25, 224), ("v1", 0.5, 224), ("v1", 0.75, 224), ("v1", 1.0, 224),
    ("v1", 1.0, 128), ("v1", 0.5, 160),
    ("v2", 0.35, 224), ("v2", 0.5, 224), ("v2", 0.75, 224), ("v2", 1.0, 224),
    ("v2", 1.0, 128),
    ("v1b0", 1.0, 224), ("v2b0", 1.0, 224),
]
CLASSES = 1000
IMAGE_SEED = 4242  # calibration_images seed for the image-like inputs (BN calibration uses the model seed)


# --- models and inputs -------------------------------------------------------------------------

def build_mobilenet_beta0(family: str = "v1", alpha: float = 1.0, resolution: int = 224, classes: int = CLASSES,
                          seed: int = 0):
    """keras_models' MobileNet with BatchNorm beta centred at 0 instead of +1 (statistics still from
    data): about half the ReLU units sit at their kink, the network is far more chaotic (see
    keras_models._calibrate_batchnorm) and amplifies rounding more: a harder case than the tests'."""
    import keras

    from mobilegen.convert import keras_models

    build = keras_models.build_mobilenet_v1 if family == "v1" else keras_models.build_mobilenet_v2
    model = build(alpha=alpha, resolution=resolution, classes=classes, seed=seed)
    rng = np.random.default_rng(seed + 1000)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for bn in bns:
        bn.beta.assign(rng.normal(0.0, 0.1, bn.beta.shape[0]).astype(np.float32))
    images = keras_models.calibration_images(16, resolution, resolution, seed=seed)
    for bn in bns:
        x = np.asarray(keras.Model(model.input, bn.input)(images, training=False), dtype=np.float64)
        bn.moving_mean.assign(x.mean(axis=(0, 1, 2)).astype(np.float32))
        bn.moving_variance.assign(x.var(axis=(0, 1, 2)).astype(np.float32))
    return model


def model_bytes(family: str, alpha: float, resolution: int, seed: int) -> bytes:
    """The float32 .tflite, cached as tests/test_mobilenet.py's models are (same builders, same key).
    Family "v1" / "v2": keras_models' builders; "v1b0" / "v2b0": build_mobilenet_beta0."""
    from mobilegen.convert import keras_models
    from tests.models import tflite_model

    kwargs = dict(alpha=alpha, resolution=resolution, classes=CLASSES, seed=seed)
    if family.endswith("b0"):
        return tflite_model(f"mobilenet_{family}", build_mobilenet_beta0, dict(family=family[:2], **kwargs), "float32")
    builder = keras_models.build_mobilenet_v1 if family == "v1" else keras_models.build_mobilenet_v2
    return tflite_model(f"mobilenet_{family}", builder, kwargs, "float32")


def make_input(kind: str, index: int, resolution: int) -> np.ndarray:
    if kind == "uniform":
        rng = np.random.default_rng(index)  # = tests.harness.random_input(t, index)
        return rng.uniform(-1.0, 1.0, (1, resolution, resolution, 3)).astype(np.float32)
    from mobilegen.convert.keras_models import calibration_images

    return calibration_images(1, resolution, resolution, seed=IMAGE_SEED + index)


# --- the evaluations -----------------------------------------------------------------------------

def run_litert(model: bytes, x: np.ndarray, resolver: str) -> dict[int, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = {"ref": OpResolverType.BUILTIN_REF, "opt": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            "xnn": OpResolverType.AUTO}[resolver]
    interp = Interpreter(model_content=bytes(model), experimental_op_resolver_type=kind,
                         experimental_preserve_all_tensors=True, num_threads=1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    if resolver == "xnn":
        written = [int(d["index"]) for d in interp.get_output_details()]
    else:
        written = sorted({int(t) for op in interp._get_ops_details() for t in op["outputs"] if t >= 0})
    return {t: np.array(interp.get_tensor(t), copy=True) for t in written}


def run_float64(plan, x: np.ndarray) -> dict[int, np.ndarray]:
    """The simulator's kernels on the plan with every float activation kept in float64.

    mobilegen.sim.kernels already accumulates convolutions, depthwise, FC, MEAN and softmax in
    float64; it rounds to float32 in its float output stage and in ADD. Those two are replaced here
    for the duration of the run; every other kernel of a float MobileNet (activations, PAD,
    RESHAPE, CONCATENATION) works in its input's dtype. Kernels outside that set are refused
    rather than silently evaluated in float32."""
    from mobilegen import plan as P
    from mobilegen.sim import kernels as K

    allowed = (P.Conv2D, P.DepthwiseConv2D, P.FullyConnected, P.Mean, P.Add, P.Pad, P.Concat, P.Softmax,
               P.Reshape, P.Activation)
    orig_output, orig_add = K._output, K.add

    def output64(acc, stage, dtype):
        if stage.quantized or dtype != "float64":
            return orig_output(acc, stage, dtype)
        return np.clip(acc.astype(np.float64), stage.lo, stage.hi)

    def add64(k, a, b, dtype):
        if k.q is not None or dtype != "float64":
            return orig_add(k, a, b, dtype)
        return np.clip(a.astype(np.float64) + b.astype(np.float64), k.lo, k.hi)

    g = plan.graph
    values = {g.inputs[0]: x.astype(np.float64)}
    cache: dict = {}
    K._output, K.add = output64, add64
    try:
        for k in plan.kernels:
            if not isinstance(k, allowed):
                raise NotImplementedError(f"float64 evaluation of {k.name} is not implemented")
            t = g.tensors[k.output]
            dtype = "float64" if t.dtype == "float32" else t.dtype
            values[k.output] = K.run_kernel(k, [values[i] for i in k.inputs], dtype, t.shape, cache)
            assert values[k.output].dtype == np.dtype(dtype), k
    finally:
        K._output, K.add = orig_output, orig_add
    return values


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max|b| (tests/harness.tensor_mismatches, mobilegen compare)."""
    den = float(np.abs(b.astype(np.float64)).max(initial=0.0))
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max(initial=0.0)) / max(den, 1e-30)


def tensor_label(g, producers, i: int) -> str:
    op = producers[i]
    act = op.options.get("activation", "NONE")
    return f"{i} {op.opcode}" + (f"+{act}" if act not in ("NONE", None) else "")


def measure_case(model: bytes, x: np.ndarray) -> dict:
    from mobilegen.plan import build_plan
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model

    g = read_model(model)
    plan = build_plan(g)
    ev = {"sim": Simulator(plan).run([x]), "ref": run_litert(model, x, "ref"), "opt": run_litert(model, x, "opt"),
          "f64": run_float64(plan, x)}
    xnn = run_litert(model, x, "xnn")
    producers = g.producers()
    tensors = [i for i in g.written_tensors() if g.tensors[i].dtype == "float32"]
    pairs = (("sim", "ref"), ("opt", "ref"), ("sim", "f64"), ("ref", "f64"), ("opt", "f64"))
    per = {i: {f"{a}-{b}": rel(ev[a][i], ev[b][i]) for a, b in pairs} for i in tensors}
    out = g.outputs[0]
    worst = {key: max(tensors, key=lambda i: per[i][key]) for key in per[tensors[0]]}
    return {
        "per_tensor": per,
        "labels": {i: tensor_label(g, producers, i) for i in tensors},
        "worst": worst,
        "max": {key: per[worst[key]][key] for key in worst},
        "xnn-ref_output": rel(xnn[out], ev["ref"][out]),
        "output": out,
        "tensors": len(tensors),
    }


def measure_engines(family: str, alpha: float, resolution: int, seed: int, inputs, work: Path) -> list[dict]:
    """The generated engine (CPU fallback and GLES on llvmpipe) against the simulator per tensor."""
    from mobilegen.dump import read_dump
    from mobilegen.sim.runner import Simulator
    from tests.test_engine_cpu import build_engine

    model = model_bytes(family, alpha, resolution, seed)
    engine = build_engine(model)
    sim = Simulator(engine.plan)
    g = engine.graph
    rows = []
    for kind, index in inputs:
        x = make_input(kind, index, resolution)
        want = sim.run([x])
        ref = run_litert(model, x, "ref")
        for backend in ("cpu", "gpu"):
            d = work / f"{family}-{alpha}-{resolution}-{seed}-{kind}{index}-{backend}"
            r = engine.run(x, d, backend=backend)
            if r.returncode != 0:
                rows.append({"backend": backend, "input": f"{kind} {index}", "error": r.stderr.strip()[-200:]})
                continue
            _, got = read_dump(d / "dump")
            floats = [i for i in got if g.tensors[i].dtype == "float32"]
            per = {i: rel(got[i], want[i]) for i in floats}
            per_ref = {i: rel(got[i], ref[i]) for i in floats}
            w, wr = max(per, key=per.get), max(per_ref, key=per_ref.get)
            rows.append({"backend": backend, "input": f"{kind} {index}", "worst": w, "max": per[w],
                         "label": tensor_label(g, g.producers(), w), "tensors": len(per),
                         "max_ref": per_ref[wr], "label_ref": tensor_label(g, g.producers(), wr),
                         "identical_to_ref": all(np.array_equal(got[i], ref[i]) for i in floats)})
    return rows


# --- report --------------------------------------------------------------------------------------

def machine() -> str:
    from run import machine as run_machine  # benchmarks/run.py, beside this script

    m = run_machine()
    return (f"{m['cpu']}, {m['cores']} cores (shared); Linux {platform.release()}; Python {m['python']}; "
            f"numpy {m['numpy']}; TensorFlow {importlib.metadata.version('tensorflow')}; "
            f"ai-edge-litert {m['litert']}")


def source_revision() -> str:
    """The commit the measured code comes from, and whether mobilegen/ or templates/ differ from it."""
    import subprocess

    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "mobilegen", "templates"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"commit {rev}" + (" with uncommitted changes in mobilegen/ or templates/" if dirty else "")


def fmt(v: float) -> str:
    return f"{v:.2e}"


def write_report(rows: list[dict], engine_rows: list[dict], command: str, seconds: float, path: Path) -> str:
    keys = ("sim-ref", "opt-ref", "sim-f64", "ref-f64", "opt-f64")
    worst = {k: max(rows, key=lambda r: r["max"][k]) for k in keys}
    lines = [
        "# Float32 noise floor",
        "",
        f"Written by `benchmarks/float_noise.py`. Date: {datetime.date.today().isoformat()}. "
        f"Run time {seconds / 60:.1f} min (model conversions included unless cached).",
        "",
        f"Machine: {machine()}. BLAS, TensorFlow and LiteRT on one thread. Code: {source_revision()}.",
        "",
        "Command:",
        "",
        "```",
        command,
        "```",
        "",
        "Per float tensor an operator writes, `rel = max|a - b| / max|b|`; each row gives the worst "
        "tensor over the model for each pair. `sim` = mobilegen's simulator, `ref` = LiteRT "
        "BUILTIN_REF, `opt` = LiteRT's optimized kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES, every "
        "tensor readable), `f64` = the simulator's plan evaluated in float64 end to end, `xnn` = the "
        "default resolver (XNNPACK), graph output only. Inputs: `uniform i` = uniform [-1, 1] from "
        f"`default_rng(i)` (tests.harness.random_input), `image i` = `calibration_images(1, r, r, seed={IMAGE_SEED}+i)`.",
        "",
        "## Summary",
        "",
        "| pair | worst rel over all rows | where |",
        "|---|---|---|",
    ]
    for k in keys:
        r = worst[k]
        lines.append(f"| {k.replace('-', ' vs ')} | {fmt(r['max'][k])} | {r['model']} seed {r['seed']} {r['input']}, "
                     f"tensor {r['labels'][r['worst'][k]]} |")
    xw = max(rows, key=lambda r: r["xnn-ref_output"])
    lines.append(f"| xnn vs ref (output only) | {fmt(xw['xnn-ref_output'])} | {xw['model']} seed {xw['seed']} {xw['input']} |")
    lines += ["", "Worst per model (over its seeds and inputs):", "", "| model | sim vs ref | opt vs ref | sim vs f64 | ref vs f64 |",
              "|---|---|---|---|---|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        sub = [r for r in rows if r["model"] == model]
        lines.append(f"| {model} | " + " | ".join(fmt(max(r["max"][k] for r in sub)) for k in keys if k != "opt-f64") + " |")
    lines += [
        "",
        "## Every run",
        "",
        "| model | seed | input | worst tensor (sim vs ref) | sim vs ref | opt vs ref (same tensor) | opt vs ref (worst tensor) "
        "| sim vs f64 | ref vs f64 | opt vs f64 | xnn vs ref (output) | sim vs ref (output) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w = r["worst"]["sim-ref"]
        per, out = r["per_tensor"], r["output"]
        lines.append(
            f"| {r['model']} | {r['seed']} | {r['input']} | {r['labels'][w]} | {fmt(r['max']['sim-ref'])} | "
            f"{fmt(per[w]['opt-ref'])} | {fmt(r['max']['opt-ref'])} ({r['labels'][r['worst']['opt-ref']]}) | "
            f"{fmt(r['max']['sim-f64'])} | {fmt(r['max']['ref-f64'])} | {fmt(r['max']['opt-f64'])} | "
            f"{fmt(r['xnn-ref_output'])} | {fmt(per[out]['sim-ref'])} |")
    if engine_rows:
        lines += ["", "## Generated engine vs simulator", "",
                  "The generated C++ engine (host build, `mobilegen_run --dump-dir`), CPU fallback and GLES on Mesa "
                  "llvmpipe, against the simulator on every float tensor.", "",
                  "| model | seed | backend | input | worst tensor (vs sim) | engine vs sim | engine vs ref | "
                  "every float tensor bit-identical to ref |", "|---|---|---|---|---|---|---|---|"]
        for r in engine_rows:
            if "error" in r:
                lines.append(f"| {r['model']} | {r['seed']} | {r['backend']} | {r['input']} | failed: {r['error']} | | | |")
            else:
                lines.append(f"| {r['model']} | {r['seed']} | {r['backend']} | {r['input']} | {r['label']} | {fmt(r['max'])} "
                             f"| {fmt(r['max_ref'])} ({r['label_ref']}) | {'yes' if r['identical_to_ref'] else 'no'} |")
    else:
        lines += ["", "Engines not measured in this run (`--engine`)."]
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def parse_cases(args) -> list[tuple[str, float, int]]:
    if args.alphas is None and args.resolutions is None:
        return [c for c in DEFAULT_CASES if c[0] in args.families]
    alphas = args.alphas or [1.0]
    return [(f, a, r) for f in args.families for a in alphas for r in (args.resolutions or [224])]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", type=lambda s: s.split(","), default=["v1", "v2", "v1b0", "v2b0"],
                    help="v1, v2 (the tests' models), v1b0, v2b0 (BatchNorm beta centred at 0: more chaotic)")
    ap.add_argument("--alphas", type=lambda s: [float(v) for v in s.split(",")], default=None,
                    help="widths (default: the built-in sweep of widths and resolutions)")
    ap.add_argument("--resolutions", type=lambda s: [int(v) for v in s.split(",")], default=None)
    ap.add_argument("--seeds", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1], help="model seeds")
    ap.add_argument("--inputs", type=lambda s: [(p.rstrip("0123456789"), int(p[len(p.rstrip("0123456789")):]))
                                                for p in s.split(",")],
                    default=[("uniform", 0), ("uniform", 1), ("image", 0)],
                    help="comma-separated uniformN / imageN (default uniform0,uniform1,image0)")
    ap.add_argument("--engine", action="store_true", help="also run the generated engine (CPU, GLES) at 1.0/224")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    t0 = time.perf_counter()
    rows = []
    for family, alpha, res in parse_cases(args):
        for seed in args.seeds:
            model = model_bytes(family, alpha, res, seed)
            for kind, index in args.inputs:
                m = measure_case(model, make_input(kind, index, res))
                m.update(model=f"{family.upper()} {alpha}/{res}", seed=seed, input=f"{kind} {index}")
                rows.append(m)
                print(f"{m['model']} seed {seed} {m['input']}: sim-ref {m['max']['sim-ref']:.2e} "
                      f"opt-ref {m['max']['opt-ref']:.2e} sim-f64 {m['max']['sim-f64']:.2e} "
                      f"ref-f64 {m['max']['ref-f64']:.2e} ({time.perf_counter() - t0:.0f} s)", flush=True)
    engine_rows = []
    if args.engine:
        with tempfile.TemporaryDirectory() as tmp:
            for family in args.families:
                for r in measure_engines(family, 1.0, 224, args.seeds[0], args.inputs, Path(tmp)):
                    r.update(model=f"{family.upper()} 1.0/224", seed=args.seeds[0])
                    engine_rows.append(r)
                    print(r, flush=True)
    command = ".venv/bin/python benchmarks/float_noise.py" + "".join(" " + shlex.quote(a) for a in (argv or sys.argv[1:]))
    print(write_report(rows, engine_rows, command, time.perf_counter() - t0, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
