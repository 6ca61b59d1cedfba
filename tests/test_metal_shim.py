"""The Metal library's helpers (templates/kernels/metal/library.metal.j2, rendered as the engine
ships it) compiled through the host shim (templates/cpp/metal_host/metal_shim.h) with clang-19
into a small C++ driver, element for element against mobilegen.numerics.

The driver is built with -O2 and UBSan in trap mode (no runtime library needed), so a helper
that relies on signed overflow or shifts out of range fails too, not only a wrong value. The grids
are test_native_numerics' (int32 edges with every tie, exhaustive int16 at every shift 0..31, the
dense exp / reciprocal grids, random tuples); half conversion is checked against numpy float16
over float32 bit patterns of every kind (ties, subnormals, overflow, NaN and infinity).

Seeded bugs (test_seeded_bugs_are_caught): srdhm without gemmlowp's nudge (mulhi doubled, as MNN
computes it) and rdbpot with a hadd-style threshold (halves rounded up, not away from zero) each
make the comparison fail.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mobilegen.numerics import fixedpoint as fp
from tests.harness import require_tool
from tests.test_native_numerics import (
    assert_same, exp_inputs, exp_quarter_inputs, int16_all, int32_edges, multipliers, pairs, random_int32,
    reciprocal_inputs, reciprocal_unit_inputs,
)

ROOT = Path(__file__).resolve().parents[1]
SHIM_DIR = ROOT / "templates" / "cpp" / "metal_host"
CACHE = Path(__file__).parent / ".model_cache" / "native"
INT32_MIN, INT32_MAX = fp.INT32_MIN, fp.INT32_MAX
SATURATED = 1 << 24  # the helpers' saturation magnitude (library.metal.j2)
TIMEOUT_S = 300
CLANG_FLAGS = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-attributes",
               "-ffp-contract=off", "-Xclang", "-ffloat16-excess-precision=none"]

# name -> the statement computing `o` (int4) from `v` (int4, one input row).
BODIES = {
    "srdhm": "o.x = srdhm(v.x, v.y);",
    "rdbpot": "o.x = rdbpot(v.x, v.y);",
    "mbqm": "o.x = mbqm(v.x, v.y, v.z);",
    "mbqm4": "o = mbqm4(v, int4(v.y, v.w, v.x, v.z) | 0x40000000, int4(v.z & 31, -(v.x & 31), v.w & 31, -(v.y & 31)));",
    "sat_mul_by_pot": "o.x = sat_mul_by_pot(v.x, v.y);",
    "exp_quarter": "o.x = exp_on_interval_between_negative_one_quarter_and_0_excl(v.x);",
    "exp_on_negative_values": "o.x = exp_on_negative_values(v.x);",
    "rounding_half_sum_with_one": "o.x = rounding_half_sum_with_one(v.x);",
    "one_over_one_plus_x": "o.x = one_over_one_plus_x_for_x_in_0_1(v.x);",
    "get_reciprocal": "int n; o.x = get_reciprocal(v.x, n); o.y = n;",
    "wrapping": "o.x = wrapping_add(v.x, v.y); o.y = wrapping_shl(v.x, v.z & 31); "
                "o.zw = wrapping_add(int4(v.x, v.y, 0, 0), int4(v.y, v.y, 0, 0)).xy;",
    "unpack_s8": "o = unpack_s8(as_type<uint>(v.x));",
    "unpack_u8": "o = unpack_u8(as_type<uint>(v.x));",
    "pack8_idot": "o.x = as_type<int>(pack8(v)); o.y = idot(v, v.yzwx);",
    "quantize_value": "o.x = quantize_value(as_type<float>(v.x), as_type<uint>(v.y), v.z);",
    "scale_and_round": "o.x = scale_and_round(v.x, as_type<uint>(v.y), as_type<uint>(v.z));",
    "float_to_half": "half4 h = half4(as_type<float4>(v)); ushort4 b = as_type<ushort4>(h); "
                     "o = int4(b.x, b.y, b.z, b.w);",
    "half_to_float": "o = as_type<int4>(float4(as_type<half4>(ushort4(v & 0xffff))));",
}

DRIVER = r"""// mobilegen test driver (tests/test_metal_shim.py): one library helper over [n][4] int32 rows.
#include <cstdio>
#include <cstring>
#include <vector>

