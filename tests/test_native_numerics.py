"""The engine's fixed-point arithmetic, native code against mobilegen.numerics element for element.

- every helper of templates/cpp/engine/fixedpoint.h, through tests/native/fixedpoint_check.cpp
  (built with -O2 and UBSan, so signed overflow or an out-of-range shift also fails);
- every helper of the GLSL library (library.glsl.j2, rendered as the engine ships it) in compute
  shaders on Mesa (EGL surfaceless, llvmpipe), through tests/native/glsl_run.cpp;
- the generated engine on both backends on inputs a random test rarely hits: QUANTIZE of floats
  exactly on the rounding ties x / scale = k + 1/2, and an int8 model without ReLU (negative
  activations reach ADD's requantization) whose SOFTMAX has many rows and a wide logit range,
  and int8 AVERAGE_POOL sums exactly on a negative half (the CPU's C division, the GPU's magnitude).

The grids: int32 edges (INT32_MIN / MAX, 0, +-1 and the ties k * 2^e +- 2^(e-1) at every exponent,
with their neighbours), exhaustive ranges (every int16 value at every shift 0..31, all 65536
halves, every exp input on a 2^10 lattice over the whole negative int32 range) and random tuples.
mobilegen.numerics itself is checked against scalar transcriptions of gemmlowp / LiteRT in
test_numerics.py and against BUILTIN_REF there; here its constants are also checked against the
exact values they round.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mobilegen.numerics import fixedpoint as fp
from tests.harness import missing, require_file, require_tool

ROOT = Path(__file__).resolve().parents[1]
NATIVE = Path(__file__).parent / "native"
ENGINE_DIR = ROOT / "templates" / "cpp" / "engine"
CACHE = Path(__file__).parent / ".model_cache" / "native"
INT32_MIN, INT32_MAX = fp.INT32_MIN, fp.INT32_MAX
EGL_HINT = "libegl-mesa0 libgl1-mesa-dri libegl-dev libgles-dev"
RUN_TIMEOUT_S = 300


# --------------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------------
def int32_edges() -> np.ndarray:
    """INT32_MIN / MAX and their neighbours, 0, +-1, and at every exponent e the powers k * 2^e and
    the ties k * 2^e +- 2^(e-1) (k = -3..3), each with its neighbours +-1, wrapped to int32."""
    values = {INT32_MIN, INT32_MIN + 1, INT32_MIN + 2, INT32_MAX, INT32_MAX - 1, INT32_MAX - 2, -1, 0, 1}
    for e in range(32):
        half = (1 << (e - 1)) if e else 0
        for k in range(-3, 4):
            for centre in (k << e, (k << e) + half, (k << e) - half):
                values.update((centre - 1, centre, centre + 1))
    return np.unique(fp.wrap_int32(np.array(sorted(values), dtype=np.int64)))


def int16_all() -> np.ndarray:
    return np.arange(-(1 << 15), 1 << 15, dtype=np.int64)


def random_int32(n: int, seed: int, lo: int = INT32_MIN, hi: int = INT32_MAX) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi, n, endpoint=True, dtype=np.int64)


def pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (a[i], b[j])."""
    return np.repeat(a, b.size), np.tile(b, a.size)


def multipliers() -> np.ndarray:
    """QuantizeMultiplier's range [2^30, 2^31) with its ends, 0 and 1, and random values."""
    return np.concatenate([[0, 1, 1 << 30, (1 << 30) + 1, INT32_MAX - 1, INT32_MAX],
                           random_int32(10, 7, 1 << 30, INT32_MAX)])


def exp_inputs() -> np.ndarray:
    """Q5.26 inputs <= 0: every multiple of 2^10 down to INT32_MIN, every value in [-2^17, 0],
    the ties of the edges grid and random values."""
    lattice = -(np.arange(0, 1 << 21, dtype=np.int64) << 10)
    edges = int32_edges()
    return np.concatenate([lattice, np.arange(-(1 << 17), 1), edges[edges <= 0],
                           random_int32(200_000, 3, INT32_MIN, 0)])


def exp_quarter_inputs() -> np.ndarray:
    """Q0.31 inputs in [-1/4, 0): a 2^9 lattice, both ends densely, random values."""
    lo = -(1 << 29)
    return np.concatenate([np.arange(lo, 0, 1 << 9), np.arange(lo, lo + 65536), np.arange(-65536, 0),
                           random_int32(200_000, 4, lo, -1)])


def reciprocal_unit_inputs() -> np.ndarray:
    """Q0.31 a in [0, 1): a 2^11 lattice, both ends densely, the non-negative edges, random values."""
    edges = int32_edges()
    return np.concatenate([np.arange(0, INT32_MAX, 1 << 11), np.arange(65536), INT32_MAX - np.arange(65536),
                           edges[edges >= 0], random_int32(200_000, 5, 0, INT32_MAX)])


