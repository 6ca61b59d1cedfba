"""Image batches for training: helper A's mobilegen.data.pipeline.tf_dataset when present.

FALLBACK (remove when mobilegen/data/pipeline.py lands): a minimal tf.data pipeline with the same
signature, decoding through mobilegen.data.load_image (the simulator's pixels) and a flip + crop +
brightness/contrast augmentation.
"""

from __future__ import annotations

import numpy as np

from mobilegen.convert import tensorflow


def tf_dataset(samples, resolution: int, *, batch_size: int, augment: bool, shuffle: bool, seed: int,
               mean: float = 127.5, std: float = 127.5, repeat: bool = False):
    try:
        from mobilegen.data.pipeline import tf_dataset as real
    except ImportError:
        real = _fallback
    return real(samples, resolution, batch_size=batch_size, augment=augment, shuffle=shuffle, seed=seed,
                mean=mean, std=std, repeat=repeat)


def _fallback(samples, resolution, *, batch_size, augment, shuffle, seed, mean, std, repeat):
    from mobilegen.data import load_image

    tf = tensorflow()
    paths = [str(s.path) for s in samples]
    labels = np.array([s.label for s in samples], dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def decode(p, y):
        x = tf.numpy_function(lambda q: load_image(q.decode(), resolution, mean, std), [p], tf.float32, stateful=False)
        x.set_shape([resolution, resolution, 3])
        return x, y

    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augment:
        ds = ds.map(lambda x, y: (_augment(tf, x, resolution), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _augment(tf, x, resolution):
    x = tf.image.random_flip_left_right(x)
    size = tf.cast(tf.cast(resolution, tf.float32) * tf.random.uniform([], 0.8, 1.0), tf.int32)
    x = tf.image.random_crop(x, tf.stack([size, size, 3]))
    x = tf.image.resize(x, (resolution, resolution))
    x = tf.image.random_brightness(x, 0.2)
    x = tf.image.random_contrast(x, 0.8, 1.2)
    return tf.clip_by_value(x, -1.0, 1.0)