#include "metal_shim.h"

#include "library.metal"

namespace mobilegen {
namespace metal_host {
void threadgroup_barrier_wait() {}  // the helpers use no threadgroup memory
}  // namespace metal_host
}  // namespace mobilegen

static bool run(const char* name, int4 v, thread int4& o) {
%s
  return false;
}

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  FILE* f = std::fopen(argv[2], "rb");
  if (!f) return 2;
  std::vector<int> data;
  int buffer[4096];
  size_t got;
  while ((got = std::fread(buffer, sizeof(int), 4096, f)) > 0) data.insert(data.end(), buffer, buffer + got);
  std::fclose(f);
  std::vector<int> out(data.size());
  for (size_t i = 0; i + 3 < data.size(); i += 4) {
    int4 v = int4(data[i], data[i + 1], data[i + 2], data[i + 3]);
    int4 o = int4(0);
    if (!run(argv[1], v, o)) {
      std::fprintf(stderr, "unknown helper %%s\n", argv[1]);
      return 2;
    }
    for (int k = 0; k < 4; ++k) out[i + k] = o[k];
  }
  FILE* g = std::fopen(argv[3], "wb");
  if (!g || std::fwrite(out.data(), sizeof(int), out.size(), g) != out.size()) return 2;
  std::fclose(g);
  return 0;
}
"""


def driver_source() -> str:
    cases = "\n".join(f'  if (!std::strcmp(name, "{name}")) {{ {body} return true; }}' for name, body in BODIES.items())
    return DRIVER % cases


def build_driver(library: str, tag: str = "metal_helpers") -> Path:
    """The driver over `library` (the rendered library head), cached by its sources."""
    clang = require_tool("clang-19", "clang-19")
    source = driver_source()
    shim = (SHIM_DIR / "metal_shim.h").read_bytes() + (SHIM_DIR / "host_kernels.h").read_bytes()
    key = hashlib.sha256(library.encode() + source.encode() + shim + " ".join(CLANG_FLAGS).encode()).hexdigest()[:16]
    exe = CACHE / f"{tag}-{key}"
    if exe.exists():
        return exe
    work = CACHE / f"{tag}-{key}.src"
    work.mkdir(parents=True, exist_ok=True)
    (work / "library.metal").write_text(library)
    (work / "driver.cpp").write_text(source)
    tmp = exe.with_name(exe.name + f".{os.getpid()}.tmp")
    cmd = [clang, *CLANG_FLAGS, "-fsanitize=undefined", "-fsanitize-trap=undefined", "-I", str(SHIM_DIR),
           "-I", str(work), "-x", "c++", str(work / "driver.cpp"), "-o", str(tmp), "-lstdc++"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stderr[-4000:]}"
    tmp.replace(exe)
    return exe


def run_helper(exe: Path, work: Path, name: str, *columns, check: bool = True) -> np.ndarray | None:
    """BODIES[name] over the rows zip(*columns) (int32, up to 4 columns): [n, 4] int64 (None
    when check is False and the driver failed, e.g. UBSan)."""
    work.mkdir(parents=True, exist_ok=True)
    cols = np.broadcast_arrays(*[np.asarray(c, dtype=np.int64) for c in columns])
    rows = np.zeros((cols[0].size, 4), dtype=np.int64)
    for j, c in enumerate(cols):
        assert c.min(initial=0) >= INT32_MIN and c.max(initial=0) <= INT32_MAX, name
        rows[:, j] = c.reshape(-1)
    rows.astype(np.int32).tofile(work / f"{name}.in")
    r = subprocess.run([str(exe), name, str(work / f"{name}.in"), str(work / f"{name}.out")],
                       capture_output=True, text=True, timeout=TIMEOUT_S)
    if not check and r.returncode != 0:
        return None
    assert r.returncode == 0, f"driver {name} failed ({r.returncode}): {r.stderr[-3000:]}"
    return np.fromfile(work / f"{name}.out", np.int32).astype(np.int64).reshape(-1, 4)


def library_head() -> str:
    from mobilegen.render.metal import render_library_head

    return render_library_head()


@pytest.fixture(scope="module")
def exe() -> Path:
    return build_driver(library_head())


# --------------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------------
def srdhm_grid() -> tuple[np.ndarray, np.ndarray]:
    a, b = pairs(int32_edges(), int32_edges())
    return np.concatenate([a, random_int32(300_000, 1)]), np.concatenate([b, random_int32(300_000, 2)])


def rdbpot_grid() -> tuple[np.ndarray, np.ndarray]:
    return pairs(np.concatenate([int16_all(), int32_edges(), random_int32(20_000, 3)]), np.arange(32))


def float64_words(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low word, high word) of each float64, as int32."""
    w = np.asarray(x, "<f8").view("<u4").reshape(-1, 2).astype(np.int64)
    return fp.wrap_int32(w[:, 0]), fp.wrap_int32(w[:, 1])


