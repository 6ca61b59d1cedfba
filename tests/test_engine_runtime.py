"""The generated engine at run time: no heap allocation per inference, and `mobilegen verify`
reproducing `mobilegen simulate` tensor for tensor, on either backend."""

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
    from mobilegen.verify.host import run_host

    root, runner = demo_runner
    x = root / "x.npy"
    np.save(x, _demo_input())
    report = run_host(runner, root / "p", x, root / f"y-{backend}.npy", backend=backend, repeat=5)
    assert report["backend"] == backend
    assert report["allocations_after_first_run"] == 0, report


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_verify_command_matches_simulate(demo_runner, backend):
    """`mobilegen verify` and `mobilegen simulate` dumps of the demo model compare equal, every tensor."""
    root, _ = demo_runner
    runner = CliRunner()
    sim = root / "sim"
    r = runner.invoke(app, ["simulate", str(DEMO / "model.tflite"), "--input", str(DEMO / "sample.png"),
                            "--dump-dir", str(sim), "--output", str(root / "sim.npy"), "--top", "0"])
    assert r.exit_code == 0, r.output
    np.save(root / "x.npy", _demo_input())
    dump = root / f"verify-{backend}"
    r = runner.invoke(app, ["verify", str(root / "p"), "--backend", backend, "--input", str(root / "x.npy"),
                            "--output", str(root / f"v-{backend}.npy"), "--dump-dir", str(dump)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["compare", str(dump), str(sim)])
    assert r.exit_code == 0 and "all 33 tensors within tolerance" in r.output, r.output


def _demo_input():
    from mobilegen.inputs import load_input
    from mobilegen.tflite.reader import read_model_file

    g = read_model_file(DEMO / "model.tflite")
    return load_input(DEMO / "sample.png", g.tensors[g.inputs[0]])
