"""mobilegen.dataset.phash: the DCT against its textbook definition, near_pairs against brute force,
and the hash on real transformations (near) and unrelated, flat and gradient images (far or
left out as low detail).

The image helpers here (textured, jpeg_copy, gradients) are shared by test_dataset_check.py and
test_dataset_split.py.
"""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from mobilegen.dataset import phash
from mobilegen.dataset.phash import BITS, DEFAULT_NEAR_DISTANCE, dct2, hamming, hash_grid, near_pairs


def textured(seed: int, size: int = 48) -> Image.Image:
    """A photo-like RGB image: a smooth random colour field plus a few solid ellipses."""
    r = np.random.default_rng(seed)
    low = r.uniform(0, 255, (6, 6, 3)).astype(np.uint8)
    im = Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(im)
    for _ in range(3):
        x, y = (int(v) for v in r.integers(0, size, 2))
        s = int(r.integers(size // 8, size // 2))
        d.ellipse([x, y, x + s, y + s], fill=tuple(int(v) for v in r.integers(0, 255, 3)))
    return im


def jpeg_copy(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out


def gradients(size: int = 48) -> dict[str, Image.Image]:
    ramp = np.tile(np.linspace(0, 255, size), (size, 1))
    return {
        "horizontal": Image.fromarray(ramp.astype(np.uint8)),
        "vertical": Image.fromarray(ramp.T.astype(np.uint8)),
        "diagonal": Image.fromarray(((ramp + ramp.T) / 2).astype(np.uint8)),
        "reversed": Image.fromarray(ramp[:, ::-1].astype(np.uint8)),
    }


def flats() -> list[Image.Image]:
    return [Image.new(m, (40, 40), c) for m, c in [("L", 0), ("L", 255), ("L", 128), ("RGB", (200, 30, 30)), ("RGB", (10, 200, 90))]]


# --- the DCT -------------------------------------------------------------------------------------


def direct_dct2(x: np.ndarray) -> np.ndarray:
    """The orthonormal 2-D DCT-II as the textbook writes it, one coefficient at a time:
    X[k, l] = a(k) a(l) sum_i sum_j x[i, j] cos(pi (2i+1) k / 2M) cos(pi (2j+1) l / 2N),
    a(0) = sqrt(1/M), a(k) = sqrt(2/M) otherwise."""
    m, n = x.shape
    out = np.zeros((m, n))
    for k in range(m):
        for l in range(n):
            s = 0.0
            for i in range(m):
                for j in range(n):
                    s += x[i, j] * math.cos(math.pi * (2 * i + 1) * k / (2 * m)) * math.cos(math.pi * (2 * j + 1) * l / (2 * n))
            ak = math.sqrt((1 if k == 0 else 2) / m)
            al = math.sqrt((1 if l == 0 else 2) / n)
            out[k, l] = ak * al * s
    return out


@pytest.mark.parametrize("m,n", list(itertools.product(range(1, 7), repeat=2)))
def test_dct_matches_the_direct_sum_on_every_small_shape(m, n):
    rng = np.random.default_rng(m * 10 + n)
    for _ in range(3):
        x = rng.uniform(-255, 255, (m, n))
        np.testing.assert_allclose(dct2(x), direct_dct2(x), rtol=0, atol=1e-9)


def test_dct_matches_the_direct_sum_at_the_hash_size():
    # The 32x32 grid the hash uses (the cached matrix), against the direct sum written with
    # broadcasting instead of loops (the loop version would be 1M Python steps).
    rng = np.random.default_rng(7)
    n = phash.GRID
    i = np.arange(n)
    cos = np.cos(np.pi * np.outer(2 * i + 1, i) / (2 * n))  # cos[i, k]
    a = np.where(i == 0, math.sqrt(1 / n), math.sqrt(2 / n))
    for _ in range(3):
        x = rng.integers(0, 256, (n, n)).astype(float)
        want = np.einsum("ij,ik,jl->kl", x, cos, cos) * np.outer(a, a)
        got = dct2(x)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)
        assert math.isclose((got**2).sum(), (x**2).sum(), rel_tol=1e-12)  # orthonormal: Parseval


def test_hash_bits_are_the_block_against_the_median_of_the_ac_terms():
    # Build a grid whose 8x8 block is known (inverse DCT), then read the bits back.
    rng = np.random.default_rng(3)
    coeffs = np.zeros((phash.GRID, phash.GRID))
    block = rng.permutation(np.arange(-31, 33)).reshape(8, 8) * 4.0  # distinct, median of AC well defined
    coeffs[:8, :8] = block
    coeffs[0, 0] = 128 * phash.GRID  # the mean brightness: no bit
    C = phash.dct_matrix(phash.GRID)
    grid = C.T @ coeffs @ C
    value, detailed = hash_grid(grid)
    flat = block.reshape(-1)
    med = np.median(flat[1:])
    want = sum(1 << b for b in range(1, BITS) if flat[b] > med)
    assert value == want and detailed
    assert not value & 1  # bit 0, the DC position, is always 0
    assert bin(value).count("1") == 31  # 63 distinct AC terms: 31 above the median


# --- near_pairs ----------------------------------------------------------------------------------


def brute_pairs(hashes, d):
    return [(i, j, hamming(hashes[i], hashes[j]))
            for i in range(len(hashes)) for j in range(i + 1, len(hashes)) if hamming(hashes[i], hashes[j]) <= d]


def flip(h: int, k: int, rng) -> int:
    for b in rng.choice(BITS, size=k, replace=False):
        h ^= 1 << int(b)
    return h


@pytest.mark.parametrize("d", [0, 1, 2, 3, 5, 6, 7, 10, 15, 31, 62, 63, 64])
def test_near_pairs_equals_brute_force(d):
    rng = np.random.default_rng(100 + d)
    for trial in range(4):
        base = [int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2)) for _ in range(60)]
        hashes = list(base)
        for h in base[:30]:  # planted neighbours exactly at, one past, and just inside the threshold
            for k in {d, d + 1, max(d - 1, 0)}:
                if k <= BITS:
                    hashes.append(flip(h, k, rng))
        hashes += hashes[:5]  # and exact repeats
        rng.shuffle(hashes)
        got = near_pairs(hashes, d)
        want = brute_pairs(hashes, d)
        assert got == want, f"d={d} trial {trial}: {len(got)} pairs, brute force {len(want)}"
        assert any(dist == d for _, _, dist in want) or d > BITS


