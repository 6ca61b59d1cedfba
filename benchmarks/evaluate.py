"""`mobilegen evaluate`'s throughput: the batched simulator vs LiteRT BUILTIN_REF one image at a time,
on the same images and model, written to EVALUATE_RESULTS.md.

    .venv/bin/python benchmarks/evaluate.py [--images 256] [--batch 32] [--alpha 0.25] [--resolution 128]

Models: Keras MobileNet V1 (1000 classes, seed 0) converted to int8 (full integer, float I/O) and
float32, cached under benchmarks/.cache/ (benchmarks/run.py's model_path). Images: deterministic
synthetic PNGs (gradients, shapes, noise) of varied sizes in a temporary folder, so decoding and
resizing cost what real photos of that size cost.

Figures (images per second, higher is better):
- evaluate_tflite: mobilegen.evaluate.evaluate_tflite end to end with its default threads (decode + resize + normalize, the
  batched simulator at --batch, scoring).
- sim batched: Simulator.outputs_batch on the preloaded inputs, --batch images per call.
- sim per image: Simulator.run one image at a time on the same inputs (today's kernels).
- sim per image, before batching: Simulator.run of the kernels at --baseline-rev (git show of
  mobilegen/sim/{runner,kernels}.py into a temporary package), the code before this work.
- BUILTIN_REF per image: LiteRT's reference kernels (num_threads=1), one invoke per image on the same
  preloaded inputs; "+ decode" adds the same image loading evaluate_tflite does.
The int8 predictions of evaluate_tflite and BUILTIN_REF must be identical (bit-exact simulator);
for float32 the share of equal top-1 is reported. Timing is round-robin over the variants (--rounds,
best kept) because a shared machine's load changes the figures by several times within a minute.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "EVALUATE_RESULTS.md"
MODES = ("int8", "float32")
BASELINE_REV = "2970426"  # the last commit before Simulator.run_batch and the fused requantization
PER_IMAGE_ROUND = 8  # images per timing round of the per-image simulators
EVALUATE_ROUND_BATCHES = 4  # batches per timing round of evaluate_tflite end to end
CLASSES = 4  # image folder classes (labels 0..3 of the model's 1000)


def make_images(root: Path, n: int, seed: int = 0) -> list:
    """n PNGs in CLASSES folders: smooth gradients, a filled shape, noise; 96..223 px a side."""
    from PIL import Image, ImageDraw

    from mobilegen.data.folder import Sample

    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        label = i % CLASSES
        h, w = (int(v) for v in rng.integers(96, 224, 2))
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * rng.uniform(0.5, 2) + yy * rng.uniform(-1, 1)) % 256 for _ in range(3)], -1)
        im = Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8))
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        ImageDraw.Draw(im).ellipse([x0, y0, x0 + w // 3, y0 + h // 3], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        d = root / f"class_{label}"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{i:04d}.png"
        im.save(path)
        samples.append(Sample(path, label))
    return samples


def baseline_simulator(rev: str, tmp: Path):
    """The Simulator class of mobilegen/sim at git revision `rev`, or None when git cannot show it."""
    pkg = tmp / f"sim_{rev}"
    pkg.mkdir(exist_ok=True)
    for name in ("runner.py", "kernels.py"):
        r = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:mobilegen/sim/{name}"], capture_output=True, text=True)
        if r.returncode:
            return None
        src = r.stdout.replace("from mobilegen.sim.kernels import", f"from sim_{rev}.kernels import")
        (pkg / name).write_text(src)
    (pkg / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp))
    return importlib.import_module(f"sim_{rev}.runner").Simulator


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def interleaved(variants: dict, rounds: int) -> dict:
    """name -> best images/s over `rounds` rounds; variants are (fn, images per call) run
    round-robin, so each gets the same chances at a quiet moment of a shared machine."""
    best = {k: float("inf") for k in variants}
    for _ in range(rounds):
        for name, (fn, _) in variants.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {k: rate(variants[k][1], best[k]) for k in variants}


def measure(mode: str, args, samples, tmp: Path) -> dict:
    sys.path.insert(0, str(HERE))
    from run import model_path  # noqa: E402  (benchmarks/run.py: the cached converted MobileNets)

    from mobilegen.evaluate import agreement, default_workers, evaluate_tflite, load_images, score
    from mobilegen.export import plan_for_precision
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model
    from mobilegen.verify.reference import _interpreter

    buf = model_path(args.alpha, args.resolution, mode).read_bytes()
    classes = [str(i) for i in range(1000)]
    n, b = len(samples), args.batch
    print(f"[{mode}] evaluate_tflite on all {n} images, batch {b} ...", flush=True)
    evaluate_tflite(buf, samples[:b], classes, batch=b)  # warm-up: imports, page cache
    e = evaluate_tflite(buf, samples, classes, batch=b)

    g = read_model(buf)
    plan, _ = plan_for_precision(g)
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    x = load_images(samples, t_in, 127.5, 127.5)

    print(f"[{mode}] BUILTIN_REF one image at a time on all {n} images ...", flush=True)
    interp = _interpreter(buf, "ref", preserve=False)
    d_in, d_out = interp.get_input_details()[0], interp.get_output_details()[0]
    ref = np.zeros((n, 1000))

    def litert(count: int):
        for i in range(count):
            interp.set_tensor(d_in["index"], x[i : i + 1])
            interp.invoke()
            ref[i] = interp.get_tensor(d_out["index"]).reshape(-1)

    litert(n)
    q = d_out["quantization"]
    scores = q[0] * (ref - q[1]) if d_out["dtype"] != np.float32 and q[0] else ref
    ref_eval = score(scores, e.labels, classes, 1.0)

    sim, sim1 = Simulator(plan), Simulator(plan)
    sim.outputs_batch([x[:b]])
    sim1.run([x[:1]])
    m = min(PER_IMAGE_ROUND, n)
    e_n = min(n, EVALUATE_ROUND_BATCHES * b)
    variants = {
        "evaluate": (lambda: evaluate_tflite(buf, samples[:e_n], classes, batch=b), e_n),
        "batched": (lambda: sim.outputs_batch([x[:b]]), b),
        "per_image": (lambda: [sim1.run([x[i : i + 1]]) for i in range(m)], m),
        "litert": (lambda: litert(b), b),
        "decode": (lambda: load_images(samples[:b], t_in, 127.5, 127.5), b),
    }
    base_cls = baseline_simulator(args.baseline_rev, tmp) if args.baseline_rev else None
    if base_cls is not None:
        old = base_cls(plan)
        old.run([x[:1]])
        variants["before"] = (lambda: [old.run([x[i : i + 1]]) for i in range(m)], m)
    print(f"[{mode}] {args.rounds} interleaved timing rounds ...", flush=True)
    r = interleaved(variants, args.rounds)
    return {
        "mode": mode, "n": n, "batch": b, "m": m, "e_n": e_n, "workers": default_workers("int8" if mode == "int8" else "fp32"),
        "evaluate": r["evaluate"], "evaluate_seconds": e.seconds,
        "decode": r["decode"], "batched": r["batched"], "per_image": r["per_image"], "before": r.get("before"),
        "litert": r["litert"], "litert_decode": 1 / (1 / r["litert"] + 1 / r["decode"]),
        "identical": bool(np.array_equal(ref_eval.predictions, e.predictions)),
        "agreement": agreement(ref_eval, e), "out_dtype": t_out.dtype,
    }


def machine() -> dict:
    sys.path.insert(0, str(HERE))
    from run import machine as run_machine

    return run_machine()


def write_results(args, m: dict, rows: list[dict], command: str) -> str:
    f = lambda v: "n/a" if v is None else f"{v:.1f}"  # noqa: E731
    lines = [
        "# Evaluate benchmark: batched simulator vs LiteRT BUILTIN_REF",
        "",
        f"Written by `benchmarks/evaluate.py` (see its docstring for what each figure is). Date: {datetime.date.today()}.",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, numpy {m['numpy']}, BLAS: {m['blas']}; "
        f"ai-edge-litert {m['litert']}.",
        "",
        f"Load average (1 min) before / after: {m['load_before']:.1f} / {m['load_after']:.1f} (other work on the "
        "machine deflates every figure; rerun on a quiet machine).",
        "",
        f"Model: Keras MobileNet V1 alpha {args.alpha} / {args.resolution}, 1000 classes, seed 0 "
        "(benchmarks/run.py's model_path), float input and output in both modes. Images: "
        f"{rows[0]['n']} synthetic PNGs, 96-223 px a side, resized to {args.resolution} as `simulate` does. "
        f"Batch {args.batch}; evaluate_tflite with its default worker threads ("
        + ", ".join(f"{r['mode']}: {r['workers']}" for r in rows) + "), the other rows on one thread. "
        f"Timing: {args.rounds} rounds after a warm-up, every variant once per round (round-robin), the best "
        f"round of each kept; a round is {rows[0]['e_n']} images for evaluate_tflite, one batch for the batched "
        f"simulator, BUILTIN_REF and decoding, {rows[0]['m']} images for the per-image simulators. Predictions "
        f"are compared over all {rows[0]['n']} images. LiteRT runs single-threaded; numpy's BLAS at its default "
        "thread count.",
        "",
        "| mode | evaluate_tflite (end to end) | sim batched | sim per image | sim per image, before batching "
        f"({args.baseline_rev}) | BUILTIN_REF per image | BUILTIN_REF + decode | decode only | top-1 equal to BUILTIN_REF |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        eq = "all (identical predictions)" if r["identical"] else f"{r['agreement'] * 100:.1f}%"
        lines.append(
            f"| {r['mode']} | {f(r['evaluate'])} | {f(r['batched'])} | {f(r['per_image'])} | {f(r['before'])} "
            f"| {f(r['litert'])} | {f(r['litert_decode'])} | {f(r['decode'])} | {eq} |")
    lines += [
        "",
        "All figures in images per second.",
        "",
    ]
    for r in rows:
        speedup = f"{r['batched'] / r['before']:.1f}x" if r["before"] else "n/a"
        lines.append(
            f"- {r['mode']}: all {r['n']} images evaluated in {r['evaluate_seconds']:.1f} s (one run outside the timing rounds); batched simulator "
            f"{r['batched'] / r['litert']:.2f}x BUILTIN_REF's one-at-a-time rate; {speedup} the per-image simulator "
            "before batching.")
    lines.append("")
    text = "\n".join(lines)
    RESULTS.write_text(text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.25)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--rounds", type=int, default=8, help="interleaved timing rounds (the best of each figure is kept)")
    ap.add_argument("--baseline-rev", default=BASELINE_REV, help="git revision of the per-image simulator to compare ('' to skip)")
    args = ap.parse_args(argv)
    command = "make bench" if not argv and len(sys.argv) == 1 else " ".join(
        [".venv/bin/python", "benchmarks/evaluate.py", *(argv if argv is not None else sys.argv[1:])])
    m = machine()
    m["load_before"] = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        samples = make_images(Path(tmp) / "images", args.images)
        rows = [measure(mode, args, samples, Path(tmp)) for mode in args.modes]
    m["load_after"] = os.getloadavg()[0]
    print(write_results(args, m, rows, command))
    return 0 if all(r["identical"] for r in rows if r["mode"] == "int8") else 1


if __name__ == "__main__":
    sys.exit(main())
