"""`train --distribute multiworker`: two local worker processes (TF_CONFIG on 127.0.0.1, free
ports) train one model together with tf.distribute.MultiWorkerMirroredStrategy: each computes its
bottleneck shards, the head trains on them, then the top block is fine-tuned on images; both end
with the same weights, the loss fell, and only the chief wrote the output directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import require

require("tensorflow")

from tests.test_train import RES, make_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2
TIMEOUT_S = 600

# A library call rather than the CLI: it sets a small bottleneck shard size, so that the few test
# images make several shards and both workers compute some.
WORKER = """
import json, sys
from pathlib import Path
from mobilegen.train import TrainConfig, train
data, out, weights, cache = sys.argv[1:5]
r = train(TrainConfig(data=data, out=Path(out), resolution={res}, base_weights=Path(weights), cache_dir=Path(cache),
                      epochs=3, fine_tune=1, fine_tune_epochs=1, batch_size=8, shard_size=4,
                      distribute="multiworker", verbose=False), progress=lambda m: print(m, file=sys.stderr, flush=True))
print(json.dumps(r.metrics))
""".format(res=RES)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def live_base_weights(path: Path) -> Path:
    """Random base weights with BatchNorm statistics set from image-like data (a weights=None
    MobileNet's activations die out layer by layer; these stay alive)."""
    from mobilegen.convert.keras_models import _calibrate_batchnorm, calibration_images
    from mobilegen.train.model import build_base

    base = build_base("v1", 0.25, RES)
    _calibrate_batchnorm(base, calibration_images(8, RES, RES, seed=0), seed=0)
    base.save_weights(str(path))
    return path


@pytest.mark.slow
def test_two_workers_train_one_model(tmp_path):
    data = make_folder(tmp_path / "data")
    weights = live_base_weights(tmp_path / "base.weights.h5")
    cache, out = tmp_path / "cache", tmp_path / "out"
    cluster = [f"127.0.0.1:{p}" for p in free_ports(WORKERS)]
    procs = []
    for i in range(WORKERS):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}}),
                   CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(ROOT))
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, str(data), str(out), str(weights), str(cache)],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=TIMEOUT_S)
            assert p.returncode == 0, stderr[-3000:]
            results.append((json.loads(stdout.strip().splitlines()[-1]), stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    (m0, err0), (m1, err1) = results
    assert m0["workers"] == m1["workers"] == WORKERS
    # one model: the same weights on both workers (trainable and BatchNorm statistics)
    assert m0["weights_sha256"] == m1["weights_sha256"]
    head = m0["phases"][0]["history"]
    assert [h["loss"] for h in head] == [h["loss"] for h in m1["phases"][0]["history"]]
    assert head[-1]["loss"] < head[0]["loss"]
    # the bottleneck shards were split: 18 train images in shards of 4 -> 5 shards, 3 + 2
    assert err0.count("bottlenecks: shard") >= 3 and err1.count("bottlenecks: shard") >= 2, (err0, err1)
    key = m0["bottleneck_cache"]["train"]["key"]
    assert len(list((cache / key).glob("x-*.npy"))) == 5 and (cache / key / "manifest.json").is_file()
    # the chief wrote the outputs
    assert {p.name for p in out.iterdir()} >= {"model.keras", "labels.txt", "metrics.json", "base.weights.h5", "logs"}
    assert json.loads((out / "metrics.json").read_text())["weights_sha256"] == m0["weights_sha256"]
