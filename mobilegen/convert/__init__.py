"""Keras MobileNets and TFLite conversion (the `train` extra: TensorFlow).

TensorFlow 2.21 writes start-up chatter (oneDNN, CUDA probing on machines without a GPU, CPU
features) and converter diagnostics straight to file descriptor 2, before or outside its own
log-level setting. `tensorflow()` imports it and `quiet()` wraps a conversion so that those known
lines are dropped and everything else on stderr is passed through unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Lines TensorFlow prints on every start or conversion that say nothing about the user's model.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} .*"                                      # absl INFO / WARNING lines
    r"|E\d{4} .*(cuda|cuInit|cuDNN|cuFFT|cuBLAS).*"      # CUDA probing on a machine without a GPU
    r"|To enable the following instructions: .*"          # cpu_feature_guard's second line
    r"|fully_quantize: \d+, inference_type: .*"           # the MLIR quantizer's settings echo
    r")$"
)


@contextlib.contextmanager
def quiet():
    """Drop TensorFlow's known noise written to fd 2 inside the block; keep the rest."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture, warnings.catch_warnings():
        # converter warnings about choices mobilegen makes on purpose (see convert/quantize.py)
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        absl = logging.getLogger("absl")
        level = absl.level
        absl.setLevel(logging.ERROR)  # "consider providing the trackable_obj": deliberate, see quantize._converter
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            absl.setLevel(level)
            capture.seek(0)
            kept = [ln for ln in capture.read().decode(errors="replace").splitlines() if ln and not _NOISE.match(ln)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)


def tensorflow():
    """`import tensorflow` without its start-up chatter (device probing included, which TF
    otherwise does, noisily, at the first op)."""
    if "tensorflow" not in sys.modules:
        with quiet():
            import tensorflow as tf

            tf.config.list_physical_devices()
    return sys.modules["tensorflow"]
