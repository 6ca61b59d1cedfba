"""TensorBoard event files without the tensorboard package.

keras.callbacks.TensorBoard calls tf.summary.scalar, which TensorFlow 2.21 delegates to the
tensorboard package (TBNotInstalledError without it). tf.summary.write is TensorFlow's own: with
the "scalars" plugin metadata it writes exactly the records tf.summary.scalar would, in Keras'
layout (DIR/logs/train, DIR/logs/validation, tags "epoch_loss", "epoch_accuracy",
"epoch_learning_rate"), so `tensorboard --logdir DIR/logs` shows them (the viewer needs the
tensorboard package; writing does not).
"""

from __future__ import annotations

from pathlib import Path

from mobilegen.convert import tensorflow

SCALARS_PLUGIN = "scalars"


class EventLog:
    def __init__(self, logdir: Path, runs=("train", "validation")):
        tf = tensorflow()
        from tensorflow.core.framework import summary_pb2

        meta = summary_pb2.SummaryMetadata()
        meta.plugin_data.plugin_name = SCALARS_PLUGIN
        self._meta = meta.SerializeToString()
        self._writers = {run: tf.summary.create_file_writer(str(Path(logdir) / run)) for run in runs}

    def scalars(self, run: str, step: int, values: dict[str, float]) -> None:
        tf = tensorflow()
        with self._writers[run].as_default():
            for tag, v in values.items():
                tf.summary.write(f"epoch_{tag}", tf.constant(float(v), tf.float32), step=step, metadata=self._meta)
        self._writers[run].flush()

    def close(self) -> None:
        for w in self._writers.values():
            w.close()


def read_scalars(logdir: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{run: {tag: [(step, value)]}} from the event files under `logdir` (for tests and tools)."""
    tf = tensorflow()
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for f in sorted(Path(logdir).glob("*/events.out.tfevents.*")):
        run = out.setdefault(f.parent.name, {})
        for rec in tf.data.TFRecordDataset(str(f)):
            from tensorflow.core.util import event_pb2

            e = event_pb2.Event.FromString(rec.numpy())
            for v in e.summary.value:
                run.setdefault(v.tag, []).append((int(e.step), float(tf.make_ndarray(v.tensor))))
    return out
