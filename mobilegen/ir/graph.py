"""Graph IR: what a .tflite subgraph says, in plain Python and numpy, independent of the flatbuffer.

Layouts are TFLite's at this level: activations [n][h][w][c]; CONV_2D filters [out][kh][kw][in];
DEPTHWISE_CONV_2D filters [1][kh][kw][in*dm]; FULLY_CONNECTED weights [out][in]. Every repacking for
the GPU happens in mobilegen.layout, never here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The tensor types the reader accepts, as numpy dtype names.
SUPPORTED_DTYPES = ("float32", "float16", "int8", "uint8", "int16", "int32", "int64", "bool")


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point).

    `scale` and `zero_point` have one entry per slice along `axis` (per-channel) or a single entry
    (per-tensor). `scale` keeps TFLite's float32 values: the kernels derive their multipliers from
    those exact floats.
    """

    scale: np.ndarray  # float32, shape [k]
    zero_point: np.ndarray  # int64, shape [k]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def s(self) -> float:
        """The per-tensor scale as a Python float (the float32 value, widened exactly)."""
        return float(self.scale[0])

    @property
    def zp(self) -> int:
        """The per-tensor zero point."""
        return int(self.zero_point[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "scale": [float(v) for v in self.scale],
            "zero_point": [int(v) for v in self.zero_point],
            "quantized_dimension": int(self.axis),
        }


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quantization | None = None
    data: np.ndarray | None = None  # constant contents, already shaped, or None for activations
    shape_signature: tuple[int, ...] | None = None  # -1 marks a dynamic dimension

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    def describe(self) -> str:
        return f"tensor {self.index} '{self.name}' {list(self.shape)} {self.dtype}"


@dataclass
class Op:
    index: int
    opcode: str  # TFLite builtin name, e.g. "CONV_2D"
    inputs: tuple[int, ...]  # tensor indices; -1 marks an absent optional input
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    version: int = 1

    def describe(self) -> str:
        return f"op {self.index} ({self.opcode})"


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    description: str = ""
    schema_version: int = 3

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def producers(self) -> dict[int, Op]:
        """Tensor index -> the op that writes it."""
        return {t: op for op in self.ops for t in op.outputs}

    def written_tensors(self) -> list[int]:
        """Every tensor an operator writes, in graph order (the dump contract)."""
        return [t for op in self.ops for t in op.outputs]

    def param_count(self) -> int:
        return sum(t.size for t in self.tensors if t.is_const)

    def param_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors if t.is_const)
