"""Runs a plan on numpy inputs, keeping every tensor an operator writes."""

from __future__ import annotations

import numpy as np

from mobilegen.errors import UserInputError
from mobilegen.numerics.fp16 import round_to_half
from mobilegen.plan import Kernel, Plan
from mobilegen.sim.kernels import run_kernel


class Simulator:
    """Executes a Plan. Per-kernel prepared operands (e.g. GEMM weight matrices) are built on the
    first run and reused, as the generated engines upload weights once.

    A plan with float16 storage (precision fp16, mobilegen.numerics.fp16) runs its float kernels
    in float32 as usual and rounds what they store to binary16: the graph's float inputs and every
    float tensor a kernel writes, so the returned values are those the engine holds."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self._half = plan.float_storage == "float16"
        self._cache: dict = {}

    def _stored(self, x: np.ndarray) -> np.ndarray:
        return round_to_half(x) if self._half and x.dtype == np.float32 else x

    def check_inputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        g = self.plan.graph
        if len(inputs) != len(g.inputs):
            raise UserInputError(f"the model takes {len(g.inputs)} inputs, got {len(inputs)}")
        out = []
        for idx, x in zip(g.inputs, inputs):
            t = g.tensors[idx]
            x = np.asarray(x)
            if tuple(x.shape) != tuple(t.shape):
                raise UserInputError(f"input for {t.describe()} has shape {list(x.shape)}; expected {list(t.shape)}")
            if x.dtype != np.dtype(t.dtype):
                raise UserInputError(f"input for {t.describe()} has dtype {x.dtype}; expected {t.dtype}")
            out.append(x)
        return out

    def run(self, inputs: list[np.ndarray]) -> dict[int, np.ndarray]:
        """Tensor index -> value for the graph inputs and every tensor a kernel writes."""
        g = self.plan.graph
        values: dict[int, np.ndarray] = {i: self._stored(x) for i, x in zip(g.inputs, self.check_inputs(inputs))}
        for k in self.plan.kernels:
            values[k.output] = self.step(k, [values[i] for i in k.inputs])
        return values

    def step(self, k: Kernel, args: list[np.ndarray]) -> np.ndarray:
        """The value kernel `k` (of this plan) stores given its input arrays."""
        t = self.plan.graph.tensors[k.output]
        return self._stored(run_kernel(k, args, t.dtype, t.shape, self._cache))

    def outputs(self, values: dict[int, np.ndarray]) -> list[np.ndarray]:
        return [values[i] for i in self.plan.graph.outputs]
