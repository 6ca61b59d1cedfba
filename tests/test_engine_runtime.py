"""The generated engine at run time: no heap allocation per inference, on either backend."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from tests.test_generate import DEMO


@pytest.fixture(scope="module")
def demo_runner(tmp_path_factory):
    from tests.test_engine_cpu import require_toolchain

    require_toolchain()
    from mobilegen.verify.host import build_host

    root = tmp_path_factory.mktemp("demo")
    r = CliRunner().invoke(app, ["generate", str(DEMO / "model.tflite"), "--target", "android", "--out", str(root / "p")])
    assert r.exit_code == 0, r.output
    return root, build_host(root / "p")

@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_run_allocates_nothing(demo_runner, backend):
    from mobilegen.inputs import load_input
    from mobilegen.tflite.reader import read_model_file
    from mobilegen.verify.host import run_host

    root, runner = demo_runner
    g = read_model_file(DEMO / "model.tflite")
    x = root / "x.npy"
    np.save(x, load_input(DEMO / "sample.png", g.tensors[g.inputs[0]]))
    report = run_host(runner, root / "p", x, root / f"y-{backend}.npy", backend=backend, repeat=5)
    assert report["backend"] == backend
    assert report["allocations_after_first_run"] == 0, report
