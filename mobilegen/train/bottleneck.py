"""The bottleneck cache: the base network's outputs for a list of images, computed once, on disk.

Transfer learning as in the seed article (TensorFlow's retrain.py): with base weights fixed, the
base output (the "bottleneck", `[features]` after average pooling) of an image never changes, so
it is computed once and only the head trains on it, epoch after epoch, with no augmentation (an
augmented image would need a new bottleneck each time).

Layout: CACHE/<key>/ with `x-00000.npy` (`[m][features]` float32) and `y-00000.npy` (`[m]` int32)
per shard of SHARD_SIZE images (in an order shuffled once, fixed by the key, so that every shard mixes
the classes and a streaming shuffle buffer is enough), and `manifest.json` (written last, so a complete
manifest means a complete entry). The key is the sha256 of the data's content hash, the base
weights file's sha256, the preprocessing (resolution, mean, std), arch and alpha: changing any
image, the weights or the preprocessing misses. Shards are computed one at a time (a large dataset
never sits in memory) and read back streaming through tf.data. Under --distribute multiworker
worker w computes the shards k with k mod W == w, then all read all shards (CACHE on a shared
filesystem).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mobilegen.convert import tensorflow

CACHE_VERSION = "mobilegen-bottleneck-v1"
SHARD_SIZE = 512
# Images decoded and run through the base at a time while filling a shard.
COMPUTE_BATCH = 64
MANIFEST = "manifest.json"
# Bottlenecks held for shuffling (at 1024 features, 16 MB).
SHUFFLE_BUFFER = 4096


def default_cache_dir() -> Path:
    root = os.environ.get("MOBILEGEN_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "mobilegen") / "bottlenecks"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def cache_key(*, data_hash: str, weights_hash: str, resolution: int, mean: float, std: float, arch: str, alpha: float,
              shard_size: int = SHARD_SIZE) -> str:
    spec = {"version": CACHE_VERSION, "data": data_hash, "weights": weights_hash, "resolution": int(resolution),
            "mean": float(mean), "std": float(std), "arch": arch, "alpha": float(alpha)}
    if shard_size != SHARD_SIZE:  # another layout of the same bottlenecks (tests use small shards)
        spec["shard_size"] = int(shard_size)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


@dataclass
class Entry:
    dir: Path
    key: str
    n: int
    features: int
    shards: list[int] = field(default_factory=list)  # images per shard, in order
    hit: bool = False

    def x_path(self, k: int) -> Path:
        return self.dir / f"x-{k:05d}.npy"

    def y_path(self, k: int) -> Path:
        return self.dir / f"y-{k:05d}.npy"


def _read_manifest(d: Path, key: str) -> Entry | None:
    try:
        m = json.loads((d / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if m.get("key") != key:
        return None
    e = Entry(d, key, int(m["n"]), int(m["features"]), [int(c) for c in m["shards"]], hit=True)
    if not all(e.x_path(k).is_file() and e.y_path(k).is_file() for k in range(len(e.shards))):
        return None
    return e


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def ensure(base, samples, *, key: str, root: Path, cluster, resolution: int, mean: float, std: float,
           shard_size: int = SHARD_SIZE, progress=None) -> Entry:
    """The cache entry for `samples` under `root/key`: read back when complete (a hit), else
    computed (this worker's shards), then completed by the chief's manifest (a miss)."""
    from mobilegen.data import load_batch

    tf = tensorflow()
    d = Path(root) / key
    found = _read_manifest(d, key)
    # Every worker must take the same branch (a miss has barriers): all agree when the cache is
    # shared; a worker that sees no manifest while others do still recomputes consistently below.
    if found is not None:
        return found
    d.mkdir(parents=True, exist_ok=True)
    features = int(base.output.shape[-1])
    counts = [min(shard_size, len(samples) - s) for s in range(0, len(samples), shard_size)]
    e = Entry(d, key, len(samples), features, counts, hit=False)

    @tf.function
    def forward(x):
        return base(x, training=False)

    # Samples come sorted by class; a fixed permutation makes each shard a mix of classes.
    order = np.random.default_rng(int(key[:16], 16)).permutation(len(samples))
    samples = [samples[i] for i in order]
    mine = [k for k in range(len(counts)) if k % cluster.workers == cluster.index]
    for done, k in enumerate(mine, 1):
        if e.x_path(k).is_file() and e.y_path(k).is_file():
            continue  # an interrupted run's shard (written atomically, so whole)
        chunk = samples[k * shard_size: k * shard_size + counts[k]]
        parts = []
        for s in range(0, len(chunk), COMPUTE_BATCH):
            x = load_batch([c.path for c in chunk[s:s + COMPUTE_BATCH]], resolution, mean, std)
            parts.append(np.asarray(forward(tf.constant(x)), dtype=np.float32))
        _save_atomic(e.x_path(k), np.concatenate(parts))
        _save_atomic(e.y_path(k), np.array([c.label for c in chunk], dtype=np.int32))
        if progress is not None:
            progress(f"bottlenecks: shard {done}/{len(mine)} ({counts[k]} images)")
    cluster.barrier()  # every worker's shards are on disk
    if cluster.is_chief:
        manifest = {"key": key, "n": e.n, "features": features, "shards": counts, "version": CACHE_VERSION}
        tmp = d / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, d / MANIFEST)
    cluster.barrier()
    return e


def dataset(entry: Entry, *, batch: int, shuffle: bool, seed: int, repeat: bool, num_shards: int = 1, index: int = 0):
    """tf.data of (x [b][features] float32, y [b] int32), streamed shard by shard; with
    num_shards > 1 this pipeline's share (every num_shards-th image from `index`)."""
    tf = tensorflow()
    xs = [str(entry.x_path(k)) for k in range(len(entry.shards))]
    ys = [str(entry.y_path(k)) for k in range(len(entry.shards))]
    features = entry.features

    def load(xp, yp):
        return np.load(xp.decode()), np.load(yp.decode())

    def read(xp, yp):
        x, y = tf.numpy_function(load, [xp, yp], [tf.float32, tf.int32], stateful=False)
        x.set_shape([None, features])
        y.set_shape([None])
        return tf.data.Dataset.from_tensor_slices((x, y))

    files = tf.data.Dataset.from_tensor_slices((xs, ys))
    if shuffle:  # the same seed on every worker: the same order, so the shards below partition it
        files = files.shuffle(len(xs), seed=seed, reshuffle_each_iteration=True)
    ds = files.flat_map(read)
    if num_shards > 1:
        ds = ds.shard(num_shards, index)
    if shuffle:
        ds = ds.shuffle(min(entry.n, SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch).prefetch(2)
