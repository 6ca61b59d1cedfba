"""`mobilegen generate --target ios` (and `--target all`): the Xcode project, the Swift package,
the XcodeGen spec and the property lists are structurally sound, checked by tools independent of
the writer (openstep_parser, kin, plistlib, PyYAML, GNUstep's plget, clang); generation is safe
(deterministic, provenance, conflicts, dry run, nothing outside DIR); hostile strings survive
every file format; ios_sample/ is what the generator makes for the demo model."""

from __future__ import annotations

import json
import plistlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.render import escape
from mobilegen.targets import ios
from tests.harness import missing, require, require_tool

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "demo"
SAMPLE = REPO / "ios_sample"
MODULE = "MobilegenClassifier"
KIN = Path(sys.executable).parent / "kin"
FRAMEWORKS = {"Metal", "Foundation", "UIKit", "CoreGraphics", "CoreVideo", "ImageIO"}
HOSTILE = ['quo"te', "back\\slash", "new\nline", "tab\there", "émoji 😀 中文", "*/ /* end", "%@ %s %n",
           "$(SRCROOT) ${x} \\(x)", "<a & b>", "?? trigraph ??/"]
HOSTILE_APP = 'Evil "App" \\ */ %@ $(HOME) <&> é😀\nsecond line'


def _generate(model: Path, out: Path, *extra: str, target: str = "ios"):
    return CliRunner().invoke(app, ["generate", str(model), "--target", target, "--out", str(out), *extra])


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ios") / "demo"
    r = _generate(DEMO / "model.tflite", out, "--labels", str(DEMO / "labels.txt"), "--app-name", "Mobilegen Demo",
                  "--bundle-id", "com.example.mobilegen.demo")
    assert r.exit_code == 0, r.output
    return out


def _pbxproj(root: Path) -> Path:
    (proj,) = root.glob("*.xcodeproj")
    return proj / "project.pbxproj"


class Project:
    """project.pbxproj read by openstep_parser (not by anything of mobilegen's)."""

    def __init__(self, root: Path):
        from openstep_parser import OpenStepDecoder

        self.root = root
        with open(_pbxproj(root)) as f:
            self.doc = OpenStepDecoder.ParseFromFile(f)
        self.objects = self.doc["objects"]
        self.paths: dict[str, str] = {}  # file reference id -> path relative to the project folder
        project = self.objects[self.doc["rootObject"]]
        self._walk(project["mainGroup"], "")

    def _walk(self, gid: str, prefix: str) -> None:
        for cid in self.objects[gid]["children"]:
            child = self.objects[cid]
            path = prefix + child["path"] if "path" in child and child["sourceTree"] == "<group>" else prefix
            if child["isa"] == "PBXGroup":
                self._walk(cid, path + "/" if "path" in child else prefix)
            elif child["sourceTree"] == "<group>":
                self.paths[cid] = path

    def of_isa(self, isa: str) -> dict[str, dict]:
        return {k: v for k, v in self.objects.items() if v["isa"] == isa}

    def target(self, name: str) -> dict:
        (t,) = [t for t in self.of_isa("PBXNativeTarget").values() if t["name"] == name]
        return t

    def phase(self, target: dict, isa: str) -> dict:
        (p,) = [self.objects[p] for p in target["buildPhases"] if self.objects[p]["isa"] == isa]
        return p

    def phase_files(self, target: dict, isa: str) -> list[str]:
        """Project-relative paths (or, for products and SDK frameworks, names) in a build phase."""
        out = []
        for bid in self.phase(target, isa)["files"]:
            ref = self.objects[self.objects[bid]["fileRef"]]
            fid = self.objects[bid]["fileRef"]
            out.append(self.paths.get(fid) or ref.get("name") or ref["path"])
        return out

    def settings(self, target: dict) -> dict[str, dict]:
        configs = self.objects[target["buildConfigurationList"]]["buildConfigurations"]
        return {self.objects[c]["name"]: self.objects[c]["buildSettings"] for c in configs}


def swiftpm_sources(root: Path, package: str) -> list[str]:
    """What SwiftPM compiles for the target Package.swift declares, from the files on disk: every
    C-family source under the target's path that `exclude` does not remove."""
    path = re.search(r'path: "([^"]+)"', package).group(1)
    excludes = re.findall(r'^\s+"([^"]+)",$', package.split("exclude: [")[1].split("]")[0], re.M)
    base = root / path
    out = []
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base).as_posix()
        if p.is_file() and p.suffix in (".c", ".cpp", ".m", ".mm") and not any(rel == x or rel.startswith(x + "/") for x in excludes):
            out.append(f"{path}/{rel}")
    return out


