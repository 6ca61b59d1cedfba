"""Training data: image folders (one subfolder per class), the built-in rendered dataset, the
validation split, content hashes for caches, and decoding that matches the simulator's input.

folder.py and images.py need only numpy and PIL; pipeline.py (tf.data) imports TensorFlow lazily.
"""

from mobilegen.data.folder import ImageFolder, Sample, content_hash, report_skipped, resolve_data, scan_folder, split
from mobilegen.data.images import load_batch, load_image

__all__ = [
    "ImageFolder",
    "Sample",
    "content_hash",
    "load_batch",
    "load_image",
    "report_skipped",
    "resolve_data",
    "scan_folder",
    "split",
]
