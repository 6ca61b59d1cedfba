"""A 64-bit perceptual hash (DCT pHash) and a near-pair search that is not quadratic.

The hash, decided once here:
- the image in grayscale (Pillow's "L": ITU-R 601 luma, alpha ignored), resized to 32x32 with
  Pillow's antialiased bilinear filter (an area-weighted average when shrinking);
- the orthonormal 2-D DCT-II of that 32x32 grid (values 0..255), `dct2`;
- its top-left 8x8 block: the lowest frequencies. The DC term (the mean brightness) is left out:
  it would only say "brighter than the median" for every image. Bit i (i = 8*row + col) of the hash
  is 1 when coefficient [row, col] is above the median of the 63 AC coefficients; bit 0 (the DC
  position) is always 0, so 63 bits carry information.
- Degenerate images. A flat image has all 63 AC coefficients zero, a plain gradient only a
  handful: the median then ties with most coefficients and the bits say nothing (two unrelated
  gradients would hash within a few bits of each other, and every flat image alike). Such an image
  is "low detail": fewer than MIN_DETAIL of its AC coefficients lie more than DETAIL_LEVEL (one
  grey level, in the orthonormal DCT's units) above the median, or fewer than MIN_DETAIL that far
  below it (a proper image has ~31 on each side; a gradient or a pattern finer than the 8x8 block
  sees, like a small checkerboard, has a few on one side and ties). Its hash is still returned,
  but callers leave low-detail images out of near-duplicate matching (exact duplicates are still
  found by their bytes), and `dataset check` lists them.

`near_pairs` finds every pair within a Hamming distance d by pigeonhole banding: split the 64 bits
into d + 1 bands; two hashes at most d apart agree on at least one whole band, so only hashes
sharing a band value are compared, and each candidate's exact distance is verified.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GRID = 32  # the side of the resized grayscale grid the DCT runs on
BLOCK = 8  # the side of the low-frequency block whose coefficients become bits
BITS = BLOCK * BLOCK
# An AC coefficient this far (or less) from the median carries no bit's worth of information: one
# grey level in orthonormal DCT units (a pixel noise of standard deviation s gives coefficients of
# standard deviation s, so rounding to 8 bits alone is ~0.3).
DETAIL_LEVEL = 1.0
# Fewer informative AC coefficients than this on either side of the median (of ~31 each) and the
# image is low detail (flat, a gradient, a single soft edge): its hash is not compared for
# near-duplicates. Photos, even at 8% brightness, have 20+ on each side.
MIN_DETAIL = 10
# The default largest Hamming distance of two near-duplicates. Resized, re-encoded and slightly
# brightened copies land at 0-4; unrelated images centre on ~32 (std ~4).
DEFAULT_NEAR_DISTANCE = 6
# Coefficients within this of the median count as equal to it: float noise, not signal.
_SNAP = 1e-6
# Buckets up to this size are compared in one vectorized step (g^2/2 pairs in memory).
_TRIANGLE_MAX = 1024


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix C (n x n): C @ x is the DCT-II of x, C @ C.T = I.
    C[k, i] = a(k) cos(pi (2i + 1) k / 2n), a(0) = sqrt(1/n), a(k > 0) = sqrt(2/n)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    c[0, :] = np.sqrt(1.0 / n)
    return c


_C = dct_matrix(GRID)


def dct2(grid: np.ndarray) -> np.ndarray:
    """The orthonormal 2-D DCT-II of a 2-D array (rows, then columns)."""
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"dct2: expected a 2-D grid, got shape {g.shape}")
    rows = _C if g.shape[0] == GRID else dct_matrix(g.shape[0])
    cols = _C if g.shape[1] == GRID else dct_matrix(g.shape[1])
    return rows @ g @ cols.T


def hash_grid(grid: np.ndarray) -> tuple[int, bool]:
    """(hash, detailed) of a GRID x GRID grayscale array (0..255): see the module docstring.
    detailed=False marks a low-detail image whose hash should not be compared."""
    g = np.asarray(grid, dtype=np.float64)
    if g.shape != (GRID, GRID):
        raise ValueError(f"hash_grid: expected a {GRID}x{GRID} grid, got shape {g.shape}")
    block = dct2(g)[:BLOCK, :BLOCK].reshape(-1)
    ac = block[1:]
    med = float(np.median(ac))
    bits = block > med + _SNAP  # float noise on exact ties (a flat image's zero AC terms) is not a bit
    bits[0] = False  # the DC position
    above = int(np.count_nonzero(ac > med + DETAIL_LEVEL))
    below = int(np.count_nonzero(ac < med - DETAIL_LEVEL))
    detailed = min(above, below) >= MIN_DETAIL
    value = int(np.dot(bits.astype(np.uint64), np.left_shift(np.uint64(1), np.arange(BITS, dtype=np.uint64))))
    return value, detailed


def image_grid(im) -> np.ndarray:
    """A Pillow image as the GRID x GRID grayscale float array the hash is computed on."""
    from PIL import Image

    gray = im if im.mode == "L" else im.convert("L")
    if gray.size != (GRID, GRID):
        gray = gray.resize((GRID, GRID), Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.float64)


def phash_image(im) -> tuple[int, bool]:
    """(hash, detailed) of a Pillow image."""
    return hash_grid(image_grid(im))


def phash_file(path) -> tuple[int, bool]:
    """(hash, detailed) of an image file, decoded at reduced size where the format allows (JPEG's
    draft mode): what mobilegen.dataset.index computes for every image."""
    from PIL import Image

    with Image.open(path) as im:
        draft(im)
        return phash_image(im)


def draft(im) -> None:
    """Ask a JPEG decoder for a grayscale image at the smallest DCT scale that stays at least
    2*GRID on a side: decoding a photo becomes several times cheaper, and the hash barely moves
    (the resize to GRID would average those pixels anyway). A no-op for other formats."""
    if im.format == "JPEG":
        im.draft("L", (2 * GRID, 2 * GRID))


def hamming(a: int, b: int) -> int:
    """The number of bits in which two hashes differ."""
    return (int(a) ^ int(b)).bit_count()


def _bands(max_distance: int) -> list[tuple[int, int]]:
    """(shift, width) of max_distance + 1 bands covering the 64 bits, as even as possible."""
    m = max_distance + 1
    base, extra = divmod(BITS, m)
    out, shift = [], 0
    for b in range(m):
        w = base + (1 if b < extra else 0)
        out.append((shift, w))
        shift += w
    return out


def near_pairs(hashes: Sequence[int], max_distance: int) -> list[tuple[int, int, int]]:
    """Every (i, j, distance) with i < j and hamming(hashes[i], hashes[j]) <= max_distance, sorted.
    Banding (see the module docstring) keeps it far below n^2 comparisons for hashes that are
    spread out; max_distance >= 63 has no bands to speak of and compares everything. Many equal
    hashes make one big bucket (quadratic in its size): pass distinct values and map back."""
    if max_distance < 0:
        raise ValueError(f"max_distance {max_distance}: expected 0 or more")
    n = len(hashes)
    if n < 2:
        return []
    h = np.fromiter((int(x) for x in hashes), dtype=np.uint64, count=n)
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    if max_distance >= BITS - 1:
        for i in range(n - 1):
            d = np.bitwise_count(h[i + 1 :] ^ h[i])
            js = np.nonzero(d <= max_distance)[0] + i + 1
            found_i.append(np.full(len(js), i, dtype=np.int64))
            found_j.append(js)
    else:
        for shift, width in _bands(max_distance):
            keys = (h >> np.uint64(shift)) & np.uint64((1 << width) - 1)
            order = np.argsort(keys, kind="stable")
            sk = keys[order]
            starts = np.flatnonzero(np.concatenate(([True], sk[1:] != sk[:-1])))
            ends = np.append(starts[1:], n)
            for s, e in zip(starts[ends - starts >= 2], ends[ends - starts >= 2]):
                members = np.sort(order[s:e])
                mh = h[members]
                g = len(members)
                if g <= _TRIANGLE_MAX:  # one vectorized comparison of the whole bucket
                    a, b = np.triu_indices(g, 1)
                    ok = np.bitwise_count(mh[a] ^ mh[b]) <= max_distance
                    found_i.append(members[a[ok]])
                    found_j.append(members[b[ok]])
                    continue
                for a in range(g - 1):  # a huge bucket: row by row, to bound the memory
                    d = np.bitwise_count(mh[a + 1 :] ^ mh[a])
                    ok = np.nonzero(d <= max_distance)[0] + a + 1
                    if len(ok):
                        found_i.append(np.full(len(ok), members[a], dtype=np.int64))
                        found_j.append(members[ok])
    if not found_i:
        return []
    ii = np.concatenate(found_i)
    jj = np.concatenate(found_j)
    code = np.unique(ii * n + jj)
    ii, jj = code // n, code % n
    dist = np.bitwise_count(h[ii] ^ h[jj])
    return [(int(i), int(j), int(d)) for i, j, d in zip(ii, jj, dist)]