def _kin(pbxproj: Path) -> None:
    if not KIN.exists():
        missing("kin is not installed; install it with: pip install kin (make setup does)")
    r = subprocess.run([str(KIN), str(pbxproj)], capture_output=True, text=True)
    assert r.returncode == 0 and "CORRECT" in r.stdout, r.stdout + r.stderr


def _yaml(path: Path):
    """project.yml parsed by PyYAML (the test extra)."""
    yaml = require("yaml")
    return yaml.safe_load(path.read_text())


def _objc_check(root: Path, module: str = MODULE) -> None:
    """The app's, the tests' and the SDK's Objective-C sources syntax-check against the stubs."""
    from tests.objc import syntax_check

    sources = sorted(root.glob("App/*.m")) + sorted(root.glob("Tests/*.m"))
    sdk = root / "Sources" / module
    sources += sorted(p for p in sdk.rglob("*.mm") if "cpp" not in p.relative_to(sdk).parts)
    syntax_check(sources, [sdk / "include", sdk, sdk / "cpp" / "engine", root / "App"])


# ---------------------------------------------------------------------------------------------
# The Xcode project
# ---------------------------------------------------------------------------------------------


def test_pbxproj_parses_and_lints(demo: Path):
    pbx = _pbxproj(demo)
    assert pbx.parent.name == "MobilegenDemo.xcodeproj"
    assert pbx.read_text().startswith("// !$*UTF8*$!\n")
    _kin(pbx)
    p = Project(demo)
    assert p.objects[p.doc["rootObject"]]["isa"] == "PBXProject"


def test_every_file_reference_exists(demo: Path):
    p = Project(demo)
    refs = p.of_isa("PBXFileReference")
    assert len(p.paths) > 20
    for fid, path in p.paths.items():
        assert (demo / path).is_file(), f"{path} (file reference {fid}) is not in {demo}"
    for ref in refs.values():
        assert ref["sourceTree"] in ("<group>", "BUILT_PRODUCTS_DIR", "SDKROOT"), ref
        if ref["sourceTree"] == "SDKROOT":
            assert re.fullmatch(r"System/Library/Frameworks/\w+\.framework", ref["path"]), ref
    # Every build file points at a file reference.
    for bf in p.of_isa("PBXBuildFile").values():
        assert p.objects[bf["fileRef"]]["isa"] == "PBXFileReference"