def saturate(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.minimum(np.abs(x), SATURATED)


# --------------------------------------------------------------------------------------------------
# Fixed point
# --------------------------------------------------------------------------------------------------
def test_srdhm(exe, tmp_path):
    """Every pair of edges (INT32_MIN * INT32_MIN, the products' ties among them) and random pairs."""
    a, b = srdhm_grid()
    assert_same("srdhm", run_helper(exe, tmp_path, "srdhm", a, b)[:, 0], fp.srdhm(a, b), (a, b))


def test_rdbpot(exe, tmp_path):
    """Every int16 value and every edge at every exponent 0..31 (negative halves included)."""
    x, e = rdbpot_grid()
    assert_same("rdbpot", run_helper(exe, tmp_path, "rdbpot", x, e)[:, 0], fp.rdbpot(x, e), (x, e))


def test_mbqm(exe, tmp_path):
    """Edges x multipliers x every shift -31..31 (left shifts that wrap included), random triples;
    mbqm4's lanes with per-lane multipliers and shifts."""
    x, m = pairs(int32_edges(), multipliers())
    x, s = pairs(x, np.arange(-31, 32))
    m = np.repeat(m, 63)
    rng = np.random.default_rng(8)
    x = np.concatenate([x, random_int32(200_000, 9)])
    m = np.concatenate([m, random_int32(200_000, 10, 1 << 30, INT32_MAX)])
    s = np.concatenate([s, rng.integers(-31, 32, 200_000)])
    assert_same("mbqm", run_helper(exe, tmp_path, "mbqm", x, m, s)[:, 0], fp.mbqm(x, m, s), (x, m, s))

    v = np.stack([random_int32(100_000, 20 + j) for j in range(4)], axis=1)
    v[:1000] = int32_edges()[np.random.default_rng(0).integers(0, int32_edges().size, (1000, 4))]
    got = run_helper(exe, tmp_path, "mbqm4", *v.T)
    mult = fp.wrap_int32(v[:, [1, 3, 0, 2]] | (1 << 30))
    shift = np.stack([v[:, 2] & 31, -(v[:, 0] & 31), v[:, 3] & 31, -(v[:, 1] & 31)], axis=1)
    assert_same("mbqm4", got, fp.mbqm(v, mult, shift), (v[:, 0],))


def test_sat_mul_by_pot(exe, tmp_path):
    values = np.concatenate([int16_all(), int32_edges(), random_int32(10_000, 11)])
    x, e = pairs(values, np.arange(-31, 32))
    got = run_helper(exe, tmp_path, "sat_mul_by_pot", x, e)[:, 0].reshape(values.size, 63)
    for j, exponent in enumerate(range(-31, 32)):
        assert_same(f"sat_mul_by_pot(., {exponent})", got[:, j], fp.saturating_rounding_mul_by_pot(values, exponent),
                    (values,))


def test_wrapping(exe, tmp_path):
    a, b = pairs(int32_edges(), int32_edges())
    s = np.resize(np.arange(32), a.size)
    got = run_helper(exe, tmp_path, "wrapping", a, b, s)
    assert_same("wrapping_add", got[:, 0], fp.wrap_int32(a + b), (a, b))
    assert_same("wrapping_shl", got[:, 1], fp.wrap_int32(a << s), (a, s))
    assert_same("wrapping_add (int4)", got[:, 2], fp.wrap_int32(a + b), (a, b))
    assert_same("wrapping_add (int4)", got[:, 3], fp.wrap_int32(b + b), (b,))


def test_exp(exe, tmp_path):
    a = exp_quarter_inputs()
    name = "exp_on_interval_between_negative_one_quarter_and_0_excl"
    assert_same(name, run_helper(exe, tmp_path, "exp_quarter", a)[:, 0],
                fp._exp_on_interval_between_negative_one_quarter_and_0_excl(a), (a,))
    a = exp_inputs()
    assert_same("exp_on_negative_values", run_helper(exe, tmp_path, "exp_on_negative_values", a)[:, 0],
                fp.exp_on_negative_values(a, 5), (a,))


def test_reciprocal(exe, tmp_path):
    a = reciprocal_unit_inputs()
    assert_same("rounding_half_sum_with_one", run_helper(exe, tmp_path, "rounding_half_sum_with_one", a)[:, 0],
                fp.rounding_half_sum(a, INT32_MAX), (a,))
    assert_same("one_over_one_plus_x_for_x_in_0_1", run_helper(exe, tmp_path, "one_over_one_plus_x", a)[:, 0],
                fp.one_over_one_plus_x_for_x_in_0_1(a), (a,))
    x = reciprocal_inputs()
    got = run_helper(exe, tmp_path, "get_reciprocal", x)
    scale, bits = fp.get_reciprocal(x, 12)
    assert_same("get_reciprocal scale", got[:, 0], scale, (x,))
    assert_same("get_reciprocal num_bits_over_unit", got[:, 1], bits, (x,))


# --------------------------------------------------------------------------------------------------
# 8-bit packing
# --------------------------------------------------------------------------------------------------
def test_unpack_pack(exe, tmp_path):
    words = np.concatenate([int32_edges(), random_int32(100_000, 30),
                            fp.wrap_int32(np.arange(256, dtype=np.int64) * 0x01010101)])
    b = (words[:, None] >> (8 * np.arange(4))) & 0xFF
    assert_same("unpack_s8", run_helper(exe, tmp_path, "unpack_s8", words), np.where(b >= 128, b - 256, b), (words,))
    assert_same("unpack_u8", run_helper(exe, tmp_path, "unpack_u8", words), b, (words,))

    rng = np.random.default_rng(31)
    v = np.concatenate([rng.integers(-255, 256, (100_000, 4)), [[-128, 127, -1, 0], [255, 255, 255, 255]]])
    got = run_helper(exe, tmp_path, "pack8_idot", *v.T)
    packed = fp.wrap_int32(((v & 0xFF) << (8 * np.arange(4))).sum(axis=1))
    assert_same("pack8", got[:, 0], packed, (v[:, 0],))
    assert_same("idot", got[:, 1], (v * v[:, [1, 2, 3, 0]]).sum(axis=1), (v[:, 0],))


# --------------------------------------------------------------------------------------------------
# Exact float rounding (QUANTIZE, FULLY_CONNECTED's double rescale)
# --------------------------------------------------------------------------------------------------
def test_quantize_value(exe, tmp_path):
    """roundf(float32(v / scale)) with halves away from zero (quotients from 2^23 on saturate to
    2^24, which every 8-bit clamp saturates anyway): the exact ties
    k + 1/2 (and their float32 neighbours) of several scales, zero, subnormals, huge values,
    infinities and random floats."""
    from mobilegen.render.glsl import f32_parts

    rng = np.random.default_rng(40)
    scales = np.float32([1.0, 0.5, 1 / 255, 0.00392156886, 0.0078125, 0.1, 0.3, 2.0, 3.0e-6, 17.25])
    scales = np.concatenate([scales, rng.uniform(1e-4, 1.0, 10).astype(np.float32)])
    for scale in scales:
        k = np.arange(-300, 300, dtype=np.float32)
        ties = ((k + np.float32(0.5)) * scale).astype(np.float32)
        v = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf)),
                            k * scale, np.float32([0.0, -0.0, 1e-40, -1e-40, 3e38, -3e38, np.inf, -np.inf]),
                            rng.normal(0, 200 * float(scale), 5000).astype(np.float32)]).astype(np.float32)
        m, e = f32_parts(float(scale))
        bits = fp.wrap_int32(v.view(np.uint32).astype(np.int64))
        got = run_helper(exe, tmp_path, "quantize_value", bits, fp.wrap_int32(np.int64(m)), e)[:, 0]
        with np.errstate(over="ignore"):
            q = (v / scale).astype(np.float32)
        # Quotients of magnitude >= 2^23 (infinity included) saturate to 2^24.
        large = ~(np.abs(q) < 2.0**23)
        want = np.where(large, np.sign(q) * SATURATED, fp.round_half_away(np.where(large, 0, q).astype(np.float64)))
        assert_same(f"quantize_value(., scale {scale!r})", got, want, (v,))


