"""`mobilegen verify`: build a generated project's engine with CMake and run it headless.

The target is detected from the project:
  Android  sdk/src/main/cpp (the sources Gradle builds), blob sdk/src/main/assets/<sdk name>/model.mgw:
           on this machine on Mesa's EGL + GLES 3.1 (llvmpipe) or the CPU fallback; or cross-compiled
           for Arm Linux (aarch64, armv7 with NEON) with Debian's cross toolchains and run on the CPU
           fallback under qemu-user.
  iOS      Sources/<module>/cpp (the engine core Xcode and SwiftPM compile, plus metal_host/), blob
           Sources/<module>/Resources/model.mgw: the host proof, built with clang++-19. Its GPU
           backend is the engine's own Metal backend over the host executor, which runs the
           generated Metal kernels compiled as C++ (CMake's MOBILEGEN_GPU=METAL_HOST).

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
IOS_SOURCES = Path("Sources")  # Sources/<module>/cpp and Sources/<module>/Resources/model.mgw
RUNNER = "mobilegen_run"
BUILD_ROOT = Path(".mobilegen/host-build")
IOS_COMPILER = "clang++-19"  # the Metal shim needs clang >= 15 (half as _Float16)
IOS_COMPILER_PACKAGE = "clang-19"


@dataclass(frozen=True)
class Project:
    """Where a generated project keeps its engine: `target` ("android" or "ios"), the CMake source
    folder and the weights blob."""

    target: str
    cpp_dir: Path
    blob: Path


def _one(project: Path, pattern: str, found: list[Path]) -> Path:
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise UserInputError(f"{project}: {what} {pattern} found; expected the one `mobilegen generate` writes")
    return found[0]


def detect_project(project: Path) -> Project:
    """The target of a project made by `mobilegen generate` (Android or iOS), from its layout."""
    project = Path(project)
    if (project / CPP_DIR / "CMakeLists.txt").is_file():
        blob = _one(project, f"{ASSETS}/*/{BLOB_NAME}", sorted((project / ASSETS).glob(f"*/{BLOB_NAME}")))
        return Project("android", project / CPP_DIR, blob)
    ios = sorted(p.parent for p in (project / IOS_SOURCES).glob("*/cpp/CMakeLists.txt"))
    if ios:
        cpp = _one(project, f"{IOS_SOURCES}/*/cpp/CMakeLists.txt", ios)
        blob = cpp.parent / "Resources" / BLOB_NAME
        if not blob.is_file():
            raise UserInputError(f"{project}: no {blob.relative_to(project)}; expected the one `mobilegen generate` writes")
        return Project("ios", cpp, blob)
    raise UserInputError(f"{project}: neither {CPP_DIR}/CMakeLists.txt (Android) nor {IOS_SOURCES}/*/cpp/CMakeLists.txt "
                         "(iOS) found; expected a project made by `mobilegen generate`")


def project_blob(project: Path) -> Path:
    """The weights blob of a generated project (Android: ASSETS/<sdk name>/model.mgw; iOS:
    Sources/<module>/Resources/model.mgw), the one there is."""
    return detect_project(project).blob


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


def check_backend(arch: Arch | str, backend: str, target: str = "android") -> None:
    """The GPU backend runs on this machine's Mesa only; cross builds run the CPU fallback. An iOS
    project's host proof is built for this machine only."""
    arch = _arch(arch)
    if target == "ios" and arch is not Arch.host:
        raise UserInputError(f"--arch {arch.value}: an iOS project's engine is verified on this machine (--arch host), "
                             "its Metal backend through the host executor")
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


def require_tools(arch: Arch | str, target: str = "android") -> None:
    """CMake, and for a cross target its g++ and qemu-user, for an iOS project clang++-19; a
    one-line error naming the Debian package of the first one missing."""
    _tool("cmake", "apt-get install cmake")
    if target == "ios":
        _tool(IOS_COMPILER, f"apt-get install {IOS_COMPILER_PACKAGE}; the iOS host proof compiles the Metal kernels "
                            "as C++ with clang >= 15")
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
    """Configure and build the runner of `project` (Android or iOS, detect_project) for `arch`;
    returns its path."""
    project = Path(project)
    layout = detect_project(project)
    src = layout.cpp_dir
    check_backend(arch, "cpu", layout.target)
    require_tools(arch, layout.target)
    cmake = _tool("cmake", "apt-get install cmake")
    build = Path(build_dir) if build_dir else default_build_dir(project, arch, min_size=min_size)
    configure = [cmake, "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", *cmake_args(arch, build)]
    if layout.target == "ios":
        configure += [f"-DCMAKE_CXX_COMPILER={shutil.which(IOS_COMPILER)}", "-DMOBILEGEN_GPU=METAL_HOST"]
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
    check_backend(arch, backend, detect_project(project).target)
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
