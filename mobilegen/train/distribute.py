"""Training on several machines: tf.distribute.MultiWorkerMirroredStrategy, configured by TF_CONFIG.

How to run `mobilegen train --distribute multiworker` on a cluster
------------------------------------------------------------------
Every machine (a *worker*) runs the same command, with the same DATA and options, and an
environment variable TF_CONFIG that lists the whole cluster and says which worker it is::

    # on host0 (worker 0, the chief: it writes DIR)
    export TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}'
    mobilegen train /shared/flowers --out /shared/run1 --distribute multiworker --cache-dir /shared/cache
    # on host1 (worker 1): the same, with "index": 1
    export TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 1}}'
    mobilegen train /shared/flowers --out /shared/run1 --distribute multiworker --cache-dir /shared/cache

- The ports must be open between the machines (gRPC); start all workers within a few minutes of
  each other (each waits for the others at start-up).
- DATA and --cache-dir must be the same paths on a filesystem every worker sees (NFS, a cluster
  file system): each worker computes the bottleneck shards it owns (shard k belongs to worker
  k mod W) and then reads all of them; a cache already complete is a hit on every worker.
- --batch-size is the global batch: each of the W workers takes batch-size / W per step, the
  gradients are summed across workers (an all-reduce) and every worker applies the same update,
  so all end with the same weights; BatchNorm moving statistics are averaged across workers after
  each epoch. An epoch is ceil(train images / batch-size) steps on every worker.
- Worker 0 (the chief) writes DIR (model.keras, labels.txt, metrics.json, logs/,
  base.weights.h5); the others write to a temporary directory that is deleted at the end.
- Cluster managers that set TF_CONFIG themselves (Kubeflow's TFJob, Vertex AI, SageMaker's
  MultiWorkerMirrored mode) need nothing else; on Slurm, write TF_CONFIG from
  $SLURM_JOB_NODELIST and $SLURM_PROCID in the job script.
- Keras 3's `model.fit` does not run under MultiWorkerMirroredStrategy (keras-team/keras#20585),
  so mobilegen's training loop is its own (mobilegen/train/loop.py), calling strategy.run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from mobilegen.errors import UserInputError


@dataclass(frozen=True)
class Cluster:
    strategy: object  # a tf.distribute.Strategy (the default one on a single machine)
    workers: int
    index: int

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    def barrier(self) -> None:
        """Wait until every worker got here (an all-reduce of a scalar)."""
        if self.workers > 1:
            tf = _tf()
            self.strategy.reduce(tf.distribute.ReduceOp.SUM, self.strategy.run(lambda: tf.constant(1.0)), axis=None)


def _tf():
    from mobilegen.convert import tensorflow

    return tensorflow()


def tf_config() -> dict:
    """TF_CONFIG parsed and checked (one-line errors)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise UserInputError("--distribute multiworker needs TF_CONFIG (the cluster and this worker's index; see mobilegen/train/distribute.py)")
    try:
        cfg = json.loads(raw)
        workers = cfg["cluster"]["worker"]
        task = cfg["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise UserInputError(f"TF_CONFIG: expected {{\"cluster\": {{\"worker\": [\"host:port\", ...]}}, \"task\": {{\"type\": \"worker\", \"index\": i}}}} ({e})") from None
    if task.get("type") != "worker" or not 0 <= index < len(workers):
        raise UserInputError(f"TF_CONFIG: task {task} is not one of the {len(workers)} workers")
    return cfg


def cluster(mode: str) -> Cluster:
    """The strategy for `--distribute mode`: created before any other TensorFlow op runs (a
    requirement of MultiWorkerMirroredStrategy, which sets up the collectives)."""
    tf = _tf()
    if mode == "none":
        return Cluster(tf.distribute.get_strategy(), 1, 0)
    cfg = tf_config()
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as e:  # "Collective ops must be configured at program startup"
        raise UserInputError(f"--distribute multiworker: {e} (start a fresh process per worker)") from None
    return Cluster(strategy, len(cfg["cluster"]["worker"]), int(cfg["task"]["index"]))