def test_scale_and_round(exe, tmp_path):
    """round_half_away(double(acc) * scale) saturated at 2^24 against numpy's float64 multiply:
    exact ties (power-of-two scales, odd accumulators), products one double ulp beside a tie,
    subnormal and huge scales, INT32_MIN / MAX, random accumulators and scales."""
    rng = np.random.default_rng(50)
    accs = np.concatenate([int32_edges(), random_int32(2000, 51), np.arange(-1000, 1000)])
    scales = [2.0**-e for e in range(0, 40)] + [1.5 * 2.0**-e for e in range(0, 40)]
    scales += [1e-310, 5e-324, 1e300, 1.0 / 3, 0.1, 0.7, 1e-5, 3e-9]
    scales += list(rng.uniform(1e-6, 1e-2, 40)) + list(np.exp(rng.uniform(-40, 2, 40)))
    scales += list(np.nextafter(np.float64(2.0**-np.arange(1, 20)), np.inf))
    scales += list(np.nextafter(np.float64(2.0**-np.arange(1, 20)), 0))
    acc, scale = pairs(accs, np.asarray(scales, dtype=np.float64))
    lo, hi = float64_words(scale)
    got = run_helper(exe, tmp_path, "scale_and_round", acc, lo, hi)[:, 0]
    with np.errstate(over="ignore"):
        product = acc.astype(np.float64) * scale
    want = saturate(fp.round_half_away(np.clip(product, -2.0**40, 2.0**40)))
    assert_same("scale_and_round", got, want, (acc, scale))