def test_near_pairs_at_the_threshold_in_every_band_position():
    # Differences placed so that exactly one band is untouched, for every band in turn: the
    # pigeonhole guarantee is tight there, and an off-by-one band split misses these pairs.
    for d in range(0, 12):
        bands = phash._bands(d)
        assert sum(w for _, w in bands) == BITS and bands[-1][0] + bands[-1][1] == BITS
        for keep, (shift, width) in enumerate(bands):
            others = [b for b in range(BITS) if not shift <= b < shift + width]
            diff = sum(1 << b for b in others[:: max(1, len(others) // d)][:d]) if d else 0
            assert bin(diff).count("1") == d
            h = 0x0123456789ABCDEF
            assert near_pairs([h, h ^ diff], d) == [(0, 1, d)], (d, keep)
            one_more = next(b for b in others if not diff >> b & 1) if d < len(others) else None
            if one_more is not None:
                assert near_pairs([h, h ^ diff ^ (1 << one_more)], d) == []


def test_near_pairs_is_not_quadratic_on_spread_hashes():
    rng = np.random.default_rng(1)
    hashes = [int(x) for x in rng.integers(0, 2**63, 20000, dtype=np.int64)]
    import time

    t = time.perf_counter()
    pairs = near_pairs(hashes, DEFAULT_NEAR_DISTANCE)
    assert time.perf_counter() - t < 5.0  # brute force in numpy is ~10 s here, in Python minutes
    assert pairs == []  # random 63-bit hashes are ~31 apart


def test_near_pairs_input_checks():
    assert near_pairs([], 3) == [] and near_pairs([5], 3) == []
    with pytest.raises(ValueError):
        near_pairs([1, 2], -1)


# --- the hash on images --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos():
    return [textured(s) for s in range(24)]


def test_transformed_copies_are_near(photos):
    worst = 0
    for im in photos[:8]:
        h, detailed = phash.phash_image(im)
        assert detailed
        copies = {
            "smaller": im.resize((32, 32), Image.Resampling.LANCZOS),
            "larger": im.resize((96, 96), Image.Resampling.BICUBIC),
            "jpeg q90": jpeg_copy(im, 90),
            "jpeg q40": jpeg_copy(im, 40),
            "brighter": ImageEnhance.Brightness(im).enhance(1.08),
            "darker": ImageEnhance.Brightness(im).enhance(0.92),
            "resized jpeg": jpeg_copy(im.resize((40, 40)), 70),
        }
        for what, c in copies.items():
            d = hamming(h, phash.phash_image(c)[0])
            assert d <= DEFAULT_NEAR_DISTANCE, f"{what}: {d} bits"
            worst = max(worst, d)
    assert worst <= 4


def test_unrelated_images_are_far(photos):
    hashes = [phash.phash_image(im) for im in photos]
    assert all(detailed for _, detailed in hashes)
    dists = [hamming(a[0], b[0]) for a, b in itertools.combinations(hashes, 2)]
    assert min(dists) > 2 * DEFAULT_NEAR_DISTANCE
    assert 26 <= np.mean(dists) <= 38


def test_flat_and_gradient_images_are_low_detail_and_never_near(photos):
    # Their AC terms are (almost) all tied at the median, so the bits say nothing: every flat image
    # hashes to 0, and two different gradients land a few bits apart. They are marked low detail,
    # which check and split leave out of near-duplicate matching.
    for im in flats():
        assert phash.phash_image(im) == (0, False)
    grads = {k: phash.phash_image(v) for k, v in gradients().items()}
    assert not any(detailed for _, detailed in grads.values()), grads
    # A darker photo is still a photo.
    dark = Image.fromarray((np.asarray(photos[0], dtype=float) * 0.08).astype(np.uint8))
    assert phash.phash_image(dark)[1]
    # And low-detail images are far from real ones anyway (not relied on, but true here).
    real = [phash.phash_image(p)[0] for p in photos]
    for h, _ in grads.values():
        assert min(hamming(h, r) for r in real) > DEFAULT_NEAR_DISTANCE


def test_jpeg_draft_decoding_barely_moves_the_hash(tmp_path, photos):
    for i, im in enumerate(photos[:6]):
        big = im.resize((256, 256), Image.Resampling.BICUBIC)
        p = tmp_path / f"{i}.jpg"
        big.save(p, quality=92)
        with Image.open(p) as full:
            full.load()
            want = phash.phash_image(full)[0]
        assert hamming(phash.phash_file(p)[0], want) <= 2
