"""What `mobilegen train` does, in order.

1. The strategy (first: MultiWorkerMirroredStrategy must exist before other TF ops), the data
   (corrupt images reported and skipped) and the validation split (mobilegen.data.split, seeded).
2. With --base-weights: the base's outputs for every train and validation image from the
   bottleneck cache (computed on a miss), the head trained on them; with --fine-tune N then the
   top N blocks and the head trained on (augmented) images at a low learning rate.
   Without: the whole network trained from scratch on augmented images.
3. The chief writes DIR: model.keras, base.weights.h5, labels.txt, metrics.json, logs/.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from pathlib import Path

from mobilegen.data.pipeline import tf_dataset
from mobilegen.errors import UserInputError
from mobilegen.train import bottleneck, distribute, loop, model as models
from mobilegen.train.config import TrainConfig, TrainResult

METRICS_VERSION = 1


def _quiet(_msg: str) -> None:
    pass


def _image_fn(samples, cfg: TrainConfig, cluster, global_batch: int, augment: bool):
    """train_fn for loop.fit: each worker streams its share of the images (every W-th)."""
    mine = samples[cluster.index::cluster.workers]
    per_worker = max(global_batch // cluster.workers, 1)

    def fn(_ctx):
        return tf_dataset(mine, cfg.resolution, batch_size=per_worker, augment=augment, shuffle=True,
                          seed=cfg.seed, mean=cfg.mean, std=cfg.std, repeat=True)

    return fn


def _bottleneck_fn(entry, cfg: TrainConfig, cluster, global_batch: int):
    per_worker = max(global_batch // cluster.workers, 1)

    def fn(_ctx):
        return bottleneck.dataset(entry, batch=per_worker, shuffle=True, seed=cfg.seed, repeat=True,
                                  num_shards=cluster.workers, index=cluster.index)

    return fn


def run(cfg: TrainConfig, progress=None) -> TrainResult:
    progress = progress or _quiet
    cfg.validate()
    t_start = time.monotonic()
    from mobilegen.data import content_hash, report_skipped, resolve_data, split

    folder = resolve_data(cfg.data)  # layout errors before TensorFlow's import
    cluster = distribute.cluster(cfg.distribute)

    from mobilegen.convert import tensorflow

    tensorflow()
    import keras

    report_skipped(folder, progress)
    train_s, val_s = split(folder, cfg.val_split, cfg.seed)
    classes = folder.classes
    progress(f"data: {len(classes)} classes, {len(train_s)} train / {len(val_s)} validation images"
             + (f" ({len(folder.skipped)} skipped)" if folder.skipped else ""))
    global_batch = min(cfg.batch_size, len(train_s))
    if global_batch < cluster.workers:
        raise UserInputError(f"--batch-size {cfg.batch_size}: expected at least one image per worker ({cluster.workers} workers)")
    steps = math.ceil(len(train_s) / global_batch)
    data_hash = content_hash(folder.samples, classes)

    out = Path(cfg.out) if cluster.is_chief else Path(tempfile.mkdtemp(prefix=f"mobilegen-worker{cluster.index}-"))
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    if logs.exists():
        shutil.rmtree(logs)  # a previous run's curves would mix with this one's in TensorBoard
    events = loop_events(logs)

    keras.utils.set_random_seed(cfg.seed)
    fit_args = dict(cluster=cluster, global_batch=global_batch, label_smoothing=cfg.label_smoothing,
                    patience=cfg.patience, events=events, progress=progress, verbose=cfg.verbose)
    phases: list[dict] = []
    cache: dict = {}
    with cluster.strategy.scope():
        base = models.build_base(cfg.arch, cfg.alpha, cfg.resolution)
    features = int(base.output.shape[-1])

    if cfg.base_weights is not None:
        models.load_base_weights(base, cfg.base_weights)
        weights_hash = bottleneck.file_sha256(Path(cfg.base_weights))
        root = Path(cfg.cache_dir) if cfg.cache_dir else bottleneck.default_cache_dir()
        entries = {}
        for name, samples in (("train", train_s), ("validation", val_s)):
            if not samples:
                continue
            key = bottleneck.cache_key(data_hash=content_hash(samples, classes), weights_hash=weights_hash,
                                       resolution=cfg.resolution, mean=cfg.mean, std=cfg.std, arch=cfg.arch, alpha=cfg.alpha,
                                       shard_size=cfg.shard_size)
            e = bottleneck.ensure(base, samples, key=key, root=root, cluster=cluster, resolution=cfg.resolution,
                                  mean=cfg.mean, std=cfg.std, shard_size=cfg.shard_size, progress=progress)
            entries[name] = e
            progress(f"bottleneck cache: {'hit' if e.hit else 'miss'} ({name}, {e.n} images, {root / key})")
            cache[name] = {"hit": e.hit, "key": key, "dir": str(e.dir)}
        with cluster.strategy.scope():
            head = models.build_head(features, len(classes), cfg.dropout)
        val_ds = (bottleneck.dataset(entries["validation"], batch=cfg.batch_size, shuffle=False, seed=cfg.seed, repeat=False)
                  if "validation" in entries else None)
        progress(f"training the head on cached bottlenecks ({cfg.epochs} epochs of {steps} steps)")
        r = loop.fit(head, train_fn=_bottleneck_fn(entries["train"], cfg, cluster, global_batch), steps_per_epoch=steps,
                     val_ds=val_ds, epochs=cfg.epochs, learning_rate=cfg.head_learning_rate(), **fit_args)
        phases.append(_phase("head", r, cfg.head_learning_rate()))
        with cluster.strategy.scope():
            classifier = models.build_classifier(base, head)
        if cfg.fine_tune:
            with cluster.strategy.scope():
                trained = models.freeze_for_fine_tune(base, cfg.arch, cfg.fine_tune)
            progress(f"fine-tuning the top {cfg.fine_tune} blocks ({len(trained)} layers with weights) and the head")
            events_offset = len(r.history)
            r = loop.fit(classifier, train_fn=_image_fn(train_s, cfg, cluster, global_batch, cfg.augment), steps_per_epoch=steps,
                         val_ds=_image_val(val_s, cfg), epochs=cfg.fine_tune_epochs, learning_rate=cfg.fine_tune_learning_rate,
                         **{**fit_args, "events": _Offset(events, events_offset)})
            phases.append(_phase("fine_tune", r, cfg.fine_tune_learning_rate, blocks=cfg.fine_tune))
    else:
        models.set_bn_momentum(base, models.SCRATCH_BN_MOMENTUM)
        with cluster.strategy.scope():
            head = models.build_head(features, len(classes), cfg.dropout)
            classifier = models.build_classifier(base, head)
        progress(f"training MobileNet {cfg.arch.upper()} {cfg.alpha}/{cfg.resolution} from scratch ({cfg.epochs} epochs of {steps} steps)")
        r = loop.fit(classifier, train_fn=_image_fn(train_s, cfg, cluster, global_batch, cfg.augment), steps_per_epoch=steps,
                     val_ds=_image_val(val_s, cfg), epochs=cfg.epochs, learning_rate=cfg.head_learning_rate(), **fit_args)
        phases.append(_phase("scratch", r, cfg.head_learning_rate()))
    events.close()

    base.trainable = True  # saved models load with every layer trainable, like Keras' own
    paths = TrainResult(out=out, model=out / "model.keras", labels=out / "labels.txt", metrics_path=out / "metrics.json",
                        base_weights=out / "base.weights.h5", logs=logs)
    classifier.save(paths.model)
    base.save_weights(paths.base_weights)
    paths.labels.write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
    last = phases[-1]["history"][phases[-1]["best_epoch"] - 1]
    metrics = {
        "version": METRICS_VERSION,
        "classes": classes,
        "arch": cfg.arch, "alpha": cfg.alpha, "resolution": cfg.resolution, "mean": cfg.mean, "std": cfg.std,
        "seed": cfg.seed, "val_split": cfg.val_split, "batch_size": global_batch,
        "mode": "transfer" if cfg.base_weights is not None else "scratch",
        "base_weights": str(cfg.base_weights) if cfg.base_weights is not None else None,
        "fine_tune_blocks": cfg.fine_tune,
        "data": str(folder.root), "data_hash": data_hash,
        "images": {"train": len(train_s), "validation": len(val_s), "skipped": len(folder.skipped)},
        "skipped": [{"path": str(p), "reason": why} for p, why in folder.skipped],
        "bottleneck_cache": cache or None,
        "workers": cluster.workers,
        "epochs_run": sum(len(p["history"]) for p in phases),
        "phases": phases,
        "final": {"loss": last["loss"], "accuracy": last["accuracy"],
                  "val_loss": last.get("val_loss"), "val_accuracy": last.get("val_accuracy")},
        "weights_sha256": weights_digest(classifier),
        "seconds": time.monotonic() - t_start,
        "config": cfg.as_json(),
    }
    paths.metrics_path.write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    paths.metrics = metrics
    if not cluster.is_chief:
        shutil.rmtree(out, ignore_errors=True)
    return paths


def weights_digest(model) -> str:
    """sha256 over every weight's bytes, in order: equal digests mean identical models (workers,
    reruns with the same seed)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def _phase(name: str, r, lr: float, **extra) -> dict:
    return {"name": name, "learning_rate": lr, "epochs_run": len(r.history), "best_epoch": r.best_epoch,
            "stopped_early": r.stopped_early, "history": r.history, **extra}


def _image_val(val_s, cfg: TrainConfig):
    if not val_s:
        return None
    return tf_dataset(val_s, cfg.resolution, batch_size=cfg.batch_size, augment=False, shuffle=False, seed=cfg.seed,
                      mean=cfg.mean, std=cfg.std, repeat=False)


def loop_events(logs: Path):
    from mobilegen.train.events import EventLog

    return EventLog(logs)


class _Offset:
    """The fine-tune phase's epochs continue the head phase's steps in TensorBoard."""

    def __init__(self, events, offset: int):
        self.events, self.offset = events, offset

    def scalars(self, run, step, values):
        self.events.scalars(run, step + self.offset, values)