# --------------------------------------------------------------------------------------------------
# half (fp16 storage)
# --------------------------------------------------------------------------------------------------
def test_half_conversion(exe, tmp_path):
    """float -> half (round to nearest even, subnormals, overflow to infinity) and half -> float
    against numpy float16: every half's midpoints with its neighbour and their float32 neighbours
    (the ties), every half value itself, random float32 bit patterns."""
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = halves[np.isfinite(halves)].astype(np.float32)
    ordered = np.unique(finite)
    mids = ((ordered[:-1].astype(np.float64) + ordered[1:]) / 2).astype(np.float32)  # exact in float32
    beyond = np.float32([65504.0, 65519.99, 65520.0, 65536.0, 1e30, -65520.0, 2.0**-25, -(2.0**-25), 2.0**-26,
                         3 * 2.0**-26, np.inf, -np.inf, np.nan, 0.0, -0.0])
    rand = np.random.default_rng(60).integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    f = np.concatenate([mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf)),
                        finite, beyond, rand]).astype(np.float32)
    f = np.concatenate([f, np.zeros((-f.size) % 4, np.float32)])
    bits = fp.wrap_int32(f.view(np.uint32).astype(np.int64)).reshape(-1, 4)
    got = run_helper(exe, tmp_path, "float_to_half", *bits.T).reshape(-1)
    with np.errstate(over="ignore"):
        want = f.astype(np.float16)
    want_bits = want.view(np.uint16).astype(np.int64)
    nan = np.isnan(want)
    assert_same("float_to_half", got[~nan], want_bits[~nan], (f[~nan],))
    assert np.isnan(np.asarray(got[nan], np.uint16).view(np.float16)).all(), "NaN must stay NaN"

    h = np.arange(1 << 16, dtype=np.int64).reshape(-1, 4)
    got = run_helper(exe, tmp_path, "half_to_float", *h.T).reshape(-1)
    want = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    nan = np.isnan(want)
    want_bits = fp.wrap_int32(want.view(np.uint32).astype(np.int64))
    assert_same("half_to_float", got[~nan], want_bits[~nan], (h.reshape(-1)[~nan],))
    assert np.isnan(fp.wrap_int32(got[nan]).astype(np.int32).view(np.float32)).all()


