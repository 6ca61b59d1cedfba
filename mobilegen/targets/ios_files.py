"""The iOS project's hand-written half, rendered from templates/ios: the Objective-C SDK
(Sources/<module>/, its Metal adapter in Sources/<module>/Metal/), the sample app's and the XCTest's
sources, Package.swift, project.yml and the README.

Templates ending in `.j2` are rendered (the suffix is dropped); other files are copied verbatim.
Directory and file names may hold placeholders such as `{{ module }}`. The engine tree, the
resources (weights blob, labels.json, tensors.json), the sample image, the golden tensors, the
property lists, the Xcode project and the provenance file come from the caller
(mobilegen.targets.ios).
"""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment

from mobilegen.errors import UserInputError
from mobilegen.render import template_environment
from mobilegen.render.escape import FILTERS, float32_literal

IOS_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "ios"

# The module (`--module`) names the Swift/Clang module, the framework, the SwiftPM target and
# product, the umbrella header and the Sources/ folder: an ASCII identifier, so it means the same
# in Swift, Objective-C, file systems and bundle names.
_MODULE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MODULE_MAX = 64
DEFAULT_MODULE = "MobilegenClassifier"
# Modules an app imports next to ours (the frameworks the SDK links, the test and language runtimes).
RESERVED_MODULES = frozenset({
    "Foundation", "UIKit", "Metal", "CoreGraphics", "CoreVideo", "ImageIO", "CoreFoundation", "CoreImage",
    "QuartzCore", "PhotosUI", "Photos", "XCTest", "Swift", "SwiftUI", "ObjectiveC", "Darwin", "Dispatch", "os",
    "MetalKit", "MetalPerformanceShaders", "CoreML", "Vision", "Accelerate", "std",
})


def validate_module(name: str) -> str:
    """`name` if it can name the SDK's module, else a one-line UserInputError naming the rule."""
    problem = None
    if not name:
        problem = "it is empty"
    elif not (name[0].isascii() and name[0].isalpha()):
        problem = f"it must start with an ASCII letter, not {name[0]!r}"
    elif not _MODULE.fullmatch(name):
        bad = next(ch for ch in name if not _MODULE.fullmatch("a" + ch))
        problem = f"character {bad!r} is not allowed (ASCII letters, digits and _ only)"
    elif len(name) > MODULE_MAX:
        problem = f"it has {len(name)} characters, at most {MODULE_MAX} are allowed"
    elif name in RESERVED_MODULES:
        problem = "it is the name of a system module the app also imports"
    if problem:
        raise UserInputError(f"invalid --module {name!r}: {problem}")
    return name


# CFBundleIdentifier: ASCII letters, digits, '-' and '.' (Apple's rule), reverse-DNS.
_BUNDLE_SEGMENT = re.compile(r"[A-Za-z0-9-]+")
BUNDLE_ID_MAX = 155  # App Store Connect's limit


def validate_bundle_id(bundle_id: str) -> str:
    """`bundle_id` if it is a reverse-DNS bundle identifier, else a one-line UserInputError."""
    segments = bundle_id.split(".")
    problem = None
    if not bundle_id:
        problem = "it is empty; expected reverse-DNS segments separated by dots, like com.example.classifier"
    elif len(segments) < 2:
        problem = "it has one segment; a bundle identifier is reverse-DNS, like com.example.classifier"
    elif len(bundle_id) > BUNDLE_ID_MAX:
        problem = f"it has {len(bundle_id)} characters, at most {BUNDLE_ID_MAX} are allowed"
    else:
        for i, seg in enumerate(segments, 1):
            if not seg:
                problem = f"segment {i} is empty (a leading, trailing or doubled dot)"
            elif not _BUNDLE_SEGMENT.fullmatch(seg):
                bad = next(ch for ch in seg if not _BUNDLE_SEGMENT.fullmatch(ch))
                problem = f"segment {seg!r} holds {bad!r}, which is not allowed (ASCII letters, digits and - only)"
            elif seg[0] == "-" or seg[-1] == "-":
                problem = f"segment {seg!r} starts or ends with '-'"
            if problem:
                break
    if problem:
        raise UserInputError(f"invalid --bundle-id {bundle_id!r}: {problem}")
    return bundle_id


def app_target_name(app_name: str, module: str) -> str:
    """The Xcode app target (and .xcodeproj) name for the display name `app_name`: its ASCII
    letters and digits in CamelCase ("Mobilegen Demo" -> MobilegenDemo). The display name itself
    goes into Info.plist unchanged."""
    words = re.findall(r"[A-Za-z0-9]+", app_name)
    name = "".join(w[0].upper() + w[1:] for w in words)[:MODULE_MAX] or "MobilegenApp"
    if not name[0].isalpha():
        name = "App" + name
    if name in (module, module + "Tests") or name in RESERVED_MODULES:
        name += "App"
    return name


def environment() -> Environment:
    return template_environment(IOS_TEMPLATES, dict(FILTERS, c_float=float32_literal))


def ios_files(ctx: dict) -> dict[str, str | bytes]:
    """Relative output path -> text of every file under templates/ios, rendered with `ctx`
    (see mobilegen.targets.ios.ios_project for its keys)."""
    env = environment()
    files: dict[str, str | bytes] = {}
    for path in sorted(IOS_TEMPLATES.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(IOS_TEMPLATES).as_posix()
        out = env.from_string(rel).render(ctx) if "{{" in rel else rel
        if rel.endswith(".j2"):
            files[out[: -len(".j2")]] = env.get_template(rel).render(ctx)
        else:
            files[out] = path.read_bytes().decode("utf-8")
    return files
