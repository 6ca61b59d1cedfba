"""The core (reader, IR, plan, simulator, CLI) imports and runs without TensorFlow or LiteRT."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from tests.harness import require

BLOCKER = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'ai_edge_litert', 'tf_keras'):
            raise ImportError(f'{name} is blocked for this test')
sys.meta_path.insert(0, _Block())
"""


def test_core_runs_without_tensorflow(tmp_path: Path):
    require("tensorflow")
    from tests import models

    buf = models.tflite_model("conv2d", models.BUILDERS["conv2d"], dict(h=9, w=7, cin=3, cout=5, k=3, stride=2), "int8")
    model = tmp_path / "m.tflite"
    model.write_bytes(buf)
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).uniform(-1, 1, (1, 9, 7, 3)).astype(np.float32))
    script = BLOCKER + textwrap.dedent(
        f"""
        from mobilegen.cli.app import app
        sys.argv = ['mobilegen', 'simulate', {str(model)!r}, '--input', {str(x)!r}, '--dump-dir', {str(tmp_path / 'd')!r}, '--top', '0']
        try:
            app()
        except SystemExit as e:
            assert not e.code, e.code
        for mod in ('tensorflow', 'keras', 'ai_edge_litert'):
            assert mod not in sys.modules, mod
        print('core ok')
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "core ok" in r.stdout, r.stderr
    assert (tmp_path / "d" / "tensors.json").exists()
