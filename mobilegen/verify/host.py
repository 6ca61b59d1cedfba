"""`mobilegen verify`: build a generated project's engine with CMake (the same sources Gradle builds)
and run it headless: on this machine, on Mesa's EGL + GLES 3.1 (llvmpipe) or the CPU fallback; or
cross-compiled for Arm Linux (aarch64, armv7 with NEON) with Debian's cross toolchains and run on
the CPU fallback under qemu-user.

The CMake build lives under PROJECT/.mobilegen/host-build/<arch>, outside Gradle's `build/`
directories and never among the files `mobilegen generate` writes or records. A cross build gets a
CMake toolchain file written next to its cache (mobilegen keeps its text, the user's project does
not) and is linked statically, so qemu needs no sysroot at run time."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from mobilegen.errors import UserInputError

CPP_DIR = Path("sdk/src/main/cpp")
ASSETS = Path("sdk/src/main/assets")
BLOB_NAME = "model.mgw"  # under ASSETS/<sdk name>/ (mobilegen.targets.android)
RUNNER = "mobilegen_run"
BUILD_ROOT = Path(".mobilegen/host-build")


def project_blob(project: Path) -> Path:
    """The weights blob of a generated project: ASSETS/<sdk name>/model.mgw, the one there is."""
    found = sorted((Path(project) / ASSETS).glob(f"*/{BLOB_NAME}"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise UserInputError(f"{project}: {what} {ASSETS}/*/{BLOB_NAME} found; expected the one `mobilegen generate` writes")
    return found[0]


class Arch(str, Enum):
    host = "host"
    aarch64 = "aarch64"
    armv7 = "armv7"


@dataclass(frozen=True)
class CrossTarget:
    """An Arm Linux target: Debian's cross g++, the flags phones' baselines allow, its qemu-user."""

    processor: str  # CMAKE_SYSTEM_PROCESSOR
    compiler: str
    compiler_package: str
    flags: str
    qemu: str
    objdump: str


# The engine has no dotprod (or other post-v8.0) branches, so aarch64 builds for the baseline every
# arm64 phone has. armv7: NEON with the hard-float ABI (Android's armeabi-v7a has NEON too).
CROSS = {
    Arch.aarch64: CrossTarget("aarch64", "aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu", "-march=armv8-a",
                              "qemu-aarch64", "aarch64-linux-gnu-objdump"),
    Arch.armv7: CrossTarget("armv7-a", "arm-linux-gnueabihf-g++", "g++-arm-linux-gnueabihf",
                            "-march=armv7-a -mfpu=neon -mfloat-abi=hard", "qemu-arm", "arm-linux-gnueabihf-objdump"),
}
QEMU_PACKAGE = "qemu-user"


def _tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UserInputError(f"{name} not found; install it ({hint})")
    return path


def _arch(arch: Arch | str) -> Arch:
    try:
        return Arch(arch)
    except ValueError:
        raise UserInputError(f"--arch {arch}: expected one of {', '.join(a.value for a in Arch)}") from None


def check_backend(arch: Arch | str, backend: str) -> None:
    """The GPU backend runs on this machine's Mesa only; cross builds run the CPU fallback."""
    arch = _arch(arch)
    if arch is not Arch.host and backend != "cpu":
        raise UserInputError(f"--arch {arch.value} runs the CPU fallback under qemu (no GLES there); "
                             f"use --backend cpu, or --arch host for --backend {backend}")


def toolchain_text(arch: Arch | str) -> str:
    """The CMake toolchain file of a cross target."""
    t = CROSS[_arch(arch)]
    return "\n".join([
        f"# mobilegen: cross build of the engine for {t.processor} Linux (run under {t.qemu}).",
        "set(CMAKE_SYSTEM_NAME Linux)",
        f"set(CMAKE_SYSTEM_PROCESSOR {t.processor})",
        f"set(CMAKE_CXX_COMPILER {t.compiler})",
        f'set(CMAKE_CXX_FLAGS_INIT "{t.flags}")',
        'set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")',
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)",
        "",
    ])


