"""Constant sparse tensors (the schema's SparsityParameters) -> ordinary dense arrays.

What the file stores, for a tensor of dense shape `shape` = (d0, ..., d{n-1}):

- `block_map` [k]: the original dims that are blocked, ascending (k = 0: not blocked). Blocked
  dim block_map[b] of size D is split into D / B_b blocks of B_b elements, so the *expanded*
  tensor has n + k dims: [blocked d0]...[blocked d{n-1}][B_0]...[B_{k-1}].
- `traversal_order` [n + k]: the order the levels walk the expanded dims; level l walks expanded
  dim traversal_order[l]. Its first n entries permute 0..n-1, its last k permute n..n+k-1.
- `dim_metadata` [n + k]: one entry per *level* (not per dim). DENSE: the level has
  `dense_size` children under every node of the level above. SPARSE_CSR: node p of the level
  above has the children array_segments[p] .. array_segments[p+1] - 1 of this level, child c
  sitting at coordinate array_indices[c] of the walked dim.
- The buffer holds one value per leaf of the last level, leaves in depth-first order.

The element a leaf addresses, as FormatConverter::Populate computes it
(tensorflow/lite/kernels/internal/utils/sparsity_format_converter.cc):

    orig[traversal_order[l]] = coord[l]                                       for l < n
    orig[block_map[b]] = orig[block_map[b]] * B_b + coord[l],  b = traversal_order[l] - n,  l >= n
    dense[orig[0]][orig[1]]...[orig[n-1]] = values[leaf]

where TFLite reads the block size B_b as dim_metadata[traversal_order[n + b]].dense_size (that
is the level walking block b whenever the block levels' order is its own inverse, which holds
for k <= 2; any other case is accepted only where the sizes agree, so the result is LiteRT's).

LiteRT trusts the metadata (an out-of-range index writes outside the tensor); here every size,
segment and index is checked, and anything that is not a well-formed CSR description of exactly
the stored values raises SparsityError with what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DENSE, SPARSE_CSR = 0, 1
MAX_DENSE_BYTES = 1 << 30  # a densified tensor larger than this is refused, not allocated
FORMAT_NAMES = {DENSE: "DENSE", SPARSE_CSR: "SPARSE_CSR"}


class SparsityError(ValueError):
    """Malformed sparsity metadata (the reader adds the file and tensor)."""


@dataclass(frozen=True)
class DimensionMetadata:
    """One level: DENSE with `dense_size`, or SPARSE_CSR with `segments` and `indices`."""

    format: int
    dense_size: int = 0
    segments: np.ndarray | None = None  # [nodes of the level above + 1]
    indices: np.ndarray | None = None  # [nodes of this level]


@dataclass(frozen=True)
class Sparsity:
    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dim_metadata: tuple[DimensionMetadata, ...]


def _is_permutation(values, lo: int, hi: int) -> bool:
    return sorted(values) == list(range(lo, hi))


def block_sizes(shape: tuple[int, ...], sp: Sparsity) -> list[int]:
    """B_b per block dim, checked: a DENSE level, dividing the dim it blocks."""
    n, k = len(shape), len(sp.block_map)
    if list(sp.block_map) != sorted(set(sp.block_map)) or any(not 0 <= d < n for d in sp.block_map):
        raise SparsityError(f"block_map {list(sp.block_map)}; expected distinct ascending dims of the rank-{n} shape")
    if len(sp.traversal_order) != n + k:
        raise SparsityError(
            f"traversal_order has {len(sp.traversal_order)} entries; expected {n + k} "
            f"(rank {n} + {k} block dims)"
        )
    if not (_is_permutation(sp.traversal_order[:n], 0, n) and _is_permutation(sp.traversal_order[n:], n, n + k)):
        blocks = f" followed by one of {n}..{n + k - 1}" if k else ""
        raise SparsityError(
            f"traversal_order {list(sp.traversal_order)}; expected a permutation of 0..{n - 1}{blocks}"
        )
    if len(sp.dim_metadata) != n + k:
        raise SparsityError(f"{len(sp.dim_metadata)} dim_metadata entries; expected {n + k}, one per traversal level")
    sizes = []
    for b, d in enumerate(sp.block_map):
        lvl = sp.traversal_order[n + b]  # TFLite's reading (see the module docstring)
        dm = sp.dim_metadata[lvl]
        if dm.format != DENSE or dm.dense_size <= 0 or shape[d] % dm.dense_size:
            got = f"DENSE size {dm.dense_size}" if dm.format == DENSE else FORMAT_NAMES.get(dm.format, dm.format)
            raise SparsityError(
                f"block {b} of dim {d} (size {shape[d]}) takes its size from dim_metadata[{lvl}], {got}; "
                f"expected a DENSE size that divides {shape[d]}"
            )
        sizes.append(int(dm.dense_size))
    return sizes


def densify(values: np.ndarray, shape: tuple[int, ...], sp: Sparsity) -> np.ndarray:
    """The dense array [d0]...[d{n-1}] that `values` (one per leaf) and `sp` describe."""
    shape = tuple(int(d) for d in shape)
    n = len(shape)
    if any(d < 0 for d in shape):
        raise SparsityError(f"dense shape {list(shape)} has a dynamic dimension; expected a fixed shape")
    values = np.asarray(values)
    count = math.prod(shape)  # Python ints: no overflow on absurd shapes
    if count * values.dtype.itemsize > MAX_DENSE_BYTES:
        raise SparsityError(
            f"dense shape {list(shape)} needs {count * values.dtype.itemsize} bytes; "
            f"expected at most {MAX_DENSE_BYTES} (1 GiB)"
        )
    bs = block_sizes(shape, sp)
    # expanded[e]: [blocked d0]...[blocked d{n-1}][B_0]...[B_{k-1}]
    expanded = list(shape)
    for b, d in enumerate(sp.block_map):
        expanded[d] //= bs[b]
    expanded += bs

    # Walk the levels keeping, for every node of the current level, its coordinate on each level
    # so far: coords[l][node]. Nodes stay in depth-first order (parent-major).
    coords: list[np.ndarray] = []
    nodes = 1
    for lvl, dm in enumerate(sp.dim_metadata):
        size = expanded[sp.traversal_order[lvl]]
        if dm.format == DENSE:
            if dm.dense_size != size:
                raise SparsityError(f"dim_metadata[{lvl}] is DENSE of size {dm.dense_size}; expected {size}")
            coords = [np.repeat(c, size) for c in coords] + [np.tile(np.arange(size, dtype=np.int64), nodes)]
            nodes *= size
        elif dm.format == SPARSE_CSR:
            coords.append(_csr_level(lvl, dm, size, nodes, coords))
            nodes = len(coords[-1])
        else:
            raise SparsityError(f"dim_metadata[{lvl}] has format {dm.format}; expected DENSE (0) or SPARSE_CSR (1)")

    if values.ndim != 1 or len(values) != nodes:
        raise SparsityError(f"the buffer holds {values.size} values but the sparsity metadata addresses {nodes}")
    orig: list[np.ndarray] = [np.zeros(nodes, np.int64)] * n
    for lvl in range(n):
        orig[sp.traversal_order[lvl]] = coords[lvl]
    for lvl in range(n, len(sp.traversal_order)):
        b = sp.traversal_order[lvl] - n
        d = sp.block_map[b]
        orig[d] = orig[d] * bs[b] + coords[lvl]
    # Row-major flat index into [d0]...[d{n-1}]; every coordinate is in range by construction.
    flat = np.zeros(nodes, np.int64)
    for d in range(n):
        flat = flat * shape[d] + orig[d]
    dense = np.zeros(count, dtype=values.dtype)
    dense[flat] = values
    return dense.reshape(shape)


def _csr_level(lvl: int, dm: DimensionMetadata, size: int, parents: int, coords: list[np.ndarray]) -> np.ndarray:
    """Coordinates of the children of a SPARSE_CSR level; `coords` are re-indexed by parent."""
    if dm.segments is None or dm.indices is None:
        raise SparsityError(f"dim_metadata[{lvl}] is SPARSE_CSR without array_segments and array_indices")
    seg = np.asarray(dm.segments, dtype=np.int64)
    idx = np.asarray(dm.indices, dtype=np.int64)
    if len(seg) != parents + 1:
        raise SparsityError(
            f"dim_metadata[{lvl}] array_segments has {len(seg)} entries; expected {parents + 1} "
            f"(one per node of the level above, plus one)"
        )
    counts = np.diff(seg)
    if seg[0] != 0 or np.any(counts < 0) or seg[-1] != len(idx):
        raise SparsityError(
            f"dim_metadata[{lvl}] array_segments runs {int(seg[0])}..{int(seg[-1])}"
            f"{' and decreases' if np.any(counts < 0) else ''}; expected non-decreasing from 0 to "
            f"{len(idx)} (the array_indices length)"
        )
    bad = np.flatnonzero((idx < 0) | (idx >= size))
    if bad.size:
        c = int(bad[0])
        raise SparsityError(f"dim_metadata[{lvl}] array_indices[{c}] is {int(idx[c])}; expected 0..{size - 1}")
    parent = np.repeat(np.arange(parents, dtype=np.int64), counts)
    # [child]: within one parent's segment the indices must strictly increase (no duplicates).
    step = (parent[1:] == parent[:-1]) & (idx[1:] <= idx[:-1])
    if np.any(step):
        c = int(np.argmax(step)) + 1
        raise SparsityError(
            f"dim_metadata[{lvl}] array_indices[{c}] is {int(idx[c])} after {int(idx[c - 1])} in the same segment; "
            "expected strictly increasing indices"
        )
    coords[:] = [cc[parent] for cc in coords]
    return idx