def test_targets_and_build_phases(demo: Path):
    p = Project(demo)
    targets = p.of_isa("PBXNativeTarget")
    assert sorted(t["name"] for t in targets.values()) == sorted([MODULE, "MobilegenDemo", f"{MODULE}Tests"])
    fw, appt, tests = p.target(MODULE), p.target("MobilegenDemo"), p.target(f"{MODULE}Tests")
    assert fw["productType"] == "com.apple.product-type.framework"
    assert appt["productType"] == "com.apple.product-type.application"
    assert tests["productType"] == "com.apple.product-type.bundle.unit-test"

    headers = p.phase_files(fw, "PBXHeadersBuildPhase")
    assert f"Sources/{MODULE}/include/{MODULE}/{MODULE}.h" in headers
    assert sorted(headers) == sorted(str(h.relative_to(demo)) for h in (demo / "Sources" / MODULE / "include").rglob("*.h"))
    for bid in p.phase(fw, "PBXHeadersBuildPhase")["files"]:
        assert p.objects[bid]["settings"]["ATTRIBUTES"] == ["Public"]
    assert set(p.phase_files(fw, "PBXFrameworksBuildPhase")) == {f + ".framework" for f in FRAMEWORKS}
    assert sorted(p.phase_files(fw, "PBXResourcesBuildPhase")) == sorted(
        f"Sources/{MODULE}/Resources/{r}" for r in ("model.mgw", "labels.json", "tensors.json", "PrivacyInfo.xcprivacy"))

    assert sorted(p.phase_files(appt, "PBXSourcesBuildPhase")) == sorted(
        f"App/{n}" for n in ("main.m", "AppDelegate.m", "SceneDelegate.m", "ViewController.m"))
    assert set(p.phase_files(appt, "PBXResourcesBuildPhase")) == {"App/sample.png", "App/PrivacyInfo.xcprivacy"}
    assert f"{MODULE}.framework" in p.phase_files(appt, "PBXFrameworksBuildPhase")
    embed = p.phase(appt, "PBXCopyFilesBuildPhase")
    assert embed["dstSubfolderSpec"] == "10" and p.phase_files(appt, "PBXCopyFilesBuildPhase") == [f"{MODULE}.framework"]

    assert p.phase_files(tests, "PBXSourcesBuildPhase") == [f"Tests/{MODULE}Tests.m"]
    assert sorted(p.phase_files(tests, "PBXResourcesBuildPhase")) == ["Tests/golden_input0.bin", "Tests/golden_output0.bin"]
    assert p.phase_files(tests, "PBXFrameworksBuildPhase") == [f"{MODULE}.framework"]

    # The app and the tests depend on the framework target.
    for t in (appt, tests):
        (dep,) = t["dependencies"]
        assert p.objects[p.objects[dep]["target"]]["name"] == MODULE
    for t in (fw, appt, tests):
        for config, s in p.settings(t).items():
            assert s["PRODUCT_NAME"] == "$(TARGET_NAME)", (t["name"], config)
    assert p.settings(appt)["Release"]["PRODUCT_BUNDLE_IDENTIFIER"] == "com.example.mobilegen.demo"
    assert p.settings(appt)["Debug"]["INFOPLIST_FILE"] == "App/Info.plist"
    project = p.objects[p.doc["rootObject"]]
    for s in p.settings(project).values():
        assert s["CLANG_CXX_LANGUAGE_STANDARD"] == "c++17" and s["CLANG_ENABLE_OBJC_ARC"] == "YES"
        assert s["IPHONEOS_DEPLOYMENT_TARGET"] == ios.DEPLOYMENT_TARGET


def test_framework_compiles_what_swiftpm_compiles(demo: Path):
    package = (demo / "Package.swift").read_text()
    expected = swiftpm_sources(demo, package)
    p = Project(demo)
    compiled = p.phase_files(p.target(MODULE), "PBXSourcesBuildPhase")
    assert sorted(compiled) == expected
    src = f"Sources/{MODULE}/"
    # The contract's list: the SDK's .mm files, the Metal adapter, the engine; nothing of the host proof.
    engine = sorted(str(f.relative_to(demo)) for f in (demo / src / "cpp" / "engine").glob("*.cpp"))
    assert engine and set(engine) <= set(compiled)
    assert f"{src}cpp/engine/model_plan.cpp" in compiled and f"{src}cpp/engine/metal_backend.cpp" in compiled
    mm = sorted(str(f.relative_to(demo)) for f in (demo / src).glob("*.mm")) + \
        sorted(str(f.relative_to(demo)) for f in (demo / src / "Metal").glob("*.mm"))
    assert set(mm) <= set(compiled)
    assert not [c for c in compiled if "/cpp/host/" in c or "/metal_host/" in c or "gles_backend" in c]


def test_package_swift(demo: Path):
    package = (demo / "Package.swift").read_text()
    m = re.match(r"// swift-tools-version:(\d+)\.(\d+)\n", package)
    assert m and (int(m[1]), int(m[2])) >= (5, 9)
    assert ".iOS(.v15)" in package and f'.library(name: "{MODULE}", targets: ["{MODULE}"])' in package
    assert 'publicHeadersPath: "include"' in package and "cxxLanguageStandard: .cxx17" in package
    assert "newLibraryWithSource" in package  # says how the Metal source gets compiled
    for f in FRAMEWORKS:
        assert f'.linkedFramework("{f}")' in package
    for r in re.findall(r'\.copy\("([^"]+)"\)', package):
        assert (demo / "Sources" / MODULE / r).is_file(), r
    assert len(re.findall(r"\.copy\(", package)) == 4
    for x in ("cpp/CMakeLists.txt", "cpp/host", "cpp/metal_host"):
        assert f'"{x}",' in package
        assert (demo / "Sources" / MODULE / x).exists()
    # Every source folder the framework builds from lies under the one target path.
    assert f'path: "Sources/{MODULE}"' in package


