"""`make demo`: the main job end to end on the built-in default model, ending in a short summary.

    python -m mobilegen.demo --out demo_out

Builds the demo MobileNet (mobilegen.convert.demo), then runs the real `mobilegen` commands one
after another: inspect, simulate a sample image, compare every tensor with LiteRT's reference
kernels, generate the Android project and verify its engine on the CPU fallback and on Mesa's
GLES 3.1, then generate the iOS project and verify its engine's Metal backend (the generated Metal
kernels compiled as C++, on the host executor), comparing every tensor with the simulator. Each command's full output goes to
OUT/logs/<step>.log; the terminal gets one line per step and the summary. A failing step prints
the end of its log and exits with its code.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mobilegen.convert import demo

PACKAGE = "com.example.mobilegen.demo"
APP_NAME = "Mobilegen Demo"


@dataclass
class Step:
    name: str
    seconds: float
    stdout: str


def _mobilegen() -> list[str]:
    """The console script beside this interpreter (a venv's bin/), else the module."""
    script = Path(sys.executable).with_name("mobilegen")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mobilegen.cli.app"]


class Runner:
    def __init__(self, out: Path):
        self.out = out
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.steps: list[Step] = []

    def run(self, name: str, cmd: list[str]) -> Step:
        shown = " ".join(shlex.quote(c) for c in cmd)
        log = self.logs / f"{len(self.steps) + 1:02d}-{name}.log"
        print(f"[{len(self.steps) + 1}] {name}: {shown}", flush=True)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        log.write_text(f"$ {shown}\n{r.stdout}{r.stderr}")
        if r.returncode != 0:
            tail = (r.stdout + r.stderr).strip().splitlines()[-20:]
            print("\n".join(tail), file=sys.stderr)
            print(f"demo step '{name}' failed (exit {r.returncode}); full output in {log}", file=sys.stderr)
            raise SystemExit(r.returncode)
        step = Step(name, seconds, r.stdout)
        self.steps.append(step)
        return step


def _last_line(text: str, prefix: str = "") -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(prefix)]
    return lines[-1] if lines else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    out: Path = ap.parse_args().out
    mg = _mobilegen()
    r = Runner(out)
    model, labels = out / "model.tflite", out / "labels.txt"

    r.run("build", [sys.executable, "-m", "mobilegen.convert.demo", "--out", str(out)])
    r.run("inspect", mg + ["inspect", str(model)])
    sim = r.run("simulate", mg + ["simulate", str(model), "--input", str(out / "sample.png"), "--labels", str(labels),
                                  "--top", "5", "--output", str(out / "sim_output.npy"), "--dump-dir", str(out / "sim")])
    checks = [("simulator vs LiteRT BUILTIN_REF", r.run("compare-reference", mg + ["compare", str(out / "sim"), str(out / "reference")]))]
    r.run("generate", mg + ["generate", str(model), "--target", "android", "--out", str(out / "android"),
                            "--labels", str(labels), "--package", PACKAGE, "--app-name", APP_NAME, "--force"])
    runs = []
    for backend in ("cpu", "gpu"):
        v = r.run(f"verify-{backend}", mg + ["verify", str(out / "android"), "--backend", backend,
                                             "--input", str(out / "input.npy"), "--output", str(out / f"{backend}_output.npy"),
                                             "--dump-dir", str(out / backend)])
        runs.append(v)
        checks.append((f"engine on {'the CPU fallback' if backend == 'cpu' else 'GLES 3.1 (Mesa llvmpipe)'} vs simulator",
                       r.run(f"compare-{backend}", mg + ["compare", str(out / backend), str(out / "sim")])))

    r.run("generate-ios", mg + ["generate", str(model), "--target", "ios", "--out", str(out / "ios"),
                                "--labels", str(labels), "--bundle-id", PACKAGE, "--app-name", APP_NAME, "--force"])
    v = r.run("verify-ios-metal", mg + ["verify", str(out / "ios"), "--backend", "gpu", "--input", str(out / "input.npy"),
                                        "--output", str(out / "metal_output.npy"), "--dump-dir", str(out / "metal")])
    runs.append(v)
    checks.append(("iOS engine, Metal kernels on the host executor, vs simulator",
                   r.run("compare-metal", mg + ["compare", str(out / "metal"), str(out / "sim")])))

    top5 = [ln for ln in sim.stdout.splitlines() if ln[:1].isdigit()]
    print("\n== mobilegen demo: summary ==")
    print(f"model    {model}: MobileNet V1 alpha {demo.DEMO_ALPHA}, {demo.DEMO_RESOLUTION}x{demo.DEMO_RESOLUTION}, "
          f"int8 (full integer), {len(demo.DEMO_LABELS)} classes")
    print("top-5    of sample.png (the demo network has random weights, so these classes mean nothing):")
    for ln in top5:
        print(f"         {ln}")
    print("checks")
    for what, step in checks:
        print(f"         {what}: {_last_line(step.stdout)}")
    for v in runs:
        line = next((_last_line(v.stdout, b) for b in ("cpu backend", "gpu backend", "metal backend") if _last_line(v.stdout, b)),
                    _last_line(v.stdout))
        print(f"timing   {line}")
    print(f"outputs  {out}/android, {out}/ios (the projects), {out}/sim, {out}/cpu, {out}/gpu, {out}/metal (tensor dumps), "
          f"{out}/logs (each command's output)")
    print(f"total    {sum(s.seconds for s in r.steps):.1f} s in {len(r.steps)} steps")


if __name__ == "__main__":
    main()
