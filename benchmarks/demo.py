"""Wall time of `make demo` by stage: `mobilegen build examples/builtin/mobilegen.toml`, written to
DEMO_RESULTS.md.

    .venv/bin/python benchmarks/demo.py [--out DIR]

Runs the demo's build once in a fresh output directory (the built-in dataset's render cache and the
bottleneck cache are whatever the machine has: the report says which), takes the per-stage times
from DIR/build.json and the whole command's wall time from the clock here. The issue's budget for
the demo is 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = ROOT / "examples" / "builtin" / "mobilegen.toml"
RESULTS = HERE / "DEMO_RESULTS.md"
BUDGET_S = 600.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="build directory (default: a fresh temporary one)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="mobilegen-demo-")) / "out"
    from mobilegen.data.builtin import STAMP, default_dest

    rendered = (default_dest() / STAMP).is_file()  # the dataset's render cache, before the run
    cmd = [sys.executable, "-m", "mobilegen.cli.app", "build", str(CONFIG), "--out", str(out)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"demo build failed (exit {r.returncode}):\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    report = json.loads((out / "build.json").read_text())
    stages = report["stages_seconds"]
    cores = os.cpu_count()
    lines = [
        "# `make demo` by stage",
        "",
        f"Measured {datetime.date.today().isoformat()} on {platform.processor() or platform.machine()}, "
        f"{cores} cores, Python {platform.python_version()}, with",
        "",
        "```sh",
        ".venv/bin/python benchmarks/demo.py",
        "```",
        "",
        f"which runs `mobilegen build examples/builtin/mobilegen.toml` (what `make demo` runs) in a fresh "
        f"output directory. Budget: {BUDGET_S / 60:.0f} minutes on 2 cores. The built-in dataset was "
        + ("already rendered (its cache)" if rendered else "rendered by this run") + "; training from scratch uses no bottleneck cache.",
        "",
        "| stage | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in stages.items()]
    lines += [f"| **whole command** (wall, incl. start-up) | **{wall:.1f}** |", ""]
    train = report.get("train") or {}
    if train:
        lines.append(f"Training: {train.get('epochs_run', '?')} epochs, final validation accuracy "
                     f"{100 * float(train.get('final', {}).get('val_accuracy', float('nan'))):.1f}%.")
    for e in report.get("evaluation", []):
        lines.append(f"- {e['name']}: top-1 {100 * e['top1']:.1f}%, top-5 {100 * e['top5']:.1f}%, "
                     f"agreement with {report['evaluation'][0]['name']} {100 * e['agreement']:.1f}% ({e['n']} images)")
    lines.append("")
    lines.append(f"Within budget: {'yes' if wall <= BUDGET_S else 'NO'} ({wall:.0f} s of {BUDGET_S:.0f} s).")
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
