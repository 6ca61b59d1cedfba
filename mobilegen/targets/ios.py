"""`mobilegen generate --target ios`: a Swift package and an Xcode project with the SDK framework
(the shared C++ engine with its Metal backend, the Objective-C API, the resources), a UIKit sample
app and an XCTest target, rendered from one plan.

Layout (DIR = --out; see ../ios_contract.md):
  Package.swift, project.yml, <App>.xcodeproj/, README.md, mobilegen.json
  Sources/<module>/    include/<module>/*.h (public API), *.mm, Metal/*.mm, cpp/ (engine tree),
                       Resources/ (model.mgw, labels.json, tensors.json, PrivacyInfo.xcprivacy)
  App/                 the sample app (Objective-C), Info.plist, sample.png, PrivacyInfo.xcprivacy
  Tests/               the golden XCTest and golden_input<n>.bin / golden_output<n>.bin
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from mobilegen import __version__
from mobilegen.dump import tensor_record
from mobilegen.errors import UserInputError
from mobilegen.export import export_plan, plan_for_precision
from mobilegen.render.escape import plist
from mobilegen.targets.android import FLOAT_TOLERANCE, golden_files, precision_files, preprocessing, sample_png
from mobilegen.targets.engine_tree import engine_files
from mobilegen.targets.ios_files import (DEFAULT_MODULE, app_target_name, ios_files, validate_bundle_id,
                                         validate_module)
from mobilegen.targets.writer import FileAction, write_project
from mobilegen.targets.xcode import XcodeTarget, pbxproj, scheme
from mobilegen.tflite.reader import read_model

DEFAULT_BUNDLE_ID = "com.example.mobilegen"
# iOS 15: UIScene, PHPickerViewController, MTLBinaryArchive and Metal 2.4 are all there.
DEPLOYMENT_TARGET = "15.0"
SWIFT_TOOLS_VERSION = "5.9"
RESOURCE_FILES = ("model.mgw", "labels.json", "tensors.json", "PrivacyInfo.xcprivacy")
# Parts of the engine tree that are for the host proof only (paths under Sources/<module>/):
# neither SwiftPM nor Xcode compiles them.
EXCLUDED = ("cpp/CMakeLists.txt", "cpp/host", "cpp/metal_host")
# What SwiftPM compiles in a C-family target (every such file not excluded); the Xcode
# framework target compiles the same list.
SOURCE_SUFFIXES = (".c", ".cpp", ".m", ".mm")
SYSTEM_FRAMEWORKS = ("Metal", "Foundation", "UIKit", "CoreGraphics", "CoreVideo", "ImageIO")
APP_FRAMEWORKS = ("UIKit", "PhotosUI")
SAMPLE_IMAGE = "App/sample.png"

# Apple's required-reason APIs (developer.apple.com, "Describing use of required reason API"):
# category, the reason code that fits this code, and the spellings that use it. The privacy
# manifests declare a category exactly when the sources they cover use one of its APIs.
REQUIRED_REASON_APIS = (
    ("NSPrivacyAccessedAPICategoryFileTimestamp", "C617.1",  # files inside the app's own container
     r"\b(creationDate|modificationDate|fileModificationDate|NSFileCreationDate|NSFileModificationDate|"
     r"NSURLContentModificationDateKey|NSURLCreationDateKey|getattrlist|getattrlistbulk|fgetattrlist|getattrlistat|"
     r"stat|lstat|fstat|fstatat)\b\s*[\(\]\);,]"),
    ("NSPrivacyAccessedAPICategorySystemBootTime", "35F9.1",  # elapsed time between events in the app
     r"\b(systemUptime|mach_absolute_time)\b"),
    ("NSPrivacyAccessedAPICategoryDiskSpace", "E174.1",  # enough space to write files
     r"\b(NSURLVolumeAvailableCapacityKey|NSURLVolumeAvailableCapacityForImportantUsageKey|"
     r"NSURLVolumeAvailableCapacityForOpportunisticUsageKey|NSURLVolumeTotalCapacityKey|NSFileSystemFreeSize|"
     r"NSFileSystemSize|statfs|statvfs|fstatfs|fstatvfs)\b\s*[\(\]\);,]"),
    ("NSPrivacyAccessedAPICategoryActiveKeyboards", "54BD.1", r"\bactiveInputModes\b"),
    ("NSPrivacyAccessedAPICategoryUserDefaults", "CA92.1", r"\b(NSUserDefaults|UserDefaults)\b"),
)


@dataclass
class IOSOptions:
    bundle_id: str = DEFAULT_BUNDLE_ID
    module: str = DEFAULT_MODULE
    app_name: str = "Mobilegen Classifier"
    labels: list[str] | None = None  # default: the model's metadata, else class_<i>
    precision: str | None = None  # default: the model's own (int8 for integer models, fp32 for float)
    # Image normalization (pixel - mean) / std; default: the model's metadata, else DEFAULT_MEAN/STD.
    mean: float | None = None
    std: float | None = None
    # Precision fp16: the float tensors stored in float32 (TFLite tensor indices, from a precision
    # plan: mobilegen.precision_plan), and that plan's JSON, written as precision_plan.json.
    keep_fp32: frozenset[int] = frozenset()
    precision_plan: str | None = None


def check_ios_model(g) -> None:
    """What the iOS SDK asks of a model beyond the engine: its first input is the picture
    classifyImage: feeds, [1][h][w][1 or 3]. A one-line UserInputError otherwise."""
    t = g.tensors[g.inputs[0]]
    if len(t.shape) != 4 or t.shape[3] not in (1, 3):
        raise UserInputError(f"the iOS SDK takes images: the model input {t.describe()} is not [1][h][w][1 or 3]")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def privacy_manifest(sources: dict[str, str]) -> bytes:
    """PrivacyInfo.xcprivacy for code made of `sources`: no tracking, no collected data, and the
    required-reason API categories the code uses (comments aside), each with its reason."""
    code = "\n".join(_strip_comments(t) for t in sources.values())
    accessed = [{"NSPrivacyAccessedAPIType": category, "NSPrivacyAccessedAPITypeReasons": [reason]}
                for category, reason, pattern in REQUIRED_REASON_APIS if re.search(pattern, code)]
    return plist({
        "NSPrivacyTracking": False,
        "NSPrivacyTrackingDomains": [],
        "NSPrivacyCollectedDataTypes": [],
        "NSPrivacyAccessedAPITypes": accessed,
    })


def app_info_plist(app_name: str) -> bytes:
    """The sample app's Info.plist. The photo picker (PHPickerViewController) runs out of
    process, so the app needs no photo library usage description."""
    return plist({
        "CFBundleDevelopmentRegion": "$(DEVELOPMENT_LANGUAGE)",
        "CFBundleDisplayName": app_name,
        "CFBundleExecutable": "$(EXECUTABLE_NAME)",
        "CFBundleIdentifier": "$(PRODUCT_BUNDLE_IDENTIFIER)",
        "CFBundleInfoDictionaryVersion": "6.0",
        "CFBundleName": "$(PRODUCT_NAME)",
        "CFBundlePackageType": "$(PRODUCT_BUNDLE_PACKAGE_TYPE)",
        "CFBundleShortVersionString": "1.0",
        "CFBundleVersion": "1",
        "LSRequiresIPhoneOS": True,
        # Files (and Finder) show Documents/, where the sample app writes its tensor dumps.
        "LSSupportsOpeningDocumentsInPlace": True,
        "UIApplicationSceneManifest": {
            "UIApplicationSupportsMultipleScenes": False,
            "UISceneConfigurations": {
                "UIWindowSceneSessionRoleApplication": [
                    {"UISceneConfigurationName": "Default Configuration", "UISceneDelegateClassName": "SceneDelegate"},
                ],
            },
        },
        "UIFileSharingEnabled": True,
        "UILaunchScreen": {},
        "UISupportedInterfaceOrientations": ["UIInterfaceOrientationPortrait", "UIInterfaceOrientationLandscapeLeft",
                                             "UIInterfaceOrientationLandscapeRight"],
        "UISupportedInterfaceOrientations~ipad": ["UIInterfaceOrientationPortrait", "UIInterfaceOrientationPortraitUpsideDown",
                                                  "UIInterfaceOrientationLandscapeLeft", "UIInterfaceOrientationLandscapeRight"],
    })


def compiled_sources(paths, module: str) -> list[str]:
    """The files SwiftPM compiles in the target at Sources/<module>: every C-family source under
    it that Package.swift does not exclude. The Xcode framework target compiles exactly these."""
    root = f"Sources/{module}/"
    out = []
    for p in sorted(paths):
        if not p.startswith(root) or not p.endswith(SOURCE_SUFFIXES):
            continue
        rel = p[len(root):]
        if any(rel == x or rel.startswith(x + "/") for x in EXCLUDED):
            continue
        out.append(p)
    return out


def project_settings() -> dict[str, dict]:
    """Project-level build settings (Xcode's iOS template, trimmed to what the targets need)."""
    common = {
        "ALWAYS_SEARCH_USER_PATHS": "NO",
        "CLANG_ANALYZER_NONNULL": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "CLANG_CXX_LIBRARY": "libc++",
        "CLANG_ENABLE_MODULES": "YES",
        "CLANG_ENABLE_OBJC_ARC": "YES",
        "CLANG_WARN_DOCUMENTATION_COMMENTS": "YES",
        "CLANG_WARN_NULLABLE_TO_NONNULL_CONVERSION": "YES",
        "CLANG_WARN_OBJC_IMPLICIT_RETAIN_SELF": "YES",
        "CLANG_WARN_UNGUARDED_AVAILABILITY": "YES_AGGRESSIVE",
        "COPY_PHASE_STRIP": "NO",
        "ENABLE_STRICT_OBJC_MSGSEND": "YES",
        "ENABLE_USER_SCRIPT_SANDBOXING": "YES",
        "GCC_C_LANGUAGE_STANDARD": "gnu17",
        "GCC_NO_COMMON_BLOCKS": "YES",
        "GCC_WARN_UNINITIALIZED_AUTOS": "YES_AGGRESSIVE",
        "IPHONEOS_DEPLOYMENT_TARGET": DEPLOYMENT_TARGET,
        "SDKROOT": "iphoneos",
    }
    return {
        "Debug": dict(sorted({
            **common, "DEBUG_INFORMATION_FORMAT": "dwarf", "ENABLE_TESTABILITY": "YES", "GCC_OPTIMIZATION_LEVEL": "0",
            "GCC_PREPROCESSOR_DEFINITIONS": ["DEBUG=1", "$(inherited)"], "ONLY_ACTIVE_ARCH": "YES",
        }.items())),
        "Release": dict(sorted({
            **common, "DEBUG_INFORMATION_FORMAT": "dwarf-with-dsym", "ENABLE_NS_ASSERTIONS": "NO", "VALIDATE_PRODUCT": "YES",
        }.items())),
    }


def target_settings(module: str, app_target: str, bundle_id: str) -> dict[str, dict]:
    """Target name -> its build settings (both configurations; project.yml carries the same)."""
    src = f"Sources/{module}/"
    return {
        module: {
            "CURRENT_PROJECT_VERSION": "1",
            "DEFINES_MODULE": "YES",
            "DYLIB_COMPATIBILITY_VERSION": "1",
            "DYLIB_CURRENT_VERSION": "1",
            "DYLIB_INSTALL_NAME_BASE": "@rpath",
            "GENERATE_INFOPLIST_FILE": "YES",
            # As SwiftPM searches them: the public headers (publicHeadersPath) and the engine's
            # (headerSearchPath("cpp/engine")).
            "HEADER_SEARCH_PATHS": ["$(inherited)", f"$(SRCROOT)/{src}include", f"$(SRCROOT)/{src}cpp/engine"],
            "INSTALL_PATH": "$(LOCAL_LIBRARY_DIR)/Frameworks",
            "LD_RUNPATH_SEARCH_PATHS": ["$(inherited)", "@executable_path/Frameworks", "@loader_path/Frameworks"],
            "MARKETING_VERSION": "1.0",
            "PRODUCT_BUNDLE_IDENTIFIER": f"{bundle_id}.sdk",
            "PRODUCT_NAME": "$(TARGET_NAME)",
            "SKIP_INSTALL": "YES",
            "TARGETED_DEVICE_FAMILY": "1,2",
            "VERSIONING_SYSTEM": "apple-generic",
        },
        app_target: {
            "CODE_SIGN_STYLE": "Automatic",
            "CURRENT_PROJECT_VERSION": "1",
            "GENERATE_INFOPLIST_FILE": "NO",
            "INFOPLIST_FILE": "App/Info.plist",
            "LD_RUNPATH_SEARCH_PATHS": ["$(inherited)", "@executable_path/Frameworks"],
            "MARKETING_VERSION": "1.0",
            "PRODUCT_BUNDLE_IDENTIFIER": bundle_id,
            "PRODUCT_NAME": "$(TARGET_NAME)",
            "TARGETED_DEVICE_FAMILY": "1,2",
        },
        f"{module}Tests": {
            "CODE_SIGN_STYLE": "Automatic",
            "CURRENT_PROJECT_VERSION": "1",
            "GENERATE_INFOPLIST_FILE": "YES",
            "LD_RUNPATH_SEARCH_PATHS": ["$(inherited)", "@executable_path/Frameworks", "@loader_path/Frameworks"],
            "MARKETING_VERSION": "1.0",
            "PRODUCT_BUNDLE_IDENTIFIER": f"{bundle_id}.tests",
            "PRODUCT_NAME": "$(TARGET_NAME)",
            "TARGETED_DEVICE_FAMILY": "1,2",
        },
    }


def xcode_targets(files, module: str, app_target: str, bundle_id: str) -> list[XcodeTarget]:
    """The framework, app and test targets over the generated `files` (paths)."""
    src = f"Sources/{module}/"
    settings = target_settings(module, app_target, bundle_id)
    framework = XcodeTarget(
        name=module, kind="framework",
        sources=compiled_sources(files, module),
        public_headers=sorted(p for p in files if p.startswith(f"{src}include/") and p.endswith(".h")),
        resources=[f"{src}Resources/{r}" for r in RESOURCE_FILES],
        system_frameworks=list(SYSTEM_FRAMEWORKS),
        settings=settings[module],
    )
    app = XcodeTarget(
        name=app_target, kind="app",
        sources=sorted(p for p in files if p.startswith("App/") and p.endswith(".m")),
        resources=[SAMPLE_IMAGE, "App/PrivacyInfo.xcprivacy"],
        system_frameworks=list(APP_FRAMEWORKS),
        link_targets=[module], embed_targets=[module],
        settings=settings[app_target],
    )
    tests = XcodeTarget(
        name=f"{module}Tests", kind="tests",
        sources=sorted(p for p in files if p.startswith("Tests/") and p.endswith(".m")),
        resources=sorted(p for p in files if p.startswith("Tests/") and p.endswith(".bin")),
        link_targets=[module],
        settings=settings[f"{module}Tests"],
    )
    return [framework, app, tests]


def ios_project(model_bytes: bytes, model_name: str, opts: IOSOptions) -> tuple[dict[str, str | bytes], dict]:
    """(relative path -> content, options recorded in the provenance file)."""
    bundle_id = validate_bundle_id(opts.bundle_id)
    module = validate_module(opts.module)
    app_target = app_target_name(opts.app_name, module)
    src = f"Sources/{module}/"
    g = read_model(model_bytes, source=model_name)
    plan, precision = plan_for_precision(g, opts.precision, keep_fp32=opts.keep_fp32)
    em = export_plan(plan, precision)
    check_ios_model(g)
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    classes = t_out.size
    _, h, w, c = t_in.shape
    labels, mean, std = preprocessing(model_bytes, model_name, opts.labels, opts.mean, opts.std, c, classes)

    png = sample_png(h, w)
    files: dict[str, str | bytes] = golden_files(plan, png, "Tests/", mean, std)  # the XCTest's
    files[SAMPLE_IMAGE] = png

    sha = hashlib.sha256(model_bytes).hexdigest()
    for rel, text in engine_files(em, model_name, model_bytes, target="ios").items():
        files[src + "cpp/" + rel] = text
    files[src + "Resources/model.mgw"] = em.blob
    files[src + "Resources/labels.json"] = json.dumps(labels, ensure_ascii=False, indent=1) + "\n"
    # The index of the engine's debug dumps: the graph inputs first (the engine writes them, so a
    # dump taken on a device can be replayed in the simulator), marked as inputs, then every
    # tensor a kernel writes.
    dumped = [tensor_record(plan.graph, i) | {"input": True} for i in g.inputs]
    dumped += [tensor_record(plan.graph, t.index) for t in em.tensors if t.index not in g.inputs]
    files[src + "Resources/tensors.json"] = json.dumps({"tensors": dumped}, indent=1) + "\n"

    def qinfo(t):
        return {"scale": t.quant.s if t.quant else 0.0, "zero_point": t.quant.zp if t.quant else 0}

    def spec(i):
        t = g.tensors[i]
        return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, **qinfo(t)}

    tests_target = f"{module}Tests"
    ctx = {
        # The contract's keys (ios_contract.md, "Template context").
        "module": module,
        "bundle_id": bundle_id,
        "app_name": opts.app_name,
        "labels": labels,
        "model_name": model_name,
        "tool_version": __version__,
        "model_sha256": sha,
        "precision": em.precision,
        "input": {"h": h, "w": w, "c": c, "dtype": t_in.dtype, "mean": mean, "std": std, **qinfo(t_in)},
        "output": {"classes": classes, "dtype": t_out.dtype, **qinfo(t_out)},
        "inputs": [spec(i) for i in g.inputs],
        "outputs": [spec(i) for i in g.outputs],
        "float_tolerance": FLOAT_TOLERANCE.get(em.precision),
        # The project's own.
        "app_target": app_target,
        "tests_target": tests_target,
        "deployment_target": DEPLOYMENT_TARGET,
        "swift_tools_version": SWIFT_TOOLS_VERSION,
        "excluded": list(EXCLUDED),
        "resource_files": list(RESOURCE_FILES),
        "system_frameworks": list(SYSTEM_FRAMEWORKS),
        "app_frameworks": list(APP_FRAMEWORKS),
        "golden_inputs": [f"golden_input{n}.bin" for n in range(len(g.inputs))],
        "golden_outputs": [f"golden_output{n}.bin" for n in range(len(g.outputs))],
        "project_settings": project_settings(),
        "target_settings": target_settings(module, app_target, bundle_id),
    }
    for rel, content in ios_files(ctx).items():
        if rel in files:
            raise AssertionError(f"{rel} is generated twice")
        files[rel] = content

    # Property lists, written by plistlib: the privacy manifests cover the code they ship with.
    files["App/Info.plist"] = app_info_plist(opts.app_name)
    compiled = set(compiled_sources(files, module))
    sdk_code = {p: t for p, t in files.items() if p in compiled or (p.startswith(src + "include/") and p.endswith(".h"))}
    files[src + "Resources/PrivacyInfo.xcprivacy"] = privacy_manifest(sdk_code)
    files["App/PrivacyInfo.xcprivacy"] = privacy_manifest(
        {p: t for p, t in files.items() if p.startswith("App/") and p.endswith((".h", ".m"))})

    # The Xcode project over every file above (the navigator shows them all; the build phases
    # take what each target builds), then the Xcode-only project.yml settings come from the same targets.
    targets = xcode_targets(files, module, app_target, bundle_id)
    settings = ctx["project_settings"]
    navigator = sorted(p for p in files if p.startswith(("Sources/", "App/", "Tests/")) or p in ("Package.swift", "README.md"))
    proj = f"{app_target}.xcodeproj/"
    files[proj + "project.pbxproj"] = pbxproj(app_target, targets, navigator, settings)
    framework, app, tests = targets
    files[proj + f"xcshareddata/xcschemes/{app_target}.xcscheme"] = scheme(app_target, [framework, app, tests], [tests], app)
    files[proj + f"xcshareddata/xcschemes/{module}.xcscheme"] = scheme(app_target, [framework, tests], [tests], None)

    recorded = {"target": "ios", "bundle_id": bundle_id, "module": module, "app_name": opts.app_name,
                "precision": em.precision, "labels": labels, "model": model_name}
    precision_files(files, recorded, plan, opts.precision_plan)
    return files, recorded


def generate_ios(model: Path, out: Path, opts: IOSOptions, *, force: bool = False, dry_run: bool = False) -> list[FileAction]:
    data = Path(model).read_bytes()
    files, recorded = ios_project(data, Path(model).name, opts)
    return write_project(
        out, files, tool_version=__version__, model_sha256=hashlib.sha256(data).hexdigest(), options=recorded,
        force=force, dry_run=dry_run,
    )