def test_project_yml_matches_the_xcode_project(demo: Path):
    spec = _yaml(demo / "project.yml")
    p = Project(demo)
    assert spec["name"] == "MobilegenDemo"
    assert set(spec["targets"]) == {MODULE, "MobilegenDemo", f"{MODULE}Tests"}
    kinds = {MODULE: "framework", "MobilegenDemo": "application", f"{MODULE}Tests": "bundle.unit-test"}
    for name, t in spec["targets"].items():
        assert t["type"] == kinds[name] and t["platform"] == "iOS"
        for s in t["sources"]:
            assert (demo / s["path"]).exists(), s["path"]
        assert t["settings"]["base"] == p.settings(p.target(name))["Release"], name
    fw = spec["targets"][MODULE]
    package = (demo / "Package.swift").read_text()
    pkg_excludes = re.findall(r'^\s+"([^"]+)",$', package.split("exclude: [")[1].split("]")[0], re.M)
    assert set(pkg_excludes) <= set(fw["sources"][0]["excludes"])
    assert {d["sdk"] for d in fw["dependencies"]} == {f + ".framework" for f in FRAMEWORKS}
    # Every source folder of the project is in the spec.
    paths = {s["path"] for t in spec["targets"].values() for s in t["sources"]}
    for d in (f"Sources/{MODULE}", f"Sources/{MODULE}/include", "App", "Tests"):
        assert d in paths
    for config, s in spec["settings"]["configs"].items():
        assert s == p.settings(p.objects[p.doc["rootObject"]])[config]


def test_plists(demo: Path):
    info = plistlib.loads((demo / "App" / "Info.plist").read_bytes())
    assert info["CFBundleDisplayName"] == "Mobilegen Demo"
    assert info["UIApplicationSceneManifest"]["UISceneConfigurations"]["UIWindowSceneSessionRoleApplication"][0][
        "UISceneDelegateClassName"] == "SceneDelegate"
    for rel in ("App/PrivacyInfo.xcprivacy", f"Sources/{MODULE}/Resources/PrivacyInfo.xcprivacy"):
        priv = plistlib.loads((demo / rel).read_bytes())
        assert priv["NSPrivacyTracking"] is False and priv["NSPrivacyTrackingDomains"] == []
        assert priv["NSPrivacyCollectedDataTypes"] == []
    # The schemes are XML.
    import xml.etree.ElementTree as ET

    for s in demo.glob("*.xcodeproj/xcshareddata/xcschemes/*.xcscheme"):
        root = ET.parse(s).getroot()
        ids = {r.get("BlueprintIdentifier") for r in root.iter("BuildableReference")}
        assert ids <= set(Project(demo).of_isa("PBXNativeTarget")), s


def test_privacy_manifest_declares_the_required_reason_apis_the_code_uses(demo: Path):
    def categories(code: str) -> list[str]:
        return [a["NSPrivacyAccessedAPIType"] for a in plistlib.loads(ios.privacy_manifest({"x.mm": code}))["NSPrivacyAccessedAPITypes"]]

    assert categories("int f() { return 1; }  // stat() in a comment, mach_absolute_time too") == []
    assert categories("struct stat st; if (stat(path, &st) == 0) {}") == ["NSPrivacyAccessedAPICategoryFileTimestamp"]
    assert categories("uint64_t t = mach_absolute_time();") == ["NSPrivacyAccessedAPICategorySystemBootTime"]
    assert categories("[NSUserDefaults standardUserDefaults];") == ["NSPrivacyAccessedAPICategoryUserDefaults"]
    assert categories("id d = attrs[NSFileModificationDate];") == ["NSPrivacyAccessedAPICategoryFileTimestamp"]
    assert categories("static int status; statistics();") == []
    # The generated manifests are those of the code they ship with.
    sdk = demo / "Sources" / MODULE
    package = (demo / "Package.swift").read_text()
    code = {s: (demo / s).read_text() for s in swiftpm_sources(demo, package)}
    code.update({str(h): h.read_text() for h in (sdk / "include").rglob("*.h")})
    assert (sdk / "Resources" / "PrivacyInfo.xcprivacy").read_bytes() == ios.privacy_manifest(code)
    app_code = {str(f): f.read_text() for f in sorted((demo / "App").glob("*.[hm]"))}
    assert (demo / "App" / "PrivacyInfo.xcprivacy").read_bytes() == ios.privacy_manifest(app_code)


