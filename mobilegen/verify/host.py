"""`mobilegen verify`: build a generated project's engine on this machine with CMake (the same
sources Gradle builds) and run it headless: on Mesa's EGL + GLES 3.1 (llvmpipe) or the CPU fallback."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from mobilegen.errors import UserInputError

CPP_DIR = Path("sdk/src/main/cpp")
ASSETS = Path("sdk/src/main/assets")
BLOB_NAME = "model.mgw"  # under ASSETS/<sdk name>/ (mobilegen.targets.android)
RUNNER = "mobilegen_run"


def project_blob(project: Path) -> Path:
    """The weights blob of a generated project: ASSETS/<sdk name>/model.mgw, the one there is."""
    found = sorted((Path(project) / ASSETS).glob(f"*/{BLOB_NAME}"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise UserInputError(f"{project}: {what} {ASSETS}/*/{BLOB_NAME} found; expected the one `mobilegen generate` writes")
    return found[0]


def _tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UserInputError(f"{name} not found; install it ({hint})")
    return path


def build_host(project: Path, build_dir: Path | None = None, *, min_size: bool = False) -> Path:
    """Configure and build the host runner of `project`; returns its path."""
    project = Path(project)
    src = project / CPP_DIR
    if not (src / "CMakeLists.txt").is_file():
        raise UserInputError(f"{project}: no {CPP_DIR}/CMakeLists.txt; expected a project made by `mobilegen generate --target android`")
    cmake = _tool("cmake", "apt-get install cmake")
    build = Path(build_dir) if build_dir else project / "build" / ("host-minsize" if min_size else "host")
    configure = [cmake, "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"]
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
    runner: Path, project: Path, input_npy: Path, output_npy: Path, *, dump_dir: Path | None = None,
    backend: str = "gpu", cache_dir: Path | None = None, repeat: int = 1,
) -> dict:
    """Run the built engine once (or `repeat` times); returns the runner's JSON report."""
    cmd = [str(runner), "--blob", str(project_blob(project)), "--input", str(input_npy), "--output", str(output_npy),
           "--backend", backend, "--repeat", str(repeat)]
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
