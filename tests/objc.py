"""Syntax-checking Objective-C (.h, .m, .mm) on Linux: clang-19 with ARC against GNUstep's
Foundation plus the Apple stub headers under tests/apple_stubs (UIKit, CoreGraphics, CoreVideo,
ImageIO, PhotosUI, XCTest, Metal, dispatch, and the Foundation macros GNUstep lacks).

    syntax_check(sources, include_dirs=(), objcxx=None)

runs, once for all `sources`,

    clang-19 -fsyntax-only -fobjc-arc -fblocks -fobjc-runtime=gnustep-2.0 -Wall
             -Wnullability-completeness -Werror -I tests/apple_stubs -I <include_dirs>
             $(gnustep-config --objc-flags) [-x objective-c++ -std=c++17]

and asserts with clang's output when it fails: every warning is an error, GNUstep's own headers
excepted (they are searched as system headers). `objcxx`: None picks the language from each file's
suffix (.mm Objective-C++, anything else Objective-C), True or False forces it for all.

Two fix-ups make Debian's GNUstep usable from clang (it is built on GCC's libobjc, whose headers
clang does not search): a copy of GCC's objc/ headers with the one inline function ARC rejects
(`object->class_pointer` on an `id`) bridged, and objc/blocks_runtime.h forwarding to the
BlocksRuntime's <Block.h>. The copy lives in a temporary folder keyed by the headers' contents.
ARC code checks (and compiles to objects) here but cannot link or run: there is no libobjc2.

Missing tools skip locally naming the Debian packages, and fail under CI=true (tests/harness.py).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.harness import missing, require_tool

STUBS = Path(__file__).resolve().parent / "apple_stubs"
GNUSTEP_PACKAGES = "libgnustep-base-dev gnustep-make libblocksruntime-dev"
GNUSTEP_FOUNDATION = Path("/usr/include/GNUstep/Foundation/Foundation.h")
BLOCK_H = Path("/usr/include/Block.h")
# The one line of GCC's objc/runtime.h that ARC refuses, and its bridged form.
_ARC_FIX = (
    "return object->class_pointer;",
    "return ((struct objc_object *)(__bridge void *)object)->class_pointer;",
)
# Warnings that are errors (with -Werror, all of -Wall too): a header whose nullability is
# incomplete is what Swift imports as implicitly unwrapped optionals.
WARNINGS = ("-Wall", "-Wnullability-completeness", "-Werror")


def _tools() -> tuple[str, str]:
    clang = require_tool("clang-19", "clang-19")
    config = require_tool("gnustep-config", GNUSTEP_PACKAGES)
    for header in (GNUSTEP_FOUNDATION, BLOCK_H):
        if not header.exists():
            missing(f"{header} is missing; install it with: apt-get install {GNUSTEP_PACKAGES} (make setup does)")
    return clang, config


def _gcc_objc_dir() -> Path:
    """GCC's objc/ headers (libobjc-<gcc>-dev, which libgnustep-base-dev pulls in): newest GCC first."""
    def gcc_version(header: str) -> int:
        version = Path(header).parts[-4]  # /usr/lib/gcc/<triple>/<version>/include/objc/objc.h
        return int(version) if version.isdigit() else 0

    found = sorted(glob.glob("/usr/lib/gcc/*/*/include/objc/objc.h"), key=gcc_version)
    if not found:
        missing(f"GCC's objc headers are missing; install them with: apt-get install {GNUSTEP_PACKAGES} (make setup does)")
    return Path(found[-1]).parent


@functools.lru_cache(maxsize=None)
def _objc_runtime_headers() -> Path:
    """A folder holding objc/: GCC's runtime headers made acceptable to clang with ARC."""
    source = _gcc_objc_dir()
    texts = {p.name: p.read_bytes() for p in sorted(source.glob("*.h"))}
    key = hashlib.sha256(b"".join(name.encode() + text for name, text in texts.items())).hexdigest()[:16]
    root = Path(tempfile.gettempdir()) / f"mobilegen-objc-{key}"
    if (root / "objc" / "blocks_runtime.h").exists():
        return root
    staging = Path(tempfile.mkdtemp(prefix="mobilegen-objc-"))
    (staging / "objc").mkdir()
    for name, text in texts.items():
        body = text.decode()
        if name == "runtime.h":
            assert _ARC_FIX[0] in body, f"{source / name}: the line ARC rejects has changed; update tests/objc.py"
            body = body.replace(*_ARC_FIX)
        (staging / "objc" / name).write_text(body)
    (staging / "objc" / "blocks_runtime.h").write_text("#include <Block.h>\n")
    try:
        staging.rename(root)
    except OSError:  # another process made it first
        shutil.rmtree(staging, ignore_errors=True)
    return root


@functools.lru_cache(maxsize=None)
def _gnustep_flags(config: str) -> tuple[str, ...]:
    """gnustep-config --objc-flags without the dependency-file flags (-fsyntax-only would still
    write .d files) and with its include folders searched as system headers."""
    out = subprocess.run([config, "--objc-flags"], capture_output=True, text=True, check=True).stdout.split()
    flags = []
    for flag in out:
        if flag in ("-MMD", "-MP", "-I."):
            continue
        flags.append("-isystem" + flag[2:] if flag.startswith("-I") else flag)
    return tuple(flags)


def _is_objcxx(source: str | Path, objcxx: bool | None) -> bool:
    return objcxx if objcxx is not None else Path(source).suffix == ".mm"


def clang_command(
    sources: Sequence[str | Path], include_dirs: Iterable[str | Path] = (), objcxx: bool = False,
    *, flags: Sequence[str] = ()
) -> list[str]:
    """The clang-19 command line that checks `sources`, all in one language (`flags` come last)."""
    clang, config = _tools()
    cmd = [clang, "-fsyntax-only", "-fobjc-arc", "-fblocks", "-fobjc-runtime=gnustep-2.0", *WARNINGS, f"-I{STUBS}"]
    cmd += [f"-I{d}" for d in include_dirs]
    cmd += [*_gnustep_flags(config), "-isystem", str(_objc_runtime_headers())]
    cmd += ["-x", "objective-c++", "-std=c++17"] if objcxx else ["-x", "objective-c"]
    return cmd + list(flags) + [str(s) for s in sources]


def run_clang(
    sources: Sequence[str | Path], include_dirs: Iterable[str | Path] = (), objcxx: bool | None = None,
    *, flags: Sequence[str] = ()
) -> subprocess.CompletedProcess:
    """Checks `sources` (one clang run per language) and returns the first failed run, else the
    last one: for tests that expect a failure and look at the diagnostics."""
    assert sources, "nothing to check"
    res = None
    for cxx in (False, True):
        group = [s for s in sources if _is_objcxx(s, objcxx) == cxx]
        if group:
            res = subprocess.run(clang_command(group, include_dirs, cxx, flags=flags), capture_output=True, text=True)
            if res.returncode != 0:
                return res
    return res


def syntax_check(
    sources: Sequence[str | Path], include_dirs: Iterable[str | Path] = (), objcxx: bool | None = None,
    *, flags: Sequence[str] = ()
) -> None:
    """Asserts that every file of `sources` syntax-checks (see the module docstring)."""
    res = run_clang(sources, include_dirs, objcxx, flags=flags)
    assert res.returncode == 0, f"clang-19 -fsyntax-only failed on {[str(s) for s in sources]}:\n{res.stdout}{res.stderr}"