def test_golden_files_and_xctest(demo: Path):
    from mobilegen.tflite.reader import read_model

    g = read_model((DEMO / "model.tflite").read_bytes())
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    tensors = json.loads((demo / "Sources" / MODULE / "Resources" / "tensors.json").read_text())["tensors"]
    assert tensors
    x = (demo / "Tests" / "golden_input0.bin").read_bytes()
    y = (demo / "Tests" / "golden_output0.bin").read_bytes()
    assert len(x) == t_in.nbytes and len(y) == t_out.nbytes
    test = (demo / "Tests" / f"{MODULE}Tests.m").read_text()
    assert "XCTAssertEqualObjects(actual, expected" in test and "kTolerance" not in test  # int8: bit-exact
    assert "runWithInputs:" in test and "MGBackendGPU" in test and "MGBackendCPU" in test


def test_float_kernels_get_the_tolerance(tmp_path: Path):
    r = _generate(DEMO / "model.tflite", tmp_path / "f", "--precision", "fp16")
    assert r.exit_code == 0, r.output
    test = (tmp_path / "f" / "Tests" / f"{MODULE}Tests.m").read_text()
    assert f"kTolerance = {ios.FLOAT_TOLERANCE['fp16']};" in test and "XCTAssertEqualObjects(actual" not in test


def test_objc_sources_syntax_check(demo: Path):
    _objc_check(demo)


# ---------------------------------------------------------------------------------------------
# Safe generation
# ---------------------------------------------------------------------------------------------


def test_deterministic_with_provenance(demo: Path, tmp_path: Path):
    r = _generate(DEMO / "model.tflite", tmp_path / "b", "--labels", str(DEMO / "labels.txt"), "--app-name", "Mobilegen Demo",
                  "--bundle-id", "com.example.mobilegen.demo")
    assert r.exit_code == 0, r.output
    a, b = _tree(demo), _tree(tmp_path / "b")
    assert a == b
    prov = json.loads(a["mobilegen.json"])
    assert prov["options"]["target"] == "ios" and prov["options"]["module"] == MODULE
    assert set(prov["files"]) == set(a) - {"mobilegen.json"}
    # Regenerating in place changes nothing.
    r = _generate(DEMO / "model.tflite", tmp_path / "b", "--labels", str(DEMO / "labels.txt"), "--app-name", "Mobilegen Demo",
                  "--bundle-id", "com.example.mobilegen.demo")
    assert r.exit_code == 0 and "identical" in r.output and "created" not in r.output, r.output


def test_dry_run_writes_nothing(tmp_path: Path):
    r = _generate(DEMO / "model.tflite", tmp_path / "d", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "would write" in r.output and "created  Package.swift" in r.output
    assert not (tmp_path / "d").exists()


def test_user_edit_is_a_conflict_without_force(tmp_path: Path):
    out = tmp_path / "p"
    assert _generate(DEMO / "model.tflite", out).exit_code == 0
    vc = out / "App" / "ViewController.m"
    vc.write_text(vc.read_text() + "// my change\n")
    r = _generate(DEMO / "model.tflite", out, "--app-name", "Other")
    assert r.exit_code != 0 and "App/ViewController.m" in r.output and "--force" in r.output, r.output
    assert vc.read_text().endswith("// my change\n")
    assert "Mobilegen Classifier" in (out / "App" / "Info.plist").read_text()  # nothing was written
    r = _generate(DEMO / "model.tflite", out, "--app-name", "Other", "--force")
    assert r.exit_code == 0, r.output
    assert "// my change" not in vc.read_text()
    # The renamed app target: the old .xcodeproj is removed, the new one written.
    assert not (out / "MobilegenClassifier.xcodeproj").exists() and (out / "Other.xcodeproj" / "project.pbxproj").is_file()


def test_nothing_outside_dir(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "box" / "p"
    assert _generate(DEMO / "model.tflite", out).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box", "outside"]
    assert [p.name for p in (tmp_path / "box").iterdir()] == ["p"]
    assert not any(outside.iterdir())
    # A symlink inside DIR that leads out of it is refused.
    out2 = tmp_path / "q"
    out2.mkdir()
    (out2 / "App").symlink_to(outside, target_is_directory=True)
    r = _generate(DEMO / "model.tflite", out2)
    assert r.exit_code != 0 and "outside" in r.output, r.output
    assert not any(outside.iterdir())


def test_target_all(tmp_path: Path):
    r = _generate(DEMO / "model.tflite", tmp_path / "all", "--bundle-id", "org.example.both", "--package", "org.example.both",
                  target="all")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "all" / "android" / "mobilegen.json").read_text())["options"]["target"] == "android"
    assert json.loads((tmp_path / "all" / "ios" / "mobilegen.json").read_text())["options"]["target"] == "ios"
    assert (tmp_path / "all" / "ios" / "Package.swift").is_file() and (tmp_path / "all" / "android" / "settings.gradle.kts").is_file()
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["android", "ios"]
    # A conflict in one project stops both.
    vc = tmp_path / "all" / "ios" / "App" / "main.m"
    vc.write_text("edited\n")
    gradle = tmp_path / "all" / "android" / "settings.gradle.kts"
    before = gradle.read_bytes()
    r = _generate(DEMO / "model.tflite", tmp_path / "all", "--app-name", "New", target="all")
    assert r.exit_code != 0 and "main.m" in r.output
    assert gradle.read_bytes() == before