def require_tools(arch: Arch | str) -> None:
    """CMake, and for a cross target its g++ and qemu-user; a one-line error naming the Debian
    package of the first one missing."""
    _tool("cmake", "apt-get install cmake")
    arch = _arch(arch)
    if arch is not Arch.host:
        t = CROSS[arch]
        _tool(t.compiler, f"apt-get install {t.compiler_package}")
        _tool(t.qemu, f"apt-get install {QEMU_PACKAGE}")


def cmake_args(arch: Arch | str, build_dir: Path) -> list[str]:
    """Extra CMake configure arguments for `arch` (none for the host); writes the toolchain file of a
    cross target into `build_dir`. Raises a one-line error naming the Debian package of a missing tool."""
    arch = _arch(arch)
    if arch is Arch.host:
        return []
    require_tools(arch)
    build_dir.mkdir(parents=True, exist_ok=True)
    toolchain = build_dir / "mobilegen-toolchain.cmake"
    text = toolchain_text(arch)
    if not toolchain.is_file() or toolchain.read_text() != text:
        toolchain.write_text(text)
    return [f"-DCMAKE_TOOLCHAIN_FILE={toolchain.resolve()}", "-DMOBILEGEN_GLES=OFF"]


def launcher(arch: Arch | str) -> list[str]:
    """The command prefix that runs an `arch` executable here: nothing, or qemu-user."""
    arch = _arch(arch)
    if arch is Arch.host:
        return []
    return [_tool(CROSS[arch].qemu, f"apt-get install {QEMU_PACKAGE}")]


def default_build_dir(project: Path, arch: Arch | str = Arch.host, *, min_size: bool = False) -> Path:
    return Path(project) / BUILD_ROOT / (_arch(arch).value + ("-minsize" if min_size else ""))


def build_host(project: Path, build_dir: Path | None = None, *, min_size: bool = False,
               arch: Arch | str = Arch.host) -> Path:
    """Configure and build the runner of `project` for `arch`; returns its path."""
    project = Path(project)
    src = project / CPP_DIR
    if not (src / "CMakeLists.txt").is_file():
        raise UserInputError(f"{project}: no {CPP_DIR}/CMakeLists.txt; expected a project made by `mobilegen generate --target android`")
    cmake = _tool("cmake", "apt-get install cmake")
    build = Path(build_dir) if build_dir else default_build_dir(project, arch, min_size=min_size)
    configure = [cmake, "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", *cmake_args(arch, build)]
    if min_size:
        configure.append("-DMOBILEGEN_MIN_SIZE=ON")
    for cmd in (configure, [cmake, "--build", str(build), "--target", RUNNER, "-j", "2"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            tail = (r.stdout + r.stderr).strip().splitlines()[-15:]
            raise UserInputError(f"host build failed ({' '.join(cmd[:2])} ...):\n" + "\n".join(tail))
    runner = build / RUNNER
    if not runner.is_file():
        raise UserInputError(f"the build did not produce {runner}")
    return runner


def run_host(
    runner: Path, project: Path, inputs: Path | list[Path], outputs: Path | list[Path], *,
    dump_dir: Path | None = None, backend: str = "gpu", cache_dir: Path | None = None, repeat: int = 1,
    arch: Arch | str = Arch.host,
) -> dict:
    """Run the built engine `repeat` times (the first run cold, the others warm), then once more
    with `dump_dir`; returns the runner's JSON report. `inputs` / `outputs`: one .npy per graph
    input / output, in the model's order (a single path for a single one)."""
    check_backend(arch, backend)
    inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    outputs = [outputs] if isinstance(outputs, (str, Path)) else list(outputs)
    cmd = [*launcher(arch), str(runner), "--blob", str(project_blob(project))]
    cmd += [a for p in inputs for a in ("--input", str(p))] + [a for p in outputs for a in ("--output", str(p))]
    cmd += ["--backend", backend, "--repeat", str(repeat)]
    if dump_dir is not None:
        cmd += ["--dump-dir", str(dump_dir)]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
        raise UserInputError(f"engine run failed: {msg}")
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}
