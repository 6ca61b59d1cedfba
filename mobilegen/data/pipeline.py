"""tf.data input pipelines for training and evaluation (TensorFlow, imported lazily).

The dataset holds only file paths and labels; images are decoded as they are needed, by
images.load_image (so without augmentation the pixels are exactly the simulator's), in parallel,
and prefetched. A folder of any size streams through a bounded amount of memory.

Augmentation, per image: a random crop (60-100% of the area, aspect 3/4-4/3) resized back to the
resolution, a horizontal flip, and colour jitter (brightness, contrast, saturation), applied in
pixel space and normalized again, so values stay within what a real image can give. Every random
choice is a stateless op seeded from `seed` and a per-element random stream
(tf.data.Dataset.random, re-randomized each iteration), so a seed gives the same images every
run, each epoch sees different augmentations, and the parallel map cannot change the result.
"""

from __future__ import annotations

from mobilegen.data import images
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD

# Random crop: the share of the image's area kept, and the aspect ratios allowed.
CROP_AREA = (0.6, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)
# Colour jitter, in pixel values scaled to [0, 1].
BRIGHTNESS_DELTA = 0.15
CONTRAST = (0.75, 1.25)
SATURATION = (0.75, 1.25)


def tf_dataset(
    samples,
    resolution: int,
    *,
    batch_size: int,
    augment: bool,
    shuffle: bool,
    seed: int,
    mean: float = DEFAULT_MEAN,
    std: float = DEFAULT_STD,
    repeat: bool = False,
):
    """A tf.data.Dataset of (x [b][h][w][3] float32, y [b] int32) batches over `samples`
    (mobilegen.data.Sample), h = w = resolution. shuffle: a new order every epoch, the same
    sequence of orders for a seed. repeat: endless (for steps_per_epoch training)."""
    from mobilegen.convert import tensorflow

    tf = tensorflow()
    autotune = tf.data.AUTOTUNE
    paths = [str(s.path) for s in samples]
    labels = tf.constant([s.label for s in samples], dtype=tf.int32)
    ds = tf.data.Dataset.from_tensor_slices((tf.constant(paths, dtype=tf.string), labels))
    if shuffle:
        # The buffer holds paths, not images: the whole list fits, for a full shuffle.
        ds = ds.shuffle(max(len(paths), 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def decode(path):
        x = tf.numpy_function(
            lambda p: images.load_image(p.decode(), resolution, mean, std), [path], tf.float32, stateful=False
        )
        x.set_shape([resolution, resolution, 3])
        return x

    if augment:
        # One random int64 per element, a fresh stream each iteration (epoch), fixed by the seed.
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)))
        jitter = _augmenter(tf, resolution, mean, std, seed)
        ds = ds.map(lambda pl, r: (jitter(decode(pl[0]), r), pl[1]), num_parallel_calls=autotune, deterministic=True)
    else:
        ds = ds.map(lambda p, y: (decode(p), y), num_parallel_calls=autotune, deterministic=True)
    return ds.batch(batch_size).prefetch(autotune)


def _augmenter(tf, resolution: int, mean: float, std: float, seed: int):
    """x [h][w][3] normalized, r int64 -> x augmented (same shape, same normalization)."""
    lo, hi = (0.0 - mean) / std, (255.0 - mean) / std

    def jitter(x, r):
        seeds = tf.random.experimental.stateless_split(tf.stack([tf.constant(seed, tf.int64), r]), num=5)
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(x),
            bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
            seed=seeds[0],
            min_object_covered=0.0,
            aspect_ratio_range=CROP_ASPECT,
            area_range=CROP_AREA,
            use_image_if_no_bounding_boxes=True,
        )
        x = tf.image.resize(tf.slice(x, begin, size), [resolution, resolution], method="bilinear")
        x = tf.image.stateless_random_flip_left_right(x, seed=seeds[1])
        p = (x * std + mean) / 255.0  # colour ops expect [0, 1] pixels
        p = tf.image.stateless_random_brightness(p, BRIGHTNESS_DELTA, seed=seeds[2])
        p = tf.image.stateless_random_contrast(p, *CONTRAST, seed=seeds[3])
        p = tf.image.stateless_random_saturation(p, *SATURATION, seed=seeds[4])
        x = (tf.clip_by_value(p, 0.0, 1.0) * 255.0 - mean) / std
        return tf.clip_by_value(x, lo, hi)

    return jitter