@pytest.mark.parametrize("args,message", [
    (["--bundle-id", ""], "it is empty"),
    (["--bundle-id", "com"], "it has one segment"),
    (["--bundle-id", "com..x"], "segment 2 is empty"),
    (["--bundle-id", "com.my_app"], "holds '_'"),
    (["--bundle-id", "com.é.x"], "holds 'é'"),
    (["--bundle-id", "com.-x"], "starts or ends with '-'"),
    (["--module", "1Classifier"], "must start with an ASCII letter"),
    (["--module", "My-Classifier"], "character '-' is not allowed"),
    (["--module", "UIKit"], "system module"),
    (["--module", ""], "it is empty"),
    (["--package", "com.example.x"], "--package applies to --target android or all"),
    (["--name", "x"], "--name applies to --target android or all"),
])
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], message: str):
    r = _generate(DEMO / "model.tflite", tmp_path / "e", *args)
    assert r.exit_code != 0 and message in r.output, r.output
    assert len([ln for ln in r.output.splitlines() if ln.strip()]) == 1, r.output
    assert not (tmp_path / "e").exists()


def test_ios_options_rejected_for_android(tmp_path: Path):
    r = _generate(DEMO / "model.tflite", tmp_path / "e", "--module", "Foo", target="android")
    assert r.exit_code != 0 and "--module applies to --target ios or all" in r.output


def test_module_and_app_target_names(tmp_path: Path):
    r = _generate(DEMO / "model.tflite", tmp_path / "m", "--module", "FlowerKit", "--app-name", "42 flowers!")
    assert r.exit_code == 0, r.output
    out = tmp_path / "m"
    assert (out / "App42Flowers.xcodeproj" / "project.pbxproj").is_file()
    assert (out / "Sources" / "FlowerKit" / "include" / "FlowerKit" / "FlowerKit.h").is_file()
    p = Project(out)
    assert sorted(t["name"] for t in p.of_isa("PBXNativeTarget").values()) == ["App42Flowers", "FlowerKit", "FlowerKitTests"]
    assert "#import <FlowerKit/FlowerKit.h>" in (out / "App" / "ViewController.m").read_text()
    assert ios.app_target_name("FlowerKit", "FlowerKit") == "FlowerKitApp"
    assert ios.app_target_name("!!!", "M") == "MobilegenApp"


# ---------------------------------------------------------------------------------------------
# Hostile strings
# ---------------------------------------------------------------------------------------------


def _c_string_value(literal: str, tmp: Path) -> bytes:
    """What clang makes of a C string literal (the body of an @"..." literal): the bytes a C
    program built from it prints."""
    clang = require_tool("clang-19", "clang-19")
    src = tmp / "lit.c"
    src.write_text('#include <stdio.h>\n#include <string.h>\nint main(void) { const char *s = %s; '
                   'fwrite(s, 1, strlen(s), stdout); return 0; }\n' % literal)
    subprocess.run([clang, "-std=c11", "-Wall", "-Werror", "-pedantic", "-o", str(tmp / "lit"), str(src)], check=True)
    return subprocess.run([str(tmp / "lit")], capture_output=True, check=True).stdout


