"""Simulator vs LiteRT BUILTIN_REF on MobileNet V1 (int8 and float32), written to RESULTS.md.

    .venv/bin/python benchmarks/run.py [--alpha 1.0] [--resolution 224] [--repeats 10]

Every measurement runs in a fresh subprocess (``--measure``) so that its peak RSS is its own;
the parent converts the models (cached under benchmarks/.cache/), checks bit-exactness and
writes the report. See benchmarks/README.md for what is measured.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mobilegen.compare import FLOAT_RTOL  # the float contract (benchmarks/FLOAT_NOISE.md)

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RESULTS = HERE / "RESULTS.md"
MODES = ("int8", "float32")
ENGINES = ("ref", "xnnpack", "sim", "sim-1thread")
TARGET = 1.0  # simulator time / BUILTIN_REF time


# --- models and input ------------------------------------------------------------------------

def _source_digest() -> str:
    """Digest of the code that determines a converted model: edits there invalidate the cache."""
    from mobilegen.convert import keras_models, quantize

    h = hashlib.sha256()
    for mod in (keras_models, quantize):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()


def model_path(alpha: float, resolution: int, mode: str, seed: int = 0) -> Path:
    """The cached .tflite for these parameters, converting it first if missing."""
    params = {"alpha": alpha, "resolution": resolution, "classes": 1000, "seed": seed, "mode": mode}
    key = json.dumps([params, importlib.metadata.version("tensorflow"), _source_digest()],
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = CACHE / f"mobilenet_v1-a{alpha}-r{resolution}-{mode}-{digest}.tflite"
    if path.exists():
        return path
    from mobilegen.convert.keras_models import build_mobilenet_v1
    from mobilegen.convert.quantize import convert

    print(f"converting MobileNet V1 alpha {alpha} / {resolution} to {mode} (cached afterwards) ...",
          flush=True)
    buf = convert(build_mobilenet_v1(alpha, resolution, 1000, seed), mode)
    CACHE.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=CACHE, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(buf)
    os.replace(tmp, path)
    return path


def input_path(resolution: int) -> Path:
    """One image-like float32 input [1, r, r, 3] in [-1, 1] (both modes take float input)."""
    path = CACHE / f"input-r{resolution}.npy"
    if not path.exists():
        from mobilegen.convert.keras_models import calibration_images

        CACHE.mkdir(exist_ok=True)
        np.save(path, calibration_images(1, resolution, resolution, seed=1234))
    return path


# --- one measurement (child process) ---------------------------------------------------------

def _vm(field: str) -> float:
    """A /proc/self/status memory field (VmRSS, VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise KeyError(field)


def _rss_baseline() -> float:
    """Reset this process's peak RSS to its current RSS and return it (MiB).

    getrusage's ru_maxrss is no use here: Linux carries it across fork + exec, so a child would
    report the parent's peak. VmHWM belongs to the process's own address space, and writing 5 to
    /proc/self/clear_refs resets it to the current RSS.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # then VmHWM also counts imports; still the peak of this fresh process
    return _vm("VmRSS")


def _rss_peak_since(base: float) -> float:
    return _vm("VmHWM") - base


def measure(engine: str, model: Path, x_path: Path, repeats: int) -> dict:
    """Seconds per run (min over `repeats` after one warm-up) and peak RSS growth."""
    buf = model.read_bytes()
    x = np.load(x_path)
    out: dict = {"engine": engine}
    if engine in ("ref", "xnnpack"):
        from mobilegen.verify.reference import time_reference

        base = _rss_baseline()
        out["seconds"] = time_reference(buf, x, resolver=engine, repeats=repeats)
    elif engine in ("sim", "sim-1thread"):
        from mobilegen.plan import build_plan
        from mobilegen.sim.runner import Simulator
        from mobilegen.tflite.reader import read_model

        limits = None
        try:
            import threadpoolctl

            if engine == "sim-1thread":
                limits = threadpoolctl.threadpool_limits(1)
            out["blas_threads"] = [i["num_threads"] for i in threadpoolctl.threadpool_info()]
        except ImportError:  # child() also sets the *_NUM_THREADS variables for sim-1thread
            pass
        base = _rss_baseline()
        t0 = time.perf_counter()
        sim = Simulator(build_plan(read_model(buf)))
        out["plan_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        sim.run([x])  # warm-up; also prepares per-kernel operands (GEMM weight matrices)
        out["first_run_seconds"] = time.perf_counter() - t0
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            sim.run([x])
            best = min(best, time.perf_counter() - t0)
        out["seconds"] = best
        if limits is not None:
            limits.restore_original_limits()
    else:
        raise ValueError(engine)
    out["peak_rss_mib"] = _rss_peak_since(base)
    return out


def measure_tracemalloc(model: Path, x_path: Path) -> float:
    """Peak MiB of Python/numpy allocations during one (warm) simulator run, kept tensors included."""
    import tracemalloc

    from mobilegen.plan import build_plan
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model

    sim = Simulator(build_plan(read_model(model.read_bytes())))
    x = np.load(x_path)
    sim.run([x])
    tracemalloc.start()
    sim.run([x])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def child(engine: str, model: Path, x_path: Path, repeats: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", engine, "--model", str(model),
           "--input", str(x_path), "--repeats", str(repeats)]
    env = dict(os.environ)
    if engine == "sim-1thread":  # belt and braces with threadpoolctl in the child
        env.update({v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# --- bit-exactness ---------------------------------------------------------------------------

def exactness(model: Path, x_path: Path) -> dict:
    """Compare every operator-written tensor of the simulator with BUILTIN_REF."""
    from mobilegen.plan import build_plan
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model
    from mobilegen.verify.reference import run_reference

    buf = model.read_bytes()
    x = np.load(x_path)
    g = read_model(buf)
    ours = Simulator(build_plan(g)).run([x])
    ref = run_reference(buf, x)
    tensors = sorted({i for op in g.ops for i in op.outputs})
    identical, int_mismatch, worst_rel = 0, [], 0.0
    for i in tensors:
        a, b = ours[i], ref[i]
        if a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b):
            identical += 1
            continue
        if a.dtype.kind in "iu" or a.shape != b.shape or a.dtype != b.dtype:
            int_mismatch.append(g.tensors[i].describe())
        else:
            den = max(float(np.abs(b.astype(np.float64)).max(initial=0.0)), 1e-30)
            worst_rel = max(worst_rel, float(np.abs(a.astype(np.float64) - b).max()) / den)
    return {"tensors": len(tensors), "identical": identical, "int_mismatch": int_mismatch,
            "float_max_rel": worst_rel, "bit_exact": identical == len(tensors)}


# --- report ----------------------------------------------------------------------------------

def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "numpy.show_config() (threadpoolctl not installed)"
    try:
        import threadpoolctl

        blas = "; ".join(
            f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, {i['num_threads']} threads)"
            for i in threadpoolctl.threadpool_info())
    except ImportError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas,
            "litert": importlib.metadata.version("ai-edge-litert")}


def write_results(args, m: dict, rows: list[dict], exact: dict, command: str) -> str:
    ms = lambda s: f"{s * 1e3:.1f}"  # noqa: E731
    lines = [
        "# Simulator benchmark",
        "",
        f"Written by `benchmarks/run.py` (see README.md there). Date: {datetime.date.today()}.",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, numpy {m['numpy']}, "
        f"BLAS: {m['blas']}; ai-edge-litert {m['litert']}.",
        "",
        f"Load average (1 min) before / after: {m['load_before']:.1f} / {m['load_after']:.1f} "
        "(other work on the machine inflates every figure; rerun on a quiet machine).",
        "",
        f"Model: Keras MobileNet V1 alpha {args.alpha} / {args.resolution}, 1000 classes, seed 0, "
        "one image-like float32 input (`calibration_images(1, r, r, seed=1234)`; both modes take "
        f"float input). Times: best of {args.rounds} fresh processes per engine (rounds "
        f"interleaved), each the minimum over {args.repeats} runs after one warm-up. LiteRT runs "
        "single-threaded (`num_threads=1`). The simulator runs "
        "`Simulator(build_plan(read_model(buf))).run([x])`, timed with numpy's BLAS at its default "
        "thread count and limited to one thread (threadpoolctl); plan building "
        "(`build_plan(read_model(buf))`) is excluded and reported separately (1-thread process). "
        "Peak RSS: in a fresh process per measurement, peak resident set (VmHWM, reset through "
        "/proc/self/clear_refs after imports and reading the model) minus the RSS at that point: "
        "interpreter or plan, prepared weights, arena or activations, temporaries. *sim numpy "
        "peak*: tracemalloc's peak of Python/numpy allocations during one warm simulator run "
        "(every tensor is kept, as `Simulator.run` returns them all).",
        "",
        "| model | mode | BUILTIN_REF ms | XNNPACK ms | sim ms (BLAS default) | sim ms (1 thread) "
        "| sim / ref (1 thread) | plan build ms | peak RSS MiB ref / xnnpack / sim / sim 1t "
        "| sim numpy peak MiB | target ≤ 1.0× met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r["sim-1thread"]["seconds"] / r["ref"]["seconds"]
        ratio_mt = r["sim"]["seconds"] / r["ref"]["seconds"]
        rss = " / ".join(f"{r[e]['peak_rss_mib']:.0f}" for e in ("ref", "xnnpack", "sim", "sim-1thread"))
        lines.append(
            f"| MobileNet V1 {args.alpha}/{args.resolution} | {r['mode']} | {ms(r['ref']['seconds'])} "
            f"| {ms(r['xnnpack']['seconds'])} | {ms(r['sim']['seconds'])} "
            f"| {ms(r['sim-1thread']['seconds'])} | {ratio:.2f} (default BLAS: {ratio_mt:.2f}) "
            f"| {ms(r['sim-1thread']['plan_seconds'])} | {rss} | {r['tracemalloc_mib']:.0f} "
            f"| {'yes' if ratio <= TARGET else 'no'} |")
    lines += [
        "",
        f"Target met means sim (1 thread) / BUILTIN_REF ≤ {TARGET}.",
        "",
        f"Bit-exact (int8, every operator-written tensor vs BUILTIN_REF): "
        f"**{'yes' if exact['int8']['bit_exact'] else 'no'}** "
        f"({exact['int8']['identical']}/{exact['int8']['tensors']} tensors identical"
        + (f"; integer mismatches: {', '.join(exact['int8']['int_mismatch'])}"
           if exact['int8']['int_mismatch'] else "")
        + (f"; float tensors max relative error {exact['int8']['float_max_rel']:.3g}"
           if exact['int8']['float_max_rel'] else "") + ").",
        "",
        f"float32 vs BUILTIN_REF: {exact['float32']['identical']}/{exact['float32']['tensors']} "
        f"tensors identical, max relative error {exact['float32']['float_max_rel']:.3g} "
        f"(contract: ≤ {FLOAT_RTOL}).",
        "",
    ]
    text = "\n".join(lines)
    RESULTS.write_text(text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per process (min taken)")
    ap.add_argument("--rounds", type=int, default=3, help="fresh processes per engine (best taken)")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # child mode
    ap.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.measure:
        if args.measure == "tracemalloc":
            print(json.dumps({"tracemalloc_mib": measure_tracemalloc(args.model, args.input)}))
        else:
            print(json.dumps(measure(args.measure, args.model, args.input, args.repeats)))
        return 0

    command = "make bench" if not argv and len(sys.argv) == 1 else " ".join(
        [".venv/bin/python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
    m = machine()
    m["load_before"] = os.getloadavg()[0]
    print(f"{m['cpu']}, {m['cores']} cores, numpy {m['numpy']}, BLAS {m['blas']}", flush=True)
    x_path = input_path(args.resolution)
    rows, exact = [], {}
    for mode in args.modes:
        model = model_path(args.alpha, args.resolution, mode)
        row = {"mode": mode}
        # Rounds interleave the engines so that a burst of load from elsewhere on the machine
        # does not land on one engine only; each figure is the best round.
        for rnd in range(args.rounds):
            for engine in ENGINES:
                r = child(engine, model, x_path, args.repeats)
                extra = f", plan {r['plan_seconds'] * 1e3:.0f} ms" if "plan_seconds" in r else ""
                print(f"{mode:8s} round {rnd + 1} {engine:12s} {r['seconds'] * 1e3:8.1f} ms, "
                      f"peak RSS +{r['peak_rss_mib']:.0f} MiB{extra}", flush=True)
                best = row.get(engine)
                if best is None or r["seconds"] < best["seconds"]:
                    row[engine] = r
        row["tracemalloc_mib"] = child("tracemalloc", model, x_path, 1)["tracemalloc_mib"]
        rows.append(row)
        exact[mode] = exactness(model, x_path)
        print(f"{mode:8s} vs BUILTIN_REF: {exact[mode]['identical']}/{exact[mode]['tensors']} tensors "
              f"identical, bit-exact: {'yes' if exact[mode]['bit_exact'] else 'no'}"
              f", float max rel err {exact[mode]['float_max_rel']:.3g}", flush=True)
    m["load_after"] = os.getloadavg()[0]
    if set(args.modes) == set(MODES):
        print(write_results(args, m, rows, exact, command))
    else:
        print("(RESULTS.md is written only when both modes run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
