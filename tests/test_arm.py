"""The generated engine cross-compiled for Arm Linux (aarch64; armv7 with NEON) with Debian's cross
toolchains and run under qemu-user on its CPU backend: every tensor against the simulator (integers
bit for bit, floats within harness.FLOAT_RTOL), NEON code in the hot loops, and `mobilegen verify
--arch` through the CLI.

Engines are built and cached by tests/test_engine_cpu.build_engine (one core library per target);
under CI=true a missing cross g++ or qemu fails instead of skipping. qemu's timings say nothing about
a phone: these tests check numbers, not speed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from tests.harness import random_input, tensor_mismatches
from tests.test_engine_cpu import DEMO_MODEL, _one_op_model, build_engine, compare_with_simulator, require_toolchain

ARCHES = ("aarch64", "armv7")
RUNNER_ARCH = {"aarch64": "aarch64", "armv7": "arm"}  # what mobilegen_run reports

# Awkward shapes of the op sweep (tests/test_ops.py): odd sizes, channels not a multiple of 4 or 16,
# non-square kernels and strides, dilation, depth multipliers, a reduction of 5x5x17 taps; each in
# int8 and, where float32 runs another kernel than a copy, float32.
BOTH, INT8 = ("int8", "float32"), ("int8",)
SWEEP = [
    ("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"), BOTH),
    ("conv2d", dict(h=10, w=6, cin=6, cout=5, k=(3, 2), stride=(2, 1), padding="same", use_bias=False), BOTH),
    ("conv2d", dict(h=5, w=5, cin=17, cout=3, k=5, stride=1, padding="valid"), BOTH),
    ("conv2d", dict(h=11, w=7, cin=13, cout=7, k=1, stride=1, padding="same", activation="relu"), BOTH),
    ("depthwise", dict(h=11, w=11, c=3, k=3, stride=2, padding="valid", depth_multiplier=3, activation="relu"), BOTH),
    ("depthwise", dict(h=12, w=10, c=7, k=3, stride=1, padding="same", dilation=2), INT8),
    ("dense_softmax", dict(in_features=37, units=11), BOTH),
    ("concat", dict(h=5, w=6, c1=3, c2=5), INT8),
]


def _sweep_params():
    return [
        pytest.param(name, kwargs, mode, arch, id=f"{arch}-{name}-{'-'.join(str(v) for v in kwargs.values())}-{mode}")
        for arch in ARCHES
        for name, kwargs, modes in SWEEP
        for mode in modes
    ]


def _float_mobilenet() -> bytes:
    from tests.test_mobilenet import mobilenet_tflite

    return mobilenet_tflite("v1", 0.25, 128, 10, "float32")


# --------------------------------------------------------------------------------------------------
# Every tensor against the simulator
# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,mode,arch", _sweep_params())
def test_one_op_models(name, kwargs, mode, arch, tmp_path):
    engine = build_engine(_one_op_model(name, kwargs, mode), arch=arch)
    compare_with_simulator(engine, f"{arch}: {name}({kwargs}) [{mode}]", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHES)
def test_int8_mobilenet(arch, tmp_path):
    """The demo model (MobileNet V1, int8, 128 px): every tensor bit-exact with the simulator."""
    engine = build_engine(DEMO_MODEL.read_bytes(), DEMO_MODEL.name, arch=arch)
    compare_with_simulator(engine, f"{arch}: demo model int8", tmp_path, seeds=(0,))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHES)
def test_float32_mobilenet(arch, tmp_path):
    """MobileNet V1 0.25 float32: every convolution runs the float GEMM (gemm_block_f32, NEON)."""
    engine = build_engine(_float_mobilenet(), arch=arch)
    compare_with_simulator(engine, f"{arch}: MobileNet v1 0.25 128 float32", tmp_path, seeds=(0,))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHES)
def test_float_kernels_round_as_on_the_host(arch, tmp_path):
    """Float convolutions, depthwise and fully connected layers compute the same products and sums
    in the same order on every target (no fused multiply-add, CMake's -ffp-contract=off): their
    outputs on Arm equal the x86-64 host engine's bit for bit. (Softmax calls libm's expf, which
    may differ between the two C libraries, so its output is left to the simulator comparison.)"""
    model = _float_mobilenet()
    arm, host = build_engine(model, arch=arch), build_engine(model)
    g = arm.graph
    x = random_input(g.tensors[g.inputs[0]], 3)
    dumps = {}
    for engine in (arm, host):
        work = tmp_path / engine.arch
        r = engine.run(x, work)
        assert r.returncode == 0, r.stderr
        dumps[engine.arch] = {i: np.load(work / "dump" / f"{i}.npy") for i in g.written_tensors()
                              if (work / "dump" / f"{i}.npy").exists()}
    arithmetic = [i for op in g.ops if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
                  for i in op.outputs]
    assert len(arithmetic) >= 20
    differ = [f"tensor {i} {g.tensors[i].name!r}" for i in arithmetic
              if not np.array_equal(dumps[arch][i], dumps["host"][i])]
    assert not differ, f"{arch} float results differ from the host's: {differ[:5]}"


# --------------------------------------------------------------------------------------------------
# The NEON code is there
# --------------------------------------------------------------------------------------------------
def _disassembly(arch: str, exe: Path, *symbols: str) -> list[str]:
    """The instructions of those of `symbols` that `exe` has (GCC may inline one into another)."""
    from mobilegen.verify.host import CROSS

    objdump = shutil.which(CROSS[arch].objdump)
    if objdump is None:  # binutils comes with the cross g++
        require_toolchain(arch)
        pytest.fail(f"{CROSS[arch].objdump} not found (apt-get install {CROSS[arch].compiler_package})")
    lines = []
    for symbol in symbols:
        r = subprocess.run([objdump, "-d", "-C", "--no-show-raw-insn", f"--disassemble={symbol}", str(exe)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        lines += [ln.split("\t", 1)[1].strip() for ln in r.stdout.splitlines() if re.match(r"^\s+[0-9a-f]+:\t", ln)]
    assert lines, f"none of {symbols} in {exe}"
    return lines


NS = "mobilegen::(anonymous namespace)::"
FLOAT_GEMM = NS + "gemm_block_f32(float const*, int, float const*, int, float*, int)"
CONV_FLOAT = NS + "ConvFloat::run(unsigned char* const*, mobilegen::(anonymous namespace)::Scratch&)"
INT_GEMM = NS + "gemm_block(short const*, short const*, int, int*, int)"
# Vector float multiply and add, vector 16x16->32 multiply(-accumulate), fused float ops.
NEON = {
    "aarch64": dict(fmul=r"^fmul\s+v\d+\.4s", fadd=r"^fadd\s+v\d+\.4s", imul=r"^smlal2?\s+v\d+\.4s",
                    fused=r"^(fmla|fmls|fmadd|fmsub|fnmadd|fnmsub)\s"),
    "armv7": dict(fmul=r"^vmul\.f32\s+q", fadd=r"^vadd\.f32\s+q", imul=r"^vmull?\.s16\s+q|^vmlal\.s16\s+q",
                  fused=r"^(vfma|vfms|vfnma|vfnms)"),
}


@pytest.mark.parametrize("arch", ARCHES)
def test_neon_in_the_hot_loops(arch, tmp_path):
    """The runner reports an Arm build with NEON; the float GEMM micro-kernel multiplies and adds
    4-float NEON vectors (intrinsics on armv7, where GCC keeps vector types on scalar VFP), never
    fused; the integer GEMM uses NEON's 16-bit widening multiplies."""
    engine = build_engine(_one_op_model(*SWEEP[0][:2], "float32"), arch=arch)
    x = random_input(engine.graph.tensors[engine.graph.inputs[0]], 0)
    r = engine.run(x, tmp_path, dump=False, repeat=2)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["arch"] == RUNNER_ARCH[arch] and report["neon"] is True, report
    pattern = NEON[arch]
    gemm = _disassembly(arch, engine.exe, FLOAT_GEMM, CONV_FLOAT)  # armv7 inlines the GEMM
    for what in ("fmul", "fadd"):
        assert sum(bool(re.match(pattern[what], ln)) for ln in gemm) >= 8, f"{arch}: no NEON {what} in the float GEMM"
    assert not [ln for ln in gemm if re.match(pattern["fused"], ln)], f"{arch}: fused multiply-add in the float GEMM"
    igemm = _disassembly(arch, engine.exe, INT_GEMM)
    assert sum(bool(re.match(pattern["imul"], ln)) for ln in igemm) >= 4, f"{arch}: no NEON 16-bit multiplies in gemm_block"