# --------------------------------------------------------------------------------------------------
# Seeded bugs
# --------------------------------------------------------------------------------------------------
SEEDED_BUGS = {
    # MNN's fixed point: the doubled high word, no nudge (rounds toward -infinity).
    "srdhm": ("  long ab = long(a) * long(b);\n  return int((ab + (long(1) << 30)) >> 31);",
              "  return as_type<int>(as_type<uint>(mulhi(a, b)) << 1u);"),
    # hadd-style halving: halves rounded up for negative values too.
    "rdbpot": ("  int threshold = (mask >> 1) + (x < 0 ? 1 : 0);", "  int threshold = mask >> 1;"),
}


@pytest.mark.parametrize("helper", sorted(SEEDED_BUGS))
def test_seeded_bugs_are_caught(helper, tmp_path):
    """The library with one helper rounding differently (the seeded bug) fails its comparison."""
    good, bad = SEEDED_BUGS[helper]
    library = library_head()
    assert library.count(good) == 1, f"the seeded bug's anchor is gone from library.metal.j2 ({helper})"
    exe = build_driver(library.replace(good, bad), tag=f"metal_helpers_seeded_{helper}")
    if helper == "srdhm":
        a, b = srdhm_grid()
        got, want = run_helper(exe, tmp_path, "srdhm", a, b)[:, 0], fp.srdhm(a, b)
    else:
        x, e = rdbpot_grid()
        got, want = run_helper(exe, tmp_path, "rdbpot", x, e)[:, 0], fp.rdbpot(x, e)
    assert (got != want).any(), f"the seeded {helper} bug went unnoticed"


def test_signed_overflow_is_caught(tmp_path):
    """UBSan guards the driver: wrapping_add as a plain int32 `a + b` (undefined on overflow in MSL)
    makes the wrapping comparison abort instead of passing by luck."""
    good = "  return as_type<int>(as_type<uint>(a) + as_type<uint>(b));"
    library = library_head()
    assert library.count(good) == 1
    exe = build_driver(library.replace(good, "  return a + b;"), tag="metal_helpers_seeded_overflow")
    a, b = pairs(int32_edges(), int32_edges())
    assert run_helper(exe, tmp_path, "wrapping", a, b, 0, check=False) is None


def test_library_never_uses_hadd_or_double():
    """gemmlowp's rounding is never hadd/rhadd; MSL has no double (every float literal suffixed:
    unsuffixed, the host proof would compute in double)."""
    import re

    library = library_head()
    code = "\n".join(line.split("//")[0] for line in library.splitlines())
    assert not re.search(r"\b(r?hadd|double)\b", code)
    assert "#pragma METAL fp contract(off)" in library and "#pragma METAL fp math_mode(safe)" in library
