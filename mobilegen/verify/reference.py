"""Run .tflite models in LiteRT's reference kernels (the ground truth mobilegen matches).

Only ``ai_edge_litert`` and numpy are needed here, not TensorFlow.
"""

from __future__ import annotations

import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

_RESOLVERS = {
    # BUILTIN_REF is the only resolver whose rounding is stable (see NUMERICS.md).
    "ref": OpResolverType.BUILTIN_REF,
    # The default resolver (XNNPACK delegate + optimized kernels), for comparison only.
    "xnnpack": OpResolverType.AUTO,
}


def _interpreter(model: bytes, resolver: str, preserve: bool) -> Interpreter:
    if resolver not in _RESOLVERS:
        raise ValueError(f"unknown resolver {resolver!r}; expected one of {sorted(_RESOLVERS)}")
    interp = Interpreter(
        model_content=bytes(model),
        experimental_op_resolver_type=_RESOLVERS[resolver],
        experimental_preserve_all_tensors=preserve,
        num_threads=1,
    )
    interp.allocate_tensors()
    return interp


def _set_inputs(interp: Interpreter, inputs: np.ndarray | list[np.ndarray]) -> None:
    details = interp.get_input_details()
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if len(inputs) != len(details):
        raise ValueError(f"model has {len(details)} inputs, got {len(inputs)}")
    for d, x in zip(details, inputs):
        x = np.asarray(x)
        if x.dtype != d["dtype"]:
            raise TypeError(f"input {d['name']!r} expects {d['dtype']}, got {x.dtype}")
        interp.set_tensor(d["index"], x.reshape(d["shape"]))


def run_reference(
    model: bytes, inputs: np.ndarray | list[np.ndarray], *, resolver: str = "ref"
) -> dict[int, np.ndarray]:
    """Invoke ``model`` once; return a copy of every operator-written tensor plus graph outputs.

    Keys are tensor indices of the primary subgraph. With ``resolver="xnnpack"`` delegated
    intermediate tensors are not meaningful; compare graph outputs only.
    """
    interp = _interpreter(model, resolver, preserve=True)
    _set_inputs(interp, inputs)
    interp.invoke()
    written = {int(t) for op in interp._get_ops_details() for t in op["outputs"] if t >= 0}
    written |= {int(d["index"]) for d in interp.get_output_details()}
    return {t: np.array(interp.get_tensor(t), copy=True) for t in sorted(written)}


def time_reference(
    model: bytes, input: np.ndarray | list[np.ndarray], *, resolver: str = "ref", repeats: int = 5
) -> float:
    """Seconds per invoke on one thread: the minimum over ``repeats`` after one warm-up."""
    interp = _interpreter(model, resolver, preserve=False)
    _set_inputs(interp, input)
    interp.invoke()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        interp.invoke()
        best = min(best, time.perf_counter() - t0)
    return best