# --------------------------------------------------------------------------------------------------
# `mobilegen verify --arch` through the CLI
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("arm-demo")
    r = CliRunner().invoke(app, ["generate", str(DEMO_MODEL), "--target", "android", "--out", str(root / "p")])
    assert r.exit_code == 0, r.output
    from mobilegen.inputs import load_input
    from mobilegen.tflite.reader import read_model_file

    g = read_model_file(DEMO_MODEL)
    np.save(root / "x.npy", load_input(DEMO_MODEL.with_name("sample.png"), g.tensors[g.inputs[0]]))
    return root


@pytest.mark.slow
def test_verify_cli_aarch64(demo_project):
    """`mobilegen verify DIR --backend cpu --arch aarch64` builds outside Gradle's build/, writes the
    dump format equal to `mobilegen simulate`'s, and prints the cold run and the best warm run."""
    require_toolchain("aarch64")
    root = demo_project
    runner = CliRunner()
    dump = root / "verify-aarch64"
    r = runner.invoke(app, ["verify", str(root / "p"), "--backend", "cpu", "--arch", "aarch64", "--repeat", "3",
                            "--input", str(root / "x.npy"), "--output", str(root / "y.npy"), "--dump-dir", str(dump)])
    assert r.exit_code == 0, r.output
    assert re.search(r"cpu backend on aarch64: cold run \d+\.\d\d ms, warm \d+\.\d\d ms \(best of 3\)", r.output), r.output
    runner_exe = root / "p" / ".mobilegen" / "host-build" / "aarch64" / "mobilegen_run"
    assert runner_exe.is_file() and not (root / "p" / "build").exists()
    assert b"\x7fELF\x02" == runner_exe.read_bytes()[:5] and runner_exe.read_bytes()[18] == 0xB7  # ELF64, EM_AARCH64
    sim = root / "sim"
    r = runner.invoke(app, ["simulate", str(DEMO_MODEL), "--input", str(root / "x.npy"), "--dump-dir", str(sim),
                            "--output", str(root / "sim.npy"), "--top", "0"])
    assert r.exit_code == 0, r.output
    from mobilegen.dump import read_dump

    records, got = read_dump(dump)
    sim_records, want = read_dump(sim)
    assert records == sim_records
    problems = tensor_mismatches(got, want, {rec["index"]: f"tensor {rec['index']}" for rec in records},
                                 ("aarch64 engine", "simulator"))
    assert not problems, "\n".join(problems)
    np.testing.assert_array_equal(np.load(root / "y.npy"), np.load(root / "sim.npy"))
    # The build directory is not one of the project's files: regenerating (without --force) works.
    r = runner.invoke(app, ["generate", str(DEMO_MODEL), "--target", "android", "--out", str(root / "p")])
    assert r.exit_code == 0, r.output
    assert ".mobilegen" not in json.loads((root / "p" / "mobilegen.json").read_text())["files"]


