"""Runs a plan on numpy inputs, keeping every tensor an operator writes."""

from __future__ import annotations

import numpy as np

from mobilegen.errors import UserInputError
from mobilegen.plan import Plan
from mobilegen.sim.kernels import run_kernel


class Simulator:
    """Executes a Plan. Per-kernel prepared operands (e.g. GEMM weight matrices) are built on the
    first run and reused, as the generated engines upload weights once."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self._cache: dict = {}

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
        values: dict[int, np.ndarray] = dict(zip(g.inputs, self.check_inputs(inputs)))
        for k in self.plan.kernels:
            t = g.tensors[k.output]
            values[k.output] = run_kernel(k, [values[i] for i in k.inputs], t.dtype, t.shape, self._cache)
        return values

    def outputs(self, values: dict[int, np.ndarray]) -> list[np.ndarray]:
        return [values[i] for i in self.plan.graph.outputs]
