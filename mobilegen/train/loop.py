"""One training loop for one machine and for MultiWorkerMirroredStrategy (strategy.run).

Keras 3's model.fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), so this loop
does what fit does, the tf.distribute way: each step every replica computes the loss of its part
of the global batch scaled by the global batch size, the optimizer sums the gradients across
replicas (an all-reduce) and applies the same update everywhere. On one machine the strategy is
TensorFlow's default one and the same code runs unchanged.

Metrics are sums reduced across replicas, so every worker sees the same numbers and takes the same
early-stopping decisions (a worker stopping alone would leave the others waiting in a collective).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from mobilegen.convert import tensorflow

BAR_WIDTH = 30


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)  # per epoch: loss, accuracy, val_loss, val_accuracy, learning_rate, seconds, cpu_seconds
    best_epoch: int = 0  # 1-based; the weights restored are this epoch's
    stopped_early: bool = False


class _Bar:
    """A one-line progress bar on stderr when it is a terminal; nothing otherwise (logs stay short)."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.on = enabled and sys.stderr.isatty()
        self.total, self.label, self.t0 = total, label, time.monotonic()

    def update(self, done: int, loss: float, acc: float) -> None:
        if not self.on:
            return
        filled = int(BAR_WIDTH * done / max(self.total, 1))
        eta = (time.monotonic() - self.t0) / max(done, 1) * (self.total - done)
        sys.stderr.write(f"\r{self.label} [{'=' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{self.total}"
                         f" loss {loss:.4f} acc {acc:.4f} eta {eta:4.0f}s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def sync_non_trainable(cluster, model) -> None:
    """Average the non-trainable float variables (BatchNorm moving statistics) across workers:
    each worker updated them from its own batches only."""
    if cluster.workers == 1:
        return
    tf = tensorflow()
    variables = [v for v in model.non_trainable_variables if "float" in str(v.dtype)]
    if not variables:
        return

    @tf.function
    def mean_all():
        def replica():
            # one all-reduce of every value, flattened (as plain tensors: the collective needs a device)
            flat = tf.concat([tf.reshape(tf.identity(v.value), [-1]) for v in variables], 0)
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, flat)

        return cluster.strategy.run(replica)

    flat = cluster.strategy.experimental_local_results(mean_all())[0].numpy()
    at = 0
    for v in variables:
        size = int(np.prod(v.shape))
        v.assign(flat[at:at + size].reshape(v.shape))
        at += size


def fit(model, *, cluster, train_fn, steps_per_epoch: int, global_batch: int, val_ds=None,
        epochs: int, learning_rate: float, label_smoothing: float, patience: int,
        events=None, progress=None, verbose: bool = True, on_epoch=None) -> FitResult:
    """Train `model` (softmax output) on `train_fn(input_context) -> dataset of ([b][...], [b] int)`
    (infinite, per worker) for `epochs` x `steps_per_epoch` steps with Adam and a cosine-decayed
    learning rate; validate on `val_ds` (finite, the whole validation set on every worker) after
    each epoch; stop after `patience` epochs without a lower val loss (train loss without val) and
    restore the best epoch's weights."""
    tf = tensorflow()
    import keras

    strategy = cluster.strategy
    classes = int(model.output.shape[-1])
    total_steps = max(epochs * steps_per_epoch, 1)
    with strategy.scope():
        # A linear warm-up (a tenth of training, at most one epoch) keeps Adam's first large steps,
        # taken before its moment estimates settle, from throwing a fresh network off; then a
        # cosine decay to 0.
        warmup = min(steps_per_epoch, total_steps // 10)
        schedule = keras.optimizers.schedules.CosineDecay(
            learning_rate / 10 if warmup else learning_rate, total_steps - warmup,
            warmup_target=learning_rate if warmup else None, warmup_steps=warmup)
        optimizer = keras.optimizers.Adam(schedule)
        optimizer.build(model.trainable_variables)
    dist = strategy.distribute_datasets_from_function(train_fn)
    iterator = iter(dist)

    def per_example_loss(y, p):
        onehot = tf.one_hot(y, classes)
        return keras.losses.categorical_crossentropy(onehot, p, label_smoothing=label_smoothing)

    @tf.function
    def train_step(it):
        def replica(x, y):
            with tf.GradientTape() as tape:
                p = model(x, training=True)
                per = per_example_loss(y, p)
                loss = tf.nn.compute_average_loss(per, global_batch_size=global_batch)
            variables = model.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(p, -1, output_type=tf.int32), tf.cast(y, tf.int32)), tf.float32))
            return tf.stack([tf.reduce_sum(per), correct, tf.cast(tf.shape(y)[0], tf.float32)])

        x, y = next(it)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica, args=(x, y)), axis=None)

    @tf.function
    def val_step(x, y):
        def replica(x, y):
            p = model(x, training=False)
            per = per_example_loss(y, p)
            correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(p, -1, output_type=tf.int32), tf.cast(y, tf.int32)), tf.float32))
            return tf.stack([tf.reduce_sum(per), correct, tf.cast(tf.shape(y)[0], tf.float32)])

        # Every replica evaluates the same batch; the sum over replicas divided by their number is
        # that batch's figures, identical on every worker.
        s = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica, args=(x, y)), axis=None)
        return s / strategy.num_replicas_in_sync

    result = FitResult()
    best, best_weights, waited = math.inf, None, 0
    for epoch in range(1, epochs + 1):
        t0, cpu0 = time.monotonic(), time.process_time()
        bar = _Bar(verbose, steps_per_epoch, f"epoch {epoch}/{epochs}")
        sums = np.zeros(3)
        for step in range(steps_per_epoch):
            sums += train_step(iterator).numpy()
            bar.update(step + 1, sums[0] / sums[2], sums[1] / sums[2])
        bar.close()
        sync_non_trainable(cluster, model)
        row = {"epoch": epoch, "loss": sums[0] / sums[2], "accuracy": sums[1] / sums[2],
               "learning_rate": float(schedule(epoch * steps_per_epoch))}
        if val_ds is not None:
            v = np.zeros(3)
            for x, y in val_ds:
                v += val_step(x, y).numpy()
            row["val_loss"], row["val_accuracy"] = v[0] / v[2], v[1] / v[2]
        row["seconds"] = time.monotonic() - t0
        # CPU seconds of the whole process (all threads): on a shared machine a steadier measure
        # of the work than wall time.
        row["cpu_seconds"] = time.process_time() - cpu0
        row = {k: (float(x) if k != "epoch" else x) for k, x in row.items()}
        result.history.append(row)
        if events is not None:
            events.scalars("train", epoch, {"loss": row["loss"], "accuracy": row["accuracy"], "learning_rate": row["learning_rate"]})
            if "val_loss" in row:
                events.scalars("validation", epoch, {"loss": row["val_loss"], "accuracy": row["val_accuracy"]})
        if progress is not None:
            val = f", val loss {row['val_loss']:.4f}, val accuracy {row['val_accuracy']:.4f}" if "val_loss" in row else ""
            progress(f"epoch {epoch}/{epochs}: loss {row['loss']:.4f}, accuracy {row['accuracy']:.4f}{val} ({row['seconds']:.1f} s)")
        if on_epoch is not None:
            on_epoch(row)
        monitored = row.get("val_loss", row["loss"])
        if monitored < best:
            best, best_weights, waited, result.best_epoch = monitored, model.get_weights(), 0, epoch
        else:
            waited += 1
            if patience and waited >= patience:
                result.stopped_early = True
                break
    if best_weights is not None and result.best_epoch != len(result.history):
        model.set_weights(best_weights)
    return result
