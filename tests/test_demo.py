"""`make demo` (python -m mobilegen.demo): the main job end to end, a short summary at the end, and
none of TensorFlow's start-up chatter on the terminal or in the build log."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.harness import require

NOISE = re.compile(r"^([IWE]\d{4} |WARNING: All log messages|WARNING:absl:)|oneDNN|cuInit|cpu_feature_guard", re.M)


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    require("tensorflow")
    require("ai_edge_litert")
    from tests.test_engine_cpu import require_toolchain

    require_toolchain()
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "mobilegen.demo", "--out", str(out)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert not NOISE.search(r.stdout + r.stderr), r.stdout + r.stderr
    assert not NOISE.search((out / "logs" / "01-build.log").read_text())
    summary = r.stdout[r.stdout.index("== mobilegen demo: summary =="):].splitlines()
    text = "\n".join(summary)
    assert "MobileNet V1 alpha 0.25, 128x128, int8 (full integer), 10 classes" in text
    assert "random weights" in text
    assert len([ln for ln in summary if re.match(r"^\s+[1-5]\. \S+ \(\d+\): [0-9.]+$", ln)]) == 5, text
    for check in ("simulator vs LiteRT BUILTIN_REF", "engine on the CPU fallback vs simulator",
                  "engine on GLES 3.1 (Mesa llvmpipe) vs simulator",
                  "iOS engine, Metal kernels on the host executor, vs simulator"):
        assert re.search(re.escape(check) + r": all \d+ tensors within tolerance", text), text
    for backend in ("cpu", "gpu"):
        assert re.search(rf"timing   {backend} backend on host: cold run [0-9.]+ ms, warm [0-9.]+ ms \(best of \d+\)", text), text
    assert "says nothing about a phone" in text  # the Metal timing is the host executor's
    assert f"{out}/android" in text and f"{out}/ios" in text and f"{out}/logs" in text
    # the summary is the short part: a dozen lines or so, whatever the commands printed
    assert len(summary) < 20, text