def test_hostile_labels_app_name_and_model_name(tmp_path: Path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(h.replace("\n", " ") for h in HOSTILE) + "\n", encoding="utf-8")
    model = tmp_path / 'we"ird */ %@ $(x) é.tflite'.replace("/", "\\")
    shutil.copy(DEMO / "model.tflite", model)
    out = tmp_path / "h"
    r = _generate(model, out, "--labels", str(labels), "--app-name", HOSTILE_APP)
    assert r.exit_code == 0, r.output

    assert json.loads((out / "Sources" / MODULE / "Resources" / "labels.json").read_text()) == [h.replace("\n", " ") for h in HOSTILE]
    assert plistlib.loads((out / "App" / "Info.plist").read_bytes())["CFBundleDisplayName"] == HOSTILE_APP
    assert json.loads((out / "mobilegen.json").read_text())["options"]["app_name"] == HOSTILE_APP
    _kin(_pbxproj(out))
    Project(out)
    assert _yaml(out / "project.yml")["name"] == ios.app_target_name(HOSTILE_APP, MODULE)
    # The model name as an NSString literal in the sample app reads back exactly.
    vc = (out / "App" / "ViewController.m").read_text()
    literal = re.search(r'static NSString \*const kModelName = @("(?:[^"\\]|\\.)*");', vc).group(1)
    assert _c_string_value(literal, tmp_path) == model.name.encode("utf-8")
    _objc_check(out)
    # The engine's generated half (the model name in its comments and strings) still compiles.
    clangxx = require_tool("clang++-19", "clang-19")
    engine = out / "Sources" / MODULE / "cpp" / "engine"
    r = subprocess.run([clangxx, "-fsyntax-only", "-std=c++17", "-Wall", "-Werror", f"-I{engine}", str(engine / "model_plan.cpp")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_escape_filters_round_trip(tmp_path: Path):
    text = "".join(HOSTILE) + "\x01\x7f\x85\u00a0\u2028\U0001f600\\u0041 end\\"
    # Objective-C (C string rules inside @"...").
    lit = escape.objc_string(text)
    assert lit.startswith('@"') and lit.isascii()
    assert _c_string_value(lit[1:], tmp_path) == text.encode("utf-8")
    # YAML (PyYAML).
    (tmp_path / "y.yml").write_text(f"k: {escape.yaml_string(text)}\n")
    assert _yaml(tmp_path / "y.yml")["k"] == text
    # pbxproj strings, read back by GNUstep's OpenStep parser (plget) and parsed by kin in a project.
    plget = shutil.which("plget")
    if plget is None:
        missing("plget is not installed; install it with: apt-get install gnustep-base-runtime")
    for s in (text, "plain/Path_1.x", "", "with space", "$(inherited)", "ABCDEF0123456789ABCDEF01"):
        (tmp_path / "p.plist").write_text("{ k = %s; }\n" % escape.pbxproj_string(s))
        got = subprocess.run([plget, "k"], stdin=open(tmp_path / "p.plist"), capture_output=True, check=True).stdout
        assert got.decode("utf-8") == s, s
    # plists: plistlib writes, plistlib reads; what XML cannot keep is refused in one line.
    keep = text.replace("\x01", "")
    assert plistlib.loads(escape.plist({"k": keep}))["k"] == keep
    for bad in ("a\x01b", "a\rb"):
        with pytest.raises(escape.UserInputError):
            escape.plist({"k": bad})
    # Swift: printable ASCII, no interpolation, decoded by Swift's escape rules.
    sw = escape.swift_string(text)
    assert sw.isascii() and "\\(" not in sw.replace("\\\\", "")
    assert _swift_decode(sw) == text


def _swift_decode(lit: str) -> str:
    """Swift's string literal escapes (The Swift Programming Language, "Special Characters")."""
    assert lit[0] == lit[-1] == '"'
    named = {"0": "\0", "\\": "\\", "t": "\t", "n": "\n", "r": "\r", '"': '"', "'": "'"}
    out, i, body = [], 0, lit[1:-1]
    while i < len(body):
        ch = body[i]
        assert ch != '"', "unescaped quote"
        if ch != "\\":
            out.append(ch)
            i += 1
        elif body[i + 1] == "u":
            end = body.index("}", i)
            out.append(chr(int(body[i + 3:end], 16)))
            i = end + 1
        else:
            out.append(named[body[i + 1]])
            i += 2
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Small test models and ios_sample/
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_small_models(tmp_path: Path, mode: str):
    require("tensorflow")
    from tests import models

    buf = models.tflite_model("conv2d", models.BUILDERS["conv2d"], dict(h=9, w=7, cin=3, cout=5, k=3, stride=2), mode)
    m = tmp_path / "m.tflite"
    m.write_bytes(buf)
    r = _generate(m, tmp_path / "s")
    assert r.exit_code == 0, r.output
    out = tmp_path / "s"
    _kin(_pbxproj(out))
    p = Project(out)
    assert sorted(p.phase_files(p.target(MODULE), "PBXSourcesBuildPhase")) == swiftpm_sources(out, (out / "Package.swift").read_text())
    for path in p.paths.values():
        assert (out / path).is_file()
    test = (out / "Tests" / f"{MODULE}Tests.m").read_text()
    assert ("kTolerance" in test) == (mode != "int8")


def test_ios_sample_is_up_to_date(tmp_path: Path):
    """ios_sample/ is `make ios-sample`: the demo model of examples/demo generated with the
    Makefile's bundle id and app name. Regenerate it and diff every file."""
    if not SAMPLE.exists():
        pytest.skip("ios_sample/ is not generated yet (make ios-sample)")
    makefile = (REPO / "Makefile").read_text()
    bundle = makefile.split("SAMPLE_PACKAGE := ")[1].split()[0]
    app_name = makefile.split("SAMPLE_APP := ")[1].splitlines()[0].strip()
    assert "--target ios --out ios_sample" in makefile
    out = tmp_path / "ios"
    r = _generate(DEMO / "model.tflite", out, "--labels", str(DEMO / "labels.txt"), "--bundle-id", bundle, "--app-name", app_name)
    assert r.exit_code == 0, r.output
    fresh, committed = _tree(out), _tree(SAMPLE)
    assert sorted(fresh) == sorted(committed), "file lists differ: regenerate with `make ios-sample`"
    changed = [p for p in fresh if fresh[p] != committed[p]]
    assert not changed, f"ios_sample is stale ({changed[:5]}); regenerate it with `make ios-sample`"


@pytest.mark.slow
def test_golden_files_agree_with_the_host_proof(demo: Path, tmp_path: Path):
    """The XCTest's expectation, checked here: golden_input0.bin through `mobilegen verify` (the
    engine's own Metal backend on the host executor, or its CPU fallback) gives golden_output0.bin
    byte for byte (the demo model is int8)."""
    import numpy as np

    from mobilegen.tflite.reader import read_model

    require_tool("clang++-19", "clang-19")
    g = read_model((DEMO / "model.tflite").read_bytes())
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    x = np.frombuffer((demo / "Tests" / "golden_input0.bin").read_bytes(), t_in.dtype).reshape(t_in.shape)
    np.save(tmp_path / "x.npy", x)
    project = tmp_path / "p"
    shutil.copytree(demo, project)  # verify builds inside the project (.mobilegen/)
    for backend in ("gpu", "cpu"):
        r = CliRunner().invoke(app, ["verify", str(project), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                                     "--backend", backend])
        assert r.exit_code == 0, r.output
        y = np.load(tmp_path / "y.npy")
        assert y.dtype == t_out.dtype and y.tobytes() == (demo / "Tests" / "golden_output0.bin").read_bytes(), backend


def test_pbxproj_writer_ids_are_stable_and_sections_sorted():
    """Adding a file adds objects and leaves every other object's ID and text as it was."""
    from mobilegen.targets import xcode

    def project(files):
        t = xcode.XcodeTarget("Lib", "framework", sources=[f for f in files if f.endswith(".m")], settings={"A": "1"})
        return xcode.pbxproj("P", [t], files, {"Debug": {"X": "$(inherited)"}, "Release": {}})

    one = project(["Src/a.m", "Src/b.h"])
    two = project(["Src/a.m", "Src/b.h", "Src/c.m"])
    assert one == project(["Src/b.h", "Src/a.m"])  # input order does not matter
    lines_one = [ln for ln in one.splitlines() if "/* Src */" not in ln and "/* Sources */ = {" not in ln]
    lost = [ln for ln in lines_one if ln not in two.splitlines() and ln.strip() not in (")", ");", "};")]
    assert not lost, lost  # only the Src group's and the Sources phase's child lists grow
    sections = re.findall(r"/\* Begin (\w+) section \*/", two)
    assert sections == sorted(sections)
    ids = re.findall(r"^\t\t([0-9A-F]{24}) ", two, re.M)
    assert len(ids) == len(set(ids))
