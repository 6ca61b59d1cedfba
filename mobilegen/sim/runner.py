"""Runs a plan on numpy inputs, keeping every tensor an operator writes."""

from __future__ import annotations

import numpy as np

from mobilegen.errors import UserInputError
from mobilegen.numerics.fp16 import round_to_half
from mobilegen.plan import Concat, ConstantKernel, Kernel, Pad, Plan
from mobilegen.sim.kernels import run_kernel


class Simulator:
    """Executes a Plan. Per-kernel prepared operands (e.g. GEMM weight matrices) are built on the
    first run and reused, as the generated engines upload weights once.

    A plan with float16 storage (precision fp16, mobilegen.numerics.fp16) runs its float kernels
    in float32 as usual and rounds what they store to binary16: exactly the tensors the plan
    stores as half (Plan.stores_half: the graph's float inputs and every float tensor a kernel
    writes, less those the plan keeps in float32), so the returned values are those the engine
    holds."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self._half = frozenset(i for i in range(len(plan.graph.tensors)) if plan.stores_half(i))
        self._cache: dict = {}

    def _stored(self, index: int, x: np.ndarray) -> np.ndarray:
        """`x` as tensor `index` stores it."""
        return round_to_half(x) if index in self._half and x.dtype == np.float32 else x

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
        values: dict[int, np.ndarray] = {i: self._stored(i, x) for i, x in zip(g.inputs, self.check_inputs(inputs))}
        for k in self.plan.kernels:
            values[k.output] = self.step(k, [values[i] for i in k.inputs])
        return values

    def step(self, k: Kernel, args: list[np.ndarray]) -> np.ndarray:
        """The value kernel `k` (of this plan) stores given its input arrays."""
        t = self.plan.graph.tensors[k.output]
        return self._stored(k.output, run_kernel(k, args, t.dtype, t.shape, self._cache))

    # ----------------------------------------------------------------------------------------------
    # Many images at once
    # ----------------------------------------------------------------------------------------------
    def batchable(self) -> bool:
        """Whether the plan's kernels can carry n images along the batch axis: every tensor a
        kernel reads or writes has a leading batch dimension of 1, and no kernel works across it
        (a PAD of the batch axis, a CONCATENATION along it). run_batch runs other plans image by
        image (same results, no speed-up)."""
        tensors = self.plan.graph.tensors
        for k in self.plan.kernels:
            if isinstance(k, ConstantKernel):
                continue
            if any(tuple(tensors[i].shape[:1]) != (1,) for i in (*k.inputs, k.output)):
                return False
            if isinstance(k, Pad) and tuple(np.asarray(k.paddings)[0]) != (0, 0):
                return False
            if isinstance(k, Concat) and k.axis == 0:
                return False
        return all(tuple(tensors[i].shape[:1]) == (1,) for i in self.plan.graph.inputs)

    @staticmethod
    def batch_shape(shape: tuple[int, ...], n: int) -> tuple[int, ...]:
        """The shape of n images' values of a tensor of `shape`: its leading batch 1 becomes n
        (a tensor without one gains a leading n)."""
        shape = tuple(shape)
        return (n, *shape[1:]) if shape[:1] == (1,) else (n, *shape)

    def check_batch_inputs(self, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
        """Inputs [n][...] (each the graph input's shape with its batch 1 replaced by n, all with
        the same n >= 1) and their n."""
        g = self.plan.graph
        if len(inputs) != len(g.inputs):
            raise UserInputError(f"the model takes {len(g.inputs)} inputs, got {len(inputs)}")
        inputs = [np.asarray(x) for x in inputs]
        n = inputs[0].shape[0] if inputs and inputs[0].ndim else 0
        if n < 1:
            raise UserInputError("run_batch needs at least one image per input")
        for idx, x in zip(g.inputs, inputs):
            t = g.tensors[idx]
            want = self.batch_shape(t.shape, n)
            if tuple(x.shape) != want:
                raise UserInputError(f"batched input for {t.describe()} has shape {list(x.shape)}; expected {list(want)}")
            if x.dtype != np.dtype(t.dtype):
                raise UserInputError(f"input for {t.describe()} has dtype {x.dtype}; expected {t.dtype}")
        return inputs, n

    def run_batch(self, inputs: list[np.ndarray], keep: str = "all") -> dict[int, np.ndarray]:
        """run() for n images at once: inputs [n][...] (see check_batch_inputs); returns tensor
        index -> [n][...] whose image i equals run() on image i bit for bit (value[i:i+1], or
        value[i] for a tensor without a leading batch 1). keep="outputs" returns only the graph's
        outputs and frees every other tensor once its last reader has run (memory for big n).
        Folded constants (ConstantKernel outputs) are broadcast views, the same for every image."""
        if keep not in ("all", "outputs"):
            raise ValueError(f"keep must be 'all' or 'outputs', not {keep!r}")
        g = self.plan.graph
        inputs, n = self.check_batch_inputs(inputs)
        if not self.batchable():
            return self._run_each(inputs, n, keep)
        values: dict[int, np.ndarray] = {i: self._stored(i, x) for i, x in zip(g.inputs, inputs)}
        last_read = self._last_reads() if keep == "outputs" else {}
        for pos, k in enumerate(self.plan.kernels):
            t = g.tensors[k.output]
            if isinstance(k, ConstantKernel):
                out = self.step(k, [])
                values[k.output] = np.broadcast_to(out.reshape(t.shape), self.batch_shape(t.shape, n))
                continue
            shape = self.batch_shape(t.shape, n)
            out = run_kernel(k, [values[i] for i in k.inputs], t.dtype, shape, self._cache, n)
            values[k.output] = self._stored(k.output, out)
            for i in set(k.inputs):  # a kernel may read one tensor twice (ADD(x, x))
                if last_read.get(i) == pos:
                    del values[i]
        if keep == "outputs":
            return {i: values[i] for i in g.outputs}
        return values

    def outputs_batch(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The graph outputs [n][...] for n images (run_batch keeping only the outputs)."""
        values = self.run_batch(inputs, keep="outputs")
        return [values[i] for i in self.plan.graph.outputs]

    def _last_reads(self) -> dict[int, int]:
        """Tensor -> position of the last kernel reading it, for tensors that are not outputs."""
        outputs = set(self.plan.graph.outputs)
        last = {}
        for pos, k in enumerate(self.plan.kernels):
            for i in k.inputs:
                if i not in outputs:
                    last[i] = pos
        return last

    def _run_each(self, inputs: list[np.ndarray], n: int, keep: str) -> dict[int, np.ndarray]:
        """run_batch's results from n separate run() calls (plans that are not batchable)."""
        g = self.plan.graph
        runs = []
        for j in range(n):
            one = [x[j : j + 1].reshape(g.tensors[i].shape) for i, x in zip(g.inputs, inputs)]
            values = self.run(one)
            runs.append({i: values[i] for i in g.outputs} if keep == "outputs" else values)
        return {
            i: np.stack(vs).reshape(self.batch_shape(g.tensors[i].shape, n))
            for i, vs in ((i, [r[i] for r in runs]) for i in runs[0])
        }

    def outputs(self, values: dict[int, np.ndarray]) -> list[np.ndarray]:
        return [values[i] for i in self.plan.graph.outputs]