def reciprocal_inputs() -> np.ndarray:
    """Positive Q12.19 sums of exps: every value up to 2^17, powers of two and neighbours, random."""
    powers = np.array([(1 << e) + d for e in range(31) for d in (-1, 0, 1)], dtype=np.int64)
    return np.concatenate([np.arange(1, (1 << 17) + 1), powers[(powers >= 1)], [INT32_MAX],
                           random_int32(200_000, 6, 1, INT32_MAX)])


# --------------------------------------------------------------------------------------------------
# Building and running the native drivers
# --------------------------------------------------------------------------------------------------
def _build(name: str, sources: list[Path], flags: list[str], libs: list[str]) -> Path:
    """c++ sources -> an executable cached under tests/.model_cache/native/, keyed by the sources."""
    cxx = require_tool("c++", "g++")
    h = hashlib.sha256(json.dumps([flags, libs]).encode())
    for p in sources:
        h.update(p.read_bytes())
    exe = CACHE / f"{name}-{h.hexdigest()[:16]}"
    if not exe.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_name(exe.name + f".{os.getpid()}.tmp")  # xdist workers may build it at once
        cmd = [cxx, "-std=c++17", *flags, str(sources[0]), "-o", str(tmp), *libs]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stderr[-4000:]}"
        tmp.replace(exe)
    return exe


@pytest.fixture(scope="module")
def fixedpoint_exe() -> Path:
    headers = sorted(ENGINE_DIR.glob("*.h"))
    return _build("fixedpoint_check", [NATIVE / "fixedpoint_check.cpp", *headers],
                  ["-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined", "-fno-sanitize-recover=all",
                   "-I", str(ENGINE_DIR)], [])


@pytest.fixture(scope="module")
def glsl_exe() -> Path:
    for header in (Path("/usr/include/EGL/egl.h"), Path("/usr/include/GLES3/gl31.h")):
        require_file(header, "libegl-dev libgles-dev")
    return _build("glsl_run", [NATIVE / "glsl_run.cpp"], ["-O2", "-Wall", "-Wextra", "-Werror"], ["-lEGL", "-lGLESv2"])