def test_verify_gpu_on_arm_is_one_line(demo_project):
    r = CliRunner().invoke(app, ["verify", str(demo_project / "p"), "--arch", "armv7", "--input",
                                 str(demo_project / "x.npy"), "--output", str(demo_project / "y.npy")])
    assert r.exit_code != 0
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "--arch armv7" in lines[0] and "--backend cpu" in lines[0], r.output
    assert not (demo_project / "p" / ".mobilegen" / "host-build" / "armv7").exists()


@pytest.mark.parametrize("arch,missing_tool,package", [
    ("aarch64", "aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu"),
    ("armv7", "arm-linux-gnueabihf-g++", "g++-arm-linux-gnueabihf"),
    ("aarch64", "qemu-aarch64", "qemu-user"),
])
def test_missing_cross_tool_is_one_line(demo_project, tmp_path, monkeypatch, arch, missing_tool, package):
    """A PATH with cmake and everything else but one tool: one line naming the Debian package."""
    from mobilegen.verify.host import CROSS

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cmake", CROSS[arch].compiler, CROSS[arch].qemu):
        if tool != missing_tool:
            (bin_dir / tool).symlink_to(shutil.which(tool) or "/bin/false")
    monkeypatch.setenv("PATH", str(bin_dir))
    r = CliRunner().invoke(app, ["verify", str(demo_project / "p"), "--backend", "cpu", "--arch", arch, "--input",
                                 str(demo_project / "x.npy"), "--output", str(tmp_path / "y.npy")])
    assert r.exit_code != 0
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and missing_tool in lines[0] and f"apt-get install {package}" in lines[0], r.output


def test_verify_subprocess_aarch64_default_repeat(demo_project, tmp_path):
    """The installed `mobilegen` command, --arch aarch64 with the default --repeat (10 warm runs);
    the build of test_verify_cli_aarch64 is reused when it ran first."""
    require_toolchain("aarch64")
    from mobilegen.verify.host import default_build_dir

    p = demo_project / "p"
    assert default_build_dir(p) == p / ".mobilegen" / "host-build" / "host"
    exe = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "mobilegen"
    if not exe.exists():
        exe = Path(shutil.which("mobilegen") or exe)
    r = subprocess.run([str(exe), "verify", str(p), "--backend", "cpu", "--arch", "aarch64", "--input",
                        str(demo_project / "x.npy"), "--output", str(tmp_path / "y.npy")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert re.search(r"cold run \d+\.\d\d ms, warm \d+\.\d\d ms \(best of 10\) \(emulated by qemu-aarch64", r.stdout), r.stdout
    assert "under qemu-aarch64" in r.stderr
