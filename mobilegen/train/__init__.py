"""Training image classifiers (the `train` extra: TensorFlow): `train(TrainConfig) -> TrainResult`.

Modules: config (options, no TF), model (MobileNet base + head, fine-tune blocks), bottleneck (the
on-disk cache of base outputs), loop (the training loop, one machine or several), distribute
(MultiWorkerMirroredStrategy from TF_CONFIG, how to run on a cluster), events (TensorBoard event
files), trainer (what `train` does, in order). Importing this package does not import TensorFlow.
"""

from mobilegen.train.config import TrainConfig, TrainResult


def train(config: TrainConfig, progress=None) -> TrainResult:
    """Train per `config` and write config.out; `progress(str)` receives one line per step."""
    from mobilegen.train.trainer import run

    return run(config, progress)


__all__ = ["TrainConfig", "TrainResult", "train"]
