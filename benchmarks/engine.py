"""The generated Android engine on the host, against LiteRT, written to ENGINE_RESULTS.md.

    .venv/bin/python benchmarks/engine.py [--alpha 1.0] [--resolution 224] [--repeats 20]

Measures, for MobileNet V1 (int8 and float32, cached by benchmarks/run.py's model_path):
- `generate` time (the whole Android project, including the simulator's golden output);
- engine library size: the engine as a shared library (`mobilegen_size`, -Os, sections
  collected, stripped; the weights are in the blob, not the library) against LiteRT's runtime
  library in the ai-edge-litert wheel;
- the CPU fallback (single thread) against LiteRT BUILTIN_REF and XNNPACK (both num_threads=1);
- the GLES path on Mesa's llvmpipe (a CPU rasterizer: its times say nothing about a phone GPU);
- cold vs warm start of the GLES engine with the program-binary cache: the wall time of a whole
  `mobilegen_run` process (blob load, EGL set-up, programs compiled or loaded from the cache, one
  inference), with empty caches (ours and Mesa's shader cache, through MESA_SHADER_CACHE_DIR) and
  then with the caches the first run filled.
Every engine output is checked against the simulator (bit-exact for int8).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "ENGINE_RESULTS.md"
CPU_TARGET = 5.0  # BUILTIN_REF time / CPU fallback time
SIZE_TARGET_KB = 200
GENERATE_TARGET_S = 2.0


def litert_runtime() -> Path:
    import ai_edge_litert

    return Path(ai_edge_litert.__file__).parent / "libpywrap_litert_common.so"


def build(project: Path, build_dir: Path, min_size: bool, target: str) -> Path:
    cfg = ["cmake", "-S", str(project / "sdk/src/main/cpp"), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"]
    if min_size:
        cfg.append("-DMOBILEGEN_MIN_SIZE=ON")
    subprocess.run(cfg, check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build_dir), "--target", target, "-j", "2"], check=True, capture_output=True)
    return build_dir / (f"lib{target}.so" if target == "mobilegen_size" else target)


def run_engine(
    runner: Path, project: Path, x: Path, out: Path, backend: str, repeat: int, cache: Path | None = None,
    env: dict | None = None,
) -> tuple[dict, float]:
    cmd = [str(runner), "--blob", str(project / "sdk/src/main/assets/mobilegen/model.mgw"), "--input", str(x),
           "--output", str(out), "--backend", backend, "--repeat", str(repeat)]
    if cache is not None:
        cmd += ["--cache-dir", str(cache)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1]), wall


def bench_model(mode: str, alpha: float, res: int, repeats: int, work: Path) -> dict:
    from run import input_path, model_path

    from mobilegen.export import plan_for_precision
    from mobilegen.sim.runner import Simulator
    from mobilegen.targets.android import AndroidOptions, generate_android
    from mobilegen.tflite.reader import read_model_file
    from mobilegen.verify.reference import time_reference

    model, x_path = model_path(alpha, res, mode), input_path(res)
    project = work / f"android-{mode}"
    t0 = time.perf_counter()
    generate_android(model, project, AndroidOptions(), force=True)
    gen_s = time.perf_counter() - t0

    g = read_model_file(model)
    x = np.load(x_path)
    plan, _ = plan_for_precision(g)
    expected = Simulator(plan).run([x])[g.outputs[0]]

    runner = build(project, work / f"build-{mode}", False, "mobilegen_run")
    size_lib = build(project, work / f"build-size-{mode}", True, "mobilegen_size")
    row = {"mode": mode, "generate_s": gen_s, "engine_kb": size_lib.stat().st_size / 1024}
    out = work / f"out-{mode}.npy"
    for backend in ("cpu", "gpu"):
        report, _ = run_engine(runner, project, x_path, out, backend, repeats if backend == "cpu" else max(repeats // 4, 2))
        y = np.load(out)
        if mode == "int8":
            ok = bool(np.array_equal(y, expected))
        else:
            ok = bool(np.abs(y.astype(np.float64) - expected).max() <= 1e-4 * np.abs(expected).max())
        row[backend] = {"best_ms": report["best_run_ms"], "first_ms": report["first_run_ms"], "matches_simulator": ok}
    # Cold: our program cache and Mesa's own shader cache both empty (Mesa offers program
    # binaries only through its cache); warm: both as the cold run left them.
    cache, mesa_cache = work / f"cache-{mode}", work / f"mesa-cache-{mode}"
    cache.mkdir(exist_ok=True)
    env = dict(os.environ, MESA_SHADER_CACHE_DIR=str(mesa_cache))
    _, cold = run_engine(runner, project, x_path, out, "gpu", 1, cache, env)
    _, warm = run_engine(runner, project, x_path, out, "gpu", 1, cache, env)
    row["gpu_cold_start_ms"], row["gpu_warm_start_ms"] = cold * 1000, warm * 1000
    row["ref_ms"] = time_reference(model.read_bytes(), x, resolver="ref", repeats=max(repeats // 4, 3)) * 1000
    row["xnnpack_ms"] = time_reference(model.read_bytes(), x, resolver="xnnpack", repeats=repeats) * 1000
    return row


def write_results(rows: list[dict], args, machine: dict) -> str:
    runtime_kb = litert_runtime().stat().st_size / 1024
    lines = [
        "# Generated engine benchmark",
        "",
        f"Written by `benchmarks/engine.py` (`make bench`). Date: {datetime.date.today().isoformat()}.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}; numpy {machine['numpy']}; "
        f"ai-edge-litert {machine['litert']}. GLES: Mesa llvmpipe (software), so GPU figures measure a CPU rasterizer.",
        "",
        f"Model: Keras MobileNet V1 alpha {args.alpha} / {args.resolution}, 1000 classes (benchmarks/run.py's cached models).",
        "Engine times are the best of `--repeat` runs inside one `mobilegen_run` process (single thread); LiteRT runs "
        "with num_threads=1. Start times are whole-process wall times (see the module docstring).",
        "",
        "| mode | generate s | engine lib KB (-Os, stripped) | LiteRT runtime KB | CPU fallback ms | BUILTIN_REF ms | "
        "XNNPACK ms | ref / CPU | CPU / XNNPACK | GLES llvmpipe ms | GLES cold start ms | GLES warm start ms | matches simulator |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        match = "yes" if r["cpu"]["matches_simulator"] and r["gpu"]["matches_simulator"] else "NO"
        lines.append(
            f"| {r['mode']} | {r['generate_s']:.2f} | {r['engine_kb']:.0f} | {runtime_kb:.0f} | {r['cpu']['best_ms']:.1f} | "
            f"{r['ref_ms']:.1f} | {r['xnnpack_ms']:.1f} | {r['ref_ms'] / r['cpu']['best_ms']:.1f}x | "
            f"{r['cpu']['best_ms'] / r['xnnpack_ms']:.1f}x | {r['gpu']['best_ms']:.1f} | {r['gpu_cold_start_ms']:.0f} | "
            f"{r['gpu_warm_start_ms']:.0f} | {match} |"
        )
    lines += [
        "",
        "Targets: engine library <= "
        f"{SIZE_TARGET_KB} KB; generate < {GENERATE_TARGET_S} s; CPU fallback >= {CPU_TARGET}x faster than BUILTIN_REF.",
    ]
    for r in rows:
        met = {
            "size": r["engine_kb"] <= SIZE_TARGET_KB,
            "generate": r["generate_s"] < GENERATE_TARGET_S,
            "cpu vs ref": r["ref_ms"] / r["cpu"]["best_ms"] >= CPU_TARGET,
        }
        lines.append(f"- {r['mode']}: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))
    lines.append("")
    text = "\n".join(lines)
    RESULTS.write_text(text)
    return text


def main(argv=None) -> int:
    from run import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench_model(mode, args.alpha, args.resolution, args.repeats, Path(tmp)) for mode in ("int8", "float32")]
    print(write_results(rows, args, machine()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
