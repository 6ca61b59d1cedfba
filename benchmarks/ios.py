"""The generated iOS project on the host, written to IOS_RESULTS.md.

    .venv/bin/python benchmarks/ios.py [--alpha 1.0] [--resolution 224] [--repeats 5]

Measures, for MobileNet V1 (int8 and float32, cached by benchmarks/run.py's model_path):
- `generate --target ios` time (the whole project, including the simulator's golden output);
- the SDK's size without weights (the weights are in the blob, a resource). No Apple toolchain
  exists here, so the figure is a proxy: the shared C++ engine as an iOS build compiles it (the
  core and the Metal backend, without the host-proof executor) built for x86-64 with clang-19
  -Os, sections collected, stripped; plus the code and data of the Objective-C++ sources compiled
  to objects against GNUstep (-Os), and the Metal library source the engine embeds;
- the host execution time of the generated Metal kernels: the engine's own Metal backend over the
  host executor (kernels compiled as C++ on the CPU, one thread per invocation where a kernel
  uses threadgroup memory). Reported, not a target: it says nothing about a phone's GPU.
Every engine output is checked against the simulator (bit-exact for int8).
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "IOS_RESULTS.md"
GENERATE_TARGET_S = 2.0
CXX = "clang++-19"


def _sdk_dir(project: Path) -> Path:
    (found,) = sorted((project / "Sources").glob("*/cpp/CMakeLists.txt"))
    return found.parent.parent


def engine_size_kb(sdk: Path, work: Path) -> float:
    """The engine an iOS build compiles (cpp/engine/*.cpp), as a stripped -Os shared library."""
    engine = sdk / "cpp" / "engine"
    lib = work / "libengine_ios_proxy.so"
    cmd = [CXX, "-std=c++17", "-Os", "-fPIC", "-shared", "-fno-rtti", "-fvisibility=hidden",
           "-fvisibility-inlines-hidden", "-ffunction-sections", "-fdata-sections", "-ffp-contract=off",
           f"-I{engine}", *sorted(str(p) for p in engine.glob("*.cpp")),
           "-Wl,--gc-sections", "-s", "-o", str(lib)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return lib.stat().st_size / 1024


def objc_objects_kb(sdk: Path, work: Path) -> float:
    """Code and data (`size`: text + data) of the SDK's Objective-C++ sources (the API and the Metal
    adapter) compiled to objects against GNUstep and the stub Apple headers (tests/objc.py's
    command, -Os); the object files themselves are mostly symbols and relocations."""
    sys.path.insert(0, str(HERE.parent))
    from tests.objc import clang_command

    total = 0
    for n, src in enumerate(sorted(sdk.rglob("*.mm"))):
        obj = work / f"objc{n}.o"
        cmd = [c for c in clang_command([src], [sdk / "include"], True, flags=["-Os"]) if c != "-fsyntax-only"]
        subprocess.run(cmd + ["-c", "-o", str(obj)], check=True, capture_output=True, text=True)
        text, data = subprocess.run(["size", str(obj)], check=True, capture_output=True, text=True).stdout.splitlines()[1].split()[:2]
        total += int(text) + int(data)
    return total / 1024


def bench_model(mode: str, alpha: float, res: int, repeats: int, work: Path) -> dict:
    from run import input_path, model_path

    from mobilegen.export import plan_for_precision
    from mobilegen.sim.runner import Simulator
    from mobilegen.targets.ios import IOSOptions, generate_ios
    from mobilegen.tflite.reader import read_model_file
    from mobilegen.verify.host import build_host, run_host

    model, x_path = model_path(alpha, res, mode), input_path(res)
    project = work / f"ios-{mode}"
    t0 = time.perf_counter()
    generate_ios(model, project, IOSOptions(), force=True)
    gen_s = time.perf_counter() - t0

    sdk = _sdk_dir(project)
    metal_kb = sum(p.stat().st_size for p in sdk.glob("cpp/metal_host/kernels.metal")) / 1024
    row = {"mode": mode, "generate_s": gen_s, "engine_kb": engine_size_kb(sdk, work),
           "objc_kb": objc_objects_kb(sdk, work), "metal_source_kb": metal_kb}

    g = read_model_file(model)
    x = np.load(x_path)
    plan, _ = plan_for_precision(g)
    expected = Simulator(plan).run([x])[g.outputs[0]]
    runner = build_host(project)
    out = work / f"out-{mode}.npy"
    report = run_host(runner, project, x_path, out, backend="gpu", repeat=repeats)
    y = np.load(out)
    if mode == "int8":
        ok = bool(np.array_equal(y, expected))
    else:
        ok = bool(np.abs(y.astype(np.float64) - expected).max() <= 1e-4 * np.abs(expected).max())
    row["metal_host"] = {"best_ms": report["best_warm_run_ms"], "first_ms": report["first_run_ms"],
                         "backend": report["backend"], "matches_simulator": ok}
    return row


def write_results(rows: list[dict], args, machine: dict, command: str) -> str:
    lines = [
        "# iOS target benchmark",
        "",
        f"Written by `{command}` (`make bench`). Date: {datetime.date.today().isoformat()}.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}; numpy {machine['numpy']}.",
        "No Apple toolchain or device: sizes are x86-64 proxies and the Metal",
        "kernels run as C++ on the CPU (see the module docstring).",
        "",
        f"Model: Keras MobileNet V1 alpha {args.alpha} / {args.resolution}, 1000 classes.",
        "",
        "| mode | generate s | engine KB (x86-64 -Os, stripped) | Objective-C++ code + data KB | Metal source KB | "
        "Metal kernels on the host executor, warm ms | cold ms | matches simulator |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["metal_host"]
        lines.append(
            f"| {r['mode']} | {r['generate_s']:.2f} | {r['engine_kb']:.0f} | {r['objc_kb']:.0f} | "
            f"{r['metal_source_kb']:.0f} | {m['best_ms']:.0f} | {m['first_ms']:.0f} | "
            f"{'yes' if m['matches_simulator'] else 'NO'} |")
    lines += [
        "",
        f"Target: generate < {GENERATE_TARGET_S} s. "
        + "; ".join(f"{r['mode']}: {'met' if r['generate_s'] < GENERATE_TARGET_S else 'NOT met'}" for r in rows) + ".",
        "The host executor's time is reported, not a target.",
        "",
    ]
    text = "\n".join(lines)
    RESULTS.write_text(text)
    return text


def main(argv=None) -> int:
    from run import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/ios.py", *given])
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench_model(mode, args.alpha, args.resolution, args.repeats, Path(tmp)) for mode in ("int8", "float32")]
    print(write_results(rows, args, machine(), command))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