def run_cpp(exe: Path, work: Path, function: str, *columns, outputs: int = 1) -> np.ndarray:
    """fixedpoint.h's `function` applied to the tuples zip(*columns) (int32); [n, outputs] int64."""
    work.mkdir(parents=True, exist_ok=True)
    cols = np.broadcast_arrays(*[np.asarray(c, dtype=np.int64) for c in columns])
    for c in cols:
        assert c.min(initial=0) >= INT32_MIN and c.max(initial=0) <= INT32_MAX, function
    np.stack(cols, axis=-1).astype(np.int32).tofile(work / f"{function}.in")
    r = subprocess.run([str(exe), function, str(work / f"{function}.in"), str(work / f"{function}.out")],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert r.returncode == 0, f"fixedpoint_check {function} failed ({r.returncode}): {r.stderr[-3000:]}"
    return np.fromfile(work / f"{function}.out", np.int32).astype(np.int64).reshape(-1, outputs)


def assert_same(where: str, got, want, inputs: tuple) -> None:
    got, want = np.asarray(got, np.int64), np.asarray(want, np.int64)
    assert got.shape == want.shape, (where, got.shape, want.shape)
    bad = np.argwhere(got != want)
    if bad.size:
        i = tuple(bad[0])  # row (the input tuple), lane
        args = ", ".join(str(np.asarray(c).reshape(-1)[i[0]] if np.ndim(c) else c) for c in inputs)
        pytest.fail(f"{where}: {len(bad)}/{got.size} results differ from mobilegen.numerics; first: "
                    f"({args}) -> {int(got[i])}, expected {int(want[i])}")


# --------------------------------------------------------------------------------------------------
# mobilegen.numerics' constants are the values they round
# --------------------------------------------------------------------------------------------------
def test_reference_constants_are_the_rounded_exact_values():
    """gemmlowp's constants as mobilegen.numerics holds them: exp(-2^k) and exp(-1/8) and 1/3 in
    Q0.31, 48/17 and -32/17 in Q2.29 (double precision resolves every one: none is near a tie)."""
    from mobilegen.numerics import fixedpoint as f

    def q(value: float, fractional_bits: int) -> int:
        scaled = value * 2.0**fractional_bits
        assert abs(scaled - math.floor(scaled) - 0.5) > 1e-3  # far from a rounding tie
        return round(scaled)

    assert f._EXP_BARREL == tuple((k, q(math.exp(-(2.0**k)), 31)) for k in range(-2, 5))
    assert f._EXP_MINUS_ONE_EIGHTH_Q31 == q(math.exp(-0.125), 31)
    assert f._ONE_THIRD_Q31 == q(1 / 3, 31)
    assert (f._48_OVER_17_Q29, f._NEG_32_OVER_17_Q29, f._ONE_Q29) == (q(48 / 17, 29), q(-32 / 17, 29), 1 << 29)


def test_edges_grid_holds_the_ties():
    edges = set(int32_edges().tolist())
    for e in range(1, 29):
        assert {(3 << e) + (1 << (e - 1)), -(3 << e) - (1 << (e - 1)), -(1 << (e - 1)), (1 << (e - 1)) + 1} <= edges
    assert {INT32_MIN, INT32_MAX, -(1 << 30) - (1 << 29), (1 << 30) + (1 << 29)} <= edges


# --------------------------------------------------------------------------------------------------
# fixedpoint.h
# --------------------------------------------------------------------------------------------------
def test_cpp_srdhm(fixedpoint_exe, tmp_path):
    """Every pair of edges (the products' ties a * b = (2m + 1) * 2^30 among them) and random pairs."""
    a, b = pairs(int32_edges(), int32_edges())
    a, b = np.concatenate([a, random_int32(500_000, 1)]), np.concatenate([b, random_int32(500_000, 2)])
    assert_same("srdhm", run_cpp(fixedpoint_exe, tmp_path, "srdhm", a, b)[:, 0], fp.srdhm(a, b), (a, b))


def test_cpp_rdbpot(fixedpoint_exe, tmp_path):
    """Every int16 value and every edge at every exponent 0..31 (negative halves included)."""
    x, e = pairs(np.concatenate([int16_all(), int32_edges(), random_int32(20_000, 3)]), np.arange(32))
    assert_same("rdbpot", run_cpp(fixedpoint_exe, tmp_path, "rdbpot", x, e)[:, 0], fp.rdbpot(x, e), (x, e))


def test_cpp_mbqm(fixedpoint_exe, tmp_path):
    """Edges x multipliers x every shift -31..31 (left shifts that wrap included), random triples."""
    x, m = pairs(int32_edges(), multipliers())
    x, s = pairs(x, np.arange(-31, 32))
    m = np.repeat(m, 63)
    rng = np.random.default_rng(8)
    x = np.concatenate([x, random_int32(300_000, 9)])
    m = np.concatenate([m, random_int32(300_000, 10, 1 << 30, INT32_MAX)])
    s = np.concatenate([s, rng.integers(-31, 32, 300_000)])
    assert_same("mbqm", run_cpp(fixedpoint_exe, tmp_path, "mbqm", x, m, s)[:, 0], fp.mbqm(x, m, s), (x, m, s))


def test_cpp_saturating_rounding_mul_by_pot(fixedpoint_exe, tmp_path):
    values = np.concatenate([int16_all(), int32_edges(), random_int32(20_000, 11)])
    x, e = pairs(values, np.arange(-31, 32))
    got = run_cpp(fixedpoint_exe, tmp_path, "saturating_rounding_mul_by_pot", x, e)[:, 0].reshape(values.size, 63)
    for j, exponent in enumerate(range(-31, 32)):
        assert_same(f"saturating_rounding_mul_by_pot(., {exponent})", got[:, j],
                    fp.saturating_rounding_mul_by_pot(values, exponent), (values,))


def test_cpp_rounding_half_sum_and_wrapping(fixedpoint_exe, tmp_path):
    a, b = pairs(int32_edges(), int32_edges())
    a, b = np.concatenate([a, random_int32(200_000, 12)]), np.concatenate([b, random_int32(200_000, 13)])
    assert_same("rounding_half_sum", run_cpp(fixedpoint_exe, tmp_path, "rounding_half_sum", a, b)[:, 0],
                fp.rounding_half_sum(a, b), (a, b))
    assert_same("add_wrap", run_cpp(fixedpoint_exe, tmp_path, "add_wrap", a, b)[:, 0], fp.wrap_int32(a + b), (a, b))
    assert_same("sub_wrap", run_cpp(fixedpoint_exe, tmp_path, "sub_wrap", a, b)[:, 0], fp.wrap_int32(a - b), (a, b))
    x, s = pairs(int32_edges(), np.arange(32))
    assert_same("shl_wrap", run_cpp(fixedpoint_exe, tmp_path, "shl_wrap", x, s)[:, 0], fp.wrap_int32(x << s), (x, s))


def test_cpp_exp(fixedpoint_exe, tmp_path):
    """exp on [-1/4, 0) and exp_on_negative_values: Q5.26 (softmax's) over the dense grid, other
    integer bit counts on random inputs."""
    a = exp_quarter_inputs()
    name = "exp_on_interval_between_negative_one_quarter_and_0_excl"
    assert_same(name, run_cpp(fixedpoint_exe, tmp_path, name, a)[:, 0],
                fp._exp_on_interval_between_negative_one_quarter_and_0_excl(a), (a,))
    a = exp_inputs()
    assert_same("exp_on_negative_values(., 5)", run_cpp(fixedpoint_exe, tmp_path, "exp_on_negative_values", a, 5)[:, 0],
                fp.exp_on_negative_values(a, 5), (a,))
    edges = int32_edges()
    for bits in (0, 1, 2, 3, 4, 6, 12, 20, 29):
        a = np.concatenate([edges[edges <= 0], random_int32(30_000, 100 + bits, INT32_MIN, 0)])
        assert_same(f"exp_on_negative_values(., {bits})",
                    run_cpp(fixedpoint_exe, tmp_path, "exp_on_negative_values", a, bits)[:, 0],
                    fp.exp_on_negative_values(a, bits), (a,))


def test_cpp_reciprocal(fixedpoint_exe, tmp_path):
    a = reciprocal_unit_inputs()
    name = "one_over_one_plus_x_for_x_in_0_1"
    assert_same(name, run_cpp(fixedpoint_exe, tmp_path, name, a)[:, 0], fp.one_over_one_plus_x_for_x_in_0_1(a), (a,))
    x = reciprocal_inputs()
    assert_same("count_leading_zeros_u32", run_cpp(fixedpoint_exe, tmp_path, "count_leading_zeros_u32", x)[:, 0],
                fp.count_leading_zeros_u32(x), (x,))
    e = int32_edges()
    assert_same("count_leading_zeros_u32", run_cpp(fixedpoint_exe, tmp_path, "count_leading_zeros_u32", e)[:, 0],
                fp.count_leading_zeros_u32(e), (e,))
    for digits in (12, 0, 5, 31):
        got = run_cpp(fixedpoint_exe, tmp_path, "get_reciprocal", x, digits, outputs=2)
        scale, bits = fp.get_reciprocal(x, digits)
        assert_same(f"get_reciprocal(., {digits}) scale", got[:, 0], scale, (x,))
        assert_same(f"get_reciprocal(., {digits}) num_bits_over_unit", got[:, 1], bits, (x,))


def test_cpp_round_away(fixedpoint_exe, tmp_path):
    """round_away (std::round) on the halves k + 1/2 of both signs, their float64 neighbours,
    0.49999999999999994 and large values."""
    k = np.arange(-(1 << 18), 1 << 18, dtype=np.float64)
    ties = k + 0.5
    big = np.ldexp(1.0, np.arange(0, 62)) * 1.5
    x = np.concatenate([ties, np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf), k, big, -big,
                        [0.0, -0.0, 0.49999999999999994, -0.49999999999999994, 2.0**52 + 1, -(2.0**52) - 1]])
    tmp_path.mkdir(exist_ok=True)
    x.astype("<f8").tofile(tmp_path / "round.in")
    r = subprocess.run([str(fixedpoint_exe), "round_away", str(tmp_path / "round.in"), str(tmp_path / "round.out")],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    got = np.fromfile(tmp_path / "round.out", "<i8")
    assert_same("round_away", got, fp.round_half_away(x), (x,))


# --------------------------------------------------------------------------------------------------
# The GLSL library on Mesa
# --------------------------------------------------------------------------------------------------
SHADER_MAIN = """
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Inputs { ivec4 in_data[]; };
layout(std430, binding = 1) writeonly buffer Outputs { ivec4 out_data[]; };
void main() {
  uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
  if (i >= uint(in_data.length())) return;
  ivec4 v = in_data[i];
  %s
}
"""

# name -> the statement computing out_data[i] from v (the input ivec4).
GLSL_BODIES = {
    "srdhm": "out_data[i] = ivec4(srdhm(v.x, v.y), 0, 0, 0);",
    "rdbpot": "out_data[i] = ivec4(rdbpot(v.x, v.y), 0, 0, 0);",
    "mbqm": "out_data[i] = ivec4(mbqm(v.x, v.y, v.z), 0, 0, 0);",
    "mbqm4": "ivec4 s = ivec4(v.z, v.x, v.w, v.y); "
             "out_data[i] = mbqm4(v, (ivec4(v.y, v.w, v.x, v.z) & 0x7fffffff) | 0x40000000, (s & 31) - ((s >> 5) & 31));",
    "sat_mul_by_pot": "out_data[i] = ivec4(sat_mul_by_pot(v.x, v.y), 0, 0, 0);",
    "exp_quarter": "out_data[i] = ivec4(exp_on_interval_between_negative_one_quarter_and_0_excl(v.x), 0, 0, 0);",
    "exp_on_negative_values": "out_data[i] = ivec4(exp_on_negative_values(v.x), 0, 0, 0);",
    "rounding_half_sum_with_one": "out_data[i] = ivec4(rounding_half_sum_with_one(v.x), 0, 0, 0);",
    "one_over_one_plus_x": "out_data[i] = ivec4(one_over_one_plus_x_for_x_in_0_1(v.x), 0, 0, 0);",
    "get_reciprocal": "int n; int r = get_reciprocal(v.x, n); out_data[i] = ivec4(r, n, 0, 0);",
    "unpack_s8": "out_data[i] = unpack_s8(uint(v.x));",
    "unpack_u8": "out_data[i] = unpack_u8(uint(v.x));",
    "pack8_idot": "out_data[i] = ivec4(int(pack8(v)), idot(v, v.yzwx), 0, 0);",
    "pack_half4": "uvec2 h = pack_half4(intBitsToFloat(v)); out_data[i] = ivec4(int(h.x), int(h.y), 0, 0);",
    "unpack_half4": "out_data[i] = floatBitsToInt(unpack_half4(uvec2(v.xy)));",
}


def run_glsl(exe: Path, work: Path, jobs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each job's GLSL_BODIES statement over its [n, 4] int32 inputs, in one EGL context."""
    from mobilegen.render.glsl import render_library

    library = render_library()
    work.mkdir(parents=True, exist_ok=True)
    args = []
    for name, inputs in jobs.items():
        inputs = np.asarray(inputs, dtype=np.int64)
        assert inputs.ndim == 2 and inputs.shape[1] == 4 and inputs.shape[0] > 0
        assert inputs.min() >= INT32_MIN and inputs.max() <= INT32_MAX
        (work / f"{name}.comp").write_text(library + SHADER_MAIN % GLSL_BODIES[name])
        inputs.astype(np.int32).tofile(work / f"{name}.in")
        args += [str(work / f"{name}.comp"), str(work / f"{name}.in"), str(work / f"{name}.out")]
    r = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if r.returncode == 3:
        missing(f"no EGL / OpenGL ES 3.1 compute on this host ({r.stderr.strip()}); install Mesa: "
                f"apt-get install {EGL_HINT}")
    assert r.returncode == 0, f"glsl_run failed ({r.returncode}): {r.stderr[-4000:]}"
    return {name: np.fromfile(work / f"{name}.out", np.int32).astype(np.int64).reshape(-1, 4) for name in jobs}


def _tuples(*columns) -> np.ndarray:
    cols = list(np.broadcast_arrays(*[np.asarray(c, dtype=np.int64) for c in columns]))
    cols += [np.zeros_like(cols[0])] * (4 - len(cols))
    return np.stack(cols, axis=-1)


def test_glsl_requantization(glsl_exe, tmp_path):
    """srdhm, rdbpot, mbqm (and its 4-lane form), sat_mul_by_pot on the grids of the C++ tests."""
    edges = int32_edges()
    a, b = pairs(edges, edges)
    a, b = np.concatenate([a, random_int32(200_000, 21)]), np.concatenate([b, random_int32(200_000, 22)])
    x, e = pairs(np.concatenate([int16_all(), edges]), np.arange(32))
    mx, mm = pairs(edges, multipliers())
    mx, ms = pairs(mx, np.arange(-31, 32))
    mm = np.repeat(mm, 63)
    sat_values = np.concatenate([int16_all()[::8], edges, random_int32(4096, 24)])
    px, pe = pairs(sat_values, np.arange(-31, 32))
    lanes = random_int32(200_000, 23).reshape(-1, 4)
    lanes[: edges.size // 4] = edges[: edges.size // 4 * 4].reshape(-1, 4)
    got = run_glsl(glsl_exe, tmp_path, {
        "srdhm": _tuples(a, b), "rdbpot": _tuples(x, e), "mbqm": _tuples(mx, mm, ms), "mbqm4": lanes,
        "sat_mul_by_pot": _tuples(px, pe),
    })
    assert_same("GLSL srdhm", got["srdhm"][:, 0], fp.srdhm(a, b), (a, b))
    assert_same("GLSL rdbpot", got["rdbpot"][:, 0], fp.rdbpot(x, e), (x, e))
    assert_same("GLSL mbqm", got["mbqm"][:, 0], fp.mbqm(mx, mm, ms), (mx, mm, ms))
    l0, l1, l2, l3 = (lanes[:, j] for j in range(4))
    want = np.stack([fp.mbqm(xs, (m & 0x7FFFFFFF) | 0x40000000, (s & 31) - ((s >> 5) & 31))
                     for xs, m, s in ((l0, l1, l2), (l1, l3, l0), (l2, l0, l3), (l3, l2, l1))], axis=-1)
    assert_same("GLSL mbqm4", got["mbqm4"], want, (l0,))
    want = np.stack([fp.saturating_rounding_mul_by_pot(sat_values, k) for k in range(-31, 32)], axis=-1)
    assert_same("GLSL sat_mul_by_pot", got["sat_mul_by_pot"][:, 0].reshape(sat_values.size, 63), want, (sat_values,))


def test_glsl_exp_and_reciprocal(glsl_exe, tmp_path):
    """The softmax helpers: exp on [-1/4, 0), exp_on_negative_values (Q5.26) on the dense grid,
    RoundingHalfSum with one, 1 / (1 + x) and GetReciprocal (Q12.19)."""
    quarter, exp_in, unit, recip = exp_quarter_inputs(), exp_inputs(), reciprocal_unit_inputs(), reciprocal_inputs()
    got = run_glsl(glsl_exe, tmp_path, {
        "exp_quarter": _tuples(quarter), "exp_on_negative_values": _tuples(exp_in),
        "rounding_half_sum_with_one": _tuples(unit), "one_over_one_plus_x": _tuples(unit),
        "get_reciprocal": _tuples(recip),
    })
    assert_same("GLSL exp_on_interval_between_negative_one_quarter_and_0_excl", got["exp_quarter"][:, 0],
                fp._exp_on_interval_between_negative_one_quarter_and_0_excl(quarter), (quarter,))
    assert_same("GLSL exp_on_negative_values", got["exp_on_negative_values"][:, 0],
                fp.exp_on_negative_values(exp_in, 5), (exp_in,))
    assert_same("GLSL rounding_half_sum_with_one", got["rounding_half_sum_with_one"][:, 0],
                fp.rounding_half_sum(unit, INT32_MAX), (unit,))
    assert_same("GLSL one_over_one_plus_x_for_x_in_0_1", got["one_over_one_plus_x"][:, 0],
                fp.one_over_one_plus_x_for_x_in_0_1(unit), (unit,))
    scale, bits = fp.get_reciprocal(recip, 12)
    assert_same("GLSL get_reciprocal scale", got["get_reciprocal"][:, 0], scale, (recip,))
    assert_same("GLSL get_reciprocal num_bits_over_unit", got["get_reciprocal"][:, 1], bits, (recip,))


def test_glsl_packing(glsl_exe, tmp_path):
    """8-bit lanes (every byte value in every lane), idot's wrapping sum, and float16 storage:
    pack_half4 rounds to nearest even like numpy (ties between every pair of adjacent finite
    halves, their neighbours, random floats), unpack_half4 widens all 65536 halves exactly."""
    words = np.concatenate([np.arange(256, dtype=np.int64) * 0x01010101, random_int32(50_000, 31),
                            int32_edges()])
    words = fp.wrap_int32(words)
    rng = np.random.default_rng(32)
    lanes8 = np.concatenate([np.stack([np.arange(-128, 256)] * 4, axis=-1),
                             rng.integers(-128, 256, (50_000, 4))])
    halves = np.arange(0x0001, 0x7BFF, dtype=np.uint16).view(np.float16).astype(np.float64)
    ties = ((halves[:-1] + halves[1:]) / 2).astype(np.float32)
    floats = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(0)),
                             rng.uniform(-70000, 70000, 100_000).astype(np.float32),
                             (rng.standard_normal(100_000) * 0.01).astype(np.float32),
                             np.float32([0.0, -0.0, 65504.0, 65519.99, 65520.0, 1e30, -1e30])])
    floats = np.concatenate([floats, -floats])
    floats = np.concatenate([floats, np.zeros((-floats.size) % 4, np.float32)])
    float_bits = floats.view(np.int32).astype(np.int64).reshape(-1, 4)
    all_halves = np.arange(65536, dtype=np.uint32).reshape(-1, 2)
    half_words = fp.wrap_int32((all_halves[:, 0] | (all_halves[:, 1] << 16)).astype(np.int64))
    got = run_glsl(glsl_exe, tmp_path, {
        "unpack_s8": _tuples(words), "unpack_u8": _tuples(words), "pack8_idot": lanes8,
        "pack_half4": float_bits, "unpack_half4": _tuples(half_words[0::2], half_words[1::2]),
    })
    u = (words & 0xFFFFFFFF).astype(np.uint32)
    bytes_u = np.stack([(u >> (8 * j)) & 0xFF for j in range(4)], axis=-1).astype(np.int64)
    assert_same("GLSL unpack_u8", got["unpack_u8"], bytes_u, (words,))
    assert_same("GLSL unpack_s8", got["unpack_s8"], np.where(bytes_u > 127, bytes_u - 256, bytes_u), (words,))
    b = lanes8 & 0xFF
    assert_same("GLSL pack8", got["pack8_idot"][:, 0], fp.wrap_int32(b[:, 0] | b[:, 1] << 8 | b[:, 2] << 16 | b[:, 3] << 24),
                (lanes8[:, 0],))
    assert_same("GLSL idot", got["pack8_idot"][:, 1], fp.wrap_int32((lanes8 * np.roll(lanes8, -1, axis=1)).sum(1)),
                (lanes8[:, 0],))
    with np.errstate(over="ignore"):
        h = floats.astype(np.float16).view(np.uint16).astype(np.int64).reshape(-1, 4)
    assert_same("GLSL pack_half4", got["pack_half4"][:, :2],
                fp.wrap_int32(np.stack([h[:, 0] | h[:, 1] << 16, h[:, 2] | h[:, 3] << 16], axis=-1)),
                (float_bits[:, 0],))
    widened = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    got_floats = got["unpack_half4"].astype(np.int32).view(np.float32).reshape(-1)
    finite = np.isfinite(widened)
    assert np.array_equal(got_floats[finite], widened[finite]) and np.isinf(got_floats[np.isinf(widened)]).all()


# --------------------------------------------------------------------------------------------------
# The generated engine on inputs that random tests rarely produce
# --------------------------------------------------------------------------------------------------
SMALL_CONV = ("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"))
NO_RELU_SOFTMAX_ROWS = ("add_softmax_rows", dict(h=9, w=13, cin=5, c=37))
BACKENDS = ("cpu", "gpu")


def _engine_dump(engine, x: np.ndarray, backend: str, work: Path) -> dict[int, np.ndarray]:
    from mobilegen.dump import read_dump
    from tests.test_glsl import run_gpu

    if backend == "gpu":
        run_gpu(engine, x, work)
    else:
        r = engine.run(x, work)
        assert r.returncode == 0, f"mobilegen_run --backend cpu failed ({r.returncode}): {r.stderr}"
        assert json.loads(r.stdout)["backend"] == "cpu"
    return read_dump(work / "dump")[1]


def quantize_ties(scale: np.float32, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n float32 inputs x with x / scale (float32 division) exactly k + 1/2 for k = -64..63, both
    parities of k, and the quotients' round-half-away-from-zero values."""
    k = np.arange(-64, 64, dtype=np.float32)
    x = ((k + np.float32(0.5)) * scale).astype(np.float32)
    exact = (x / scale) == k + np.float32(0.5)
    x, k = x[exact], k[exact]
    assert {int(v) % 2 for v in k[k < 0]} == {0, 1} and {int(v) % 2 for v in k[k >= 0]} == {0, 1}, "too few ties"
    reps = -(-n // x.size)
    x, k = np.tile(x, reps)[:n], np.tile(k, reps)[:n]
    return x, np.where(k >= 0, k + 1, k).astype(np.int64)  # k + 1/2 rounded away from zero


@pytest.mark.parametrize("backend", BACKENDS)
def test_quantize_rounding_ties(backend, tmp_path):
    """QUANTIZE of floats exactly on the ties x / scale = k + 1/2: halves away from zero (std::round
    on the CPU, the exact integer division on the GPU), as the simulator and LiteRT round; nearbyint
    or rint (halves to even) would differ on every even k."""
    from mobilegen.sim.runner import Simulator
    from tests.harness import model_bytes
    from tests.models import BUILDERS
    from tests.test_engine_cpu import build_engine

    name, kwargs = SMALL_CONV
    engine = build_engine(model_bytes((name, BUILDERS[name], kwargs), "int8"))
    k0 = engine.em.kernels[0]
    assert k0.type == "Quantize"
    q = engine.plan.kernels[0]
    t = engine.graph.tensors[engine.graph.inputs[0]]
    zp = int(engine.graph.tensors[q.output].quant.zero_point[0])
    x, rounded = quantize_ties(np.float32(k0.params["scale"]), int(np.prod(t.shape)))
    for shift in (0, 1):  # each tie in two positions (lanes of the GPU's 4-channel cells)
        xs = np.roll(x, shift).reshape(t.shape)
        want = Simulator(engine.plan).run([xs])
        assert np.array_equal(want[q.output].reshape(-1).astype(np.int64), np.clip(np.roll(rounded, shift) + zp, -128, 127))
        got = _engine_dump(engine, xs, backend, tmp_path / f"{backend}{shift}")
        np.testing.assert_array_equal(got[q.output], want[q.output], err_msg=f"QUANTIZE ties [{backend}]")


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_relu_and_many_softmax_rows(backend, tmp_path):
    """An int8 model without ReLU: two convolutions whose negative outputs survive into ADD's
    requantization (fixedpoint.h's mbqm / the GLSL mbqm on negative values), then SOFTMAX over
    each of 117 pixels' 37 channels with logits spread over about 50 units (10 to 30 within a
    row: exps from 1 down to underflow in every row). Every tensor bit for bit on both backends, three inputs."""
    from mobilegen.sim.runner import Simulator
    from tests.harness import model_bytes, random_input, tensor_mismatches
    from tests.models import BUILDERS
    from tests.test_engine_cpu import build_engine

    name, kwargs = NO_RELU_SOFTMAX_ROWS
    engine = build_engine(model_bytes((name, BUILDERS[name], kwargs), "int8"))
    g = engine.graph
    assert [op.opcode for op in g.ops] == ["QUANTIZE", "CONV_2D", "CONV_2D", "ADD", "SOFTMAX", "DEQUANTIZE"]
    add, softmax = g.ops[3], g.ops[4]
    assert g.ops[1].options["activation"] == g.ops[2].options["activation"] == add.options["activation"] == "NONE"
    sim = Simulator(engine.plan)
    for seed in (0, 1, 2):
        x = random_input(g.tensors[g.inputs[0]], seed)
        want = sim.run([x])
        logits = want[add.outputs[0]]
        lq = g.tensors[add.outputs[0]].quant
        real = (logits.astype(np.float64) - lq.zero_point[0]) * lq.scale[0]
        assert real.min() < -5 and (real < 0).mean() > 0.2, "negative activations should survive"
        spread = real.max(axis=-1) - real.min(axis=-1)
        assert logits.reshape(-1, kwargs["c"]).shape[0] == 117 and spread.min() > 10 and np.ptp(real) > 40
        probs = want[softmax.outputs[0]].reshape(-1, kwargs["c"])
        assert (probs == -128).any(axis=1).all() and (probs > -100).any(axis=1).all()
        got = _engine_dump(engine, x, backend, tmp_path / f"{backend}{seed}")
        listed = [i for i in g.written_tensors() if i not in engine.em.folded]
        assert sorted(got) == sorted(listed)
        where = {i: f"{name} [{backend}] seed {seed}: tensor {i} {g.tensors[i].name!r}" for i in listed}
        problems = tensor_mismatches(got, want, where, ("engine", "simulator"))
        assert not problems, "\n".join(problems)


@pytest.mark.parametrize("backend", BACKENDS)
def test_average_pool_rounds_negative_halves_away(backend, tmp_path):
    """int8 AVERAGE_POOL's (acc -+ n/2) / n: 2x2 windows (n = 4, and 2 or 1 at the SAME-padded
    edges) on random inputs put many sums, negative ones included, exactly on a half."""
    from mobilegen.sim.runner import Simulator
    from tests.harness import model_bytes, random_input
    from tests.models import BUILDERS

    from tests.test_engine_cpu import build_engine

    engine = build_engine(model_bytes(("avg_pool", BUILDERS["avg_pool"],
                                       dict(h=9, w=11, c=6, pool=2, stride=2, padding="same")), "int8"))
    g = engine.graph
    pool = next(op for op in g.ops if op.opcode == "AVERAGE_POOL_2D")
    q_in, q_out = pool.inputs[0], pool.outputs[0]
    for seed in (0, 1):
        x = random_input(g.tensors[g.inputs[0]], seed)
        want = Simulator(engine.plan).run([x])
        v = want[q_in][0].astype(np.int64)  # [9, 11, 6]
        padded = np.pad(v, ((0, 1), (0, 1), (0, 0)))
        valid = np.pad(np.ones(v.shape[:2], np.int64), ((0, 1), (0, 1)))
        acc = padded.reshape(5, 2, 6, 2, 6).sum(axis=(1, 3))
        n = valid.reshape(5, 2, 6, 2).sum(axis=(1, 3))[..., None]
        negative_halves = (acc < 0) & (n % 2 == 0) & (acc % n == n // 2)
        assert negative_halves.sum() >= 10, int(negative_halves.sum())
        got = _engine_dump(engine, x, backend, tmp_path / f"{backend}{seed}")
        np.testing.assert_array_equal(got[q_out], want[q_out], err_msg=f"AVERAGE_POOL [{backend}] seed {seed}")
