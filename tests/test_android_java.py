"""The Android project's hand-written half (templates/android via android_files): escaping filters,
Java compiled with javac against tests/android_stub, XML and Gradle structure, the JNI bridge
syntax-checked against the JDK's and Debian's Android headers, and the portable Bitmap
preprocessing run on the host against the simulator's (Pillow's) preprocessing.

Tools: a JDK (javac, jar, java, javap), g++, and the Debian packages android-liblog-dev and
android-platform-frameworks-native-headers. `require_tool` / `require_file` (tests.harness) skip with
what to install, or fail under CI=true, like tests.harness.require does for Python modules.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mobilegen.errors import UserInputError
from mobilegen.render import escape
from mobilegen.targets.android_files import android_files
from tests.harness import require_file, require_tool

ROOT = Path(__file__).resolve().parents[1]
STUB_SRC = Path(__file__).parent / "android_stub"
ENGINE_HEADERS = ROOT / "templates" / "cpp" / "engine"
ANDROID_INCLUDE = Path("/usr/include/android")
JNI_DIR = "sdk/src/main/cpp/jni"

HOSTILE = [
    'quote " and \\ backslash',
    "new\nline and\r\ncrlf",
    "comment */ close /* open // line",
    "${template} $dollar %s %1$d %%",
    "@string/x",
    "?attr/y",
    "'leading apostrophe",
    "<tag> & ampersand ]]>",
    "emoji \U0001F600 and \u00e9",
    "RTL \u05e9\u05dc\u05d5\u05dd \u202e reversed",
    "bell \x07 tab\t vt\x0b",
    "\\u000a unicode escape text \\u0022",
    "  spaces  around  ",
    "trailing backslash \\",
    "??/ trigraph",
    "",
]


def java_home() -> Path:
    javac = Path(require_tool("javac", "openjdk-17-jdk-headless")).resolve()
    return javac.parent.parent


def make_ctx(**changes) -> dict:
    ctx = {
        "package": "com.example.mobilegen.demo",
        "package_path": "com/example/mobilegen/demo",
        "sdk_name": "com_example_mobilegen_demo",
        "app_name": "Mobilegen Demo",
        "labels": ["cat", "dog", "tabby cat"],
        "model_name": "mobilenet_v1_int8.tflite",
        "input": {"h": 224, "w": 224, "c": 3, "dtype": "int8", "scale": 0.0078125, "zero_point": -1,
                  "mean": 127.5, "std": 127.5},
        "output": {"classes": 3, "dtype": "int8", "scale": 0.00390625, "zero_point": -128},
        "precision": "int8",
        "tool_version": "0.1.0",
        "model_sha256": "ab" * 32,
        "blob_asset": "com_example_mobilegen_demo/model.mgw",
        "labels_asset": "com_example_mobilegen_demo/labels.json",
        "float_tolerance": None,
    }
    ctx.update(changes)
    return ctx


def hostile_ctx() -> dict:
    return make_ctx(
        labels=HOSTILE, output={"classes": len(HOSTILE), "dtype": "uint8", "scale": 0.00390625, "zero_point": 0},
        input={"h": 128, "w": 160, "c": 1, "dtype": "uint8", "scale": 0.0078125, "zero_point": 128,
               "mean": 127.5, "std": 127.5},
        model_name="evil */ \"model\" \\u000a\n${x}\\",
        app_name="My 'App' \"%s\" <&> \\ @home\n\U0001F600",
        package="org.hostile_labels.x1", package_path="org/hostile_labels/x1", sdk_name="org_hostile_labels_x1",
        blob_asset="org_hostile_labels_x1/model.mgw", labels_asset="org_hostile_labels_x1/labels.json",
    )


def float_ctx() -> dict:
    return make_ctx(
        input={"h": 96, "w": 96, "c": 3, "dtype": "float32", "scale": 0.0, "zero_point": 0, "mean": 127.5, "std": 127.5},
        output={"classes": 3, "dtype": "float32", "scale": 0.0, "zero_point": 0},
        precision="fp32", float_tolerance=1e-4, application_id="com.example.sample",
    )


def int8_as_float_ctx() -> dict:
    """An int8 model run by float kernels: 8-bit output, float tolerance (one step in the golden test)."""
    return make_ctx(precision="fp16", float_tolerance=1e-2)


def multi_io_ctx() -> dict:
    """A detector-shaped model: two inputs (the image first) and two outputs of different dtypes,
    run by float kernels (the golden test compares each output by its own dtype)."""
    spec = lambda name, shape, dtype, scale=0.0, zp=0: {"name": name, "shape": shape, "dtype": dtype,  # noqa: E731
                                                         "scale": scale, "zero_point": zp}
    return make_ctx(
        inputs=[spec("image", [1, 224, 224, 3], "int8", 0.0078125, -1), spec("prior", [1, 56, 56, 1], "float32")],
        outputs=[spec("scores", [1, 3], "int8", 0.00390625, -128), spec("boxes", [1, 640, 4], "float32")],
        precision="fp32", float_tolerance=1e-4,
    )


CONTEXTS = {"int8": make_ctx, "hostile": hostile_ctx, "float": float_ctx, "int8_as_float": int8_as_float_ctx,
            "multi_io": multi_io_ctx}


def render(ctx: dict, out: Path) -> dict[str, str | bytes]:
    files = android_files(ctx)
    for rel, content in files.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return files


@pytest.fixture(scope="module")
def stub_jar(tmp_path_factory) -> Path:
    javac = require_tool("javac", "openjdk-17-jdk-headless")
    jar = require_tool("jar", "openjdk-17-jdk-headless")
    work = tmp_path_factory.mktemp("stub")
    sources = sorted(str(p) for p in STUB_SRC.rglob("*.java"))
    subprocess.run([javac, "--release", "8", "-d", str(work / "classes"), *sources], check=True, capture_output=True)
    subprocess.run([jar, "cf", str(work / "android-stub.jar"), "-C", str(work / "classes"), "."], check=True)
    return work / "android-stub.jar"


def r_java(project: Path, app_package: str) -> str:
    """The app's R class, from the ids and strings its resources declare (what aapt2 would make)."""
    layout = (project / "app/src/main/res/layout/activity_main.xml").read_text()
    ids = sorted(set(re.findall(r'@\+id/(\w+)', layout)))
    strings = [e.get("name") for e in ET.parse(project / "app/src/main/res/values/strings.xml").getroot()]
    fields = lambda names: "".join(f"        public static final int {n} = {i};\n" for i, n in enumerate(names))  # noqa: E731
    return (f"package {app_package};\npublic final class R {{\n"
            f"    public static final class id {{\n{fields(ids)}    }}\n"
            f"    public static final class layout {{\n{fields(['activity_main'])}    }}\n"
            f"    public static final class string {{\n{fields(strings)}    }}\n}}\n")


def compile_java(project: Path, files: dict, ctx: dict, stub: Path) -> Path:
    javac = require_tool("javac", "openjdk-17-jdk-headless")
    app_package = ctx.get("application_id") or ctx["package"] + ".app"
    r = project / "gen" / (app_package.replace(".", "/") + "/R.java")
    r.parent.mkdir(parents=True, exist_ok=True)
    r.write_text(r_java(project, app_package))
    sources = [str(project / rel) for rel in files if rel.endswith(".java")] + [str(r)]
    classes = project / "classes"
    # -encoding US-ASCII: the generated Java must be pure ASCII (non-ASCII text goes through \\u escapes).
    res = subprocess.run([javac, "--release", "8", "-encoding", "US-ASCII", "-Xlint:all", "-Xlint:-options",
                          "-Werror", "-cp", str(stub), "-d", str(classes), *sources], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    return classes


# ---------------------------------------------------------------------------------------------
# Escaping filters
# ---------------------------------------------------------------------------------------------


def test_java_string_never_emits_pre_lexing_escapes_for_breakers():
    s = escape.java_string('a"b\\c\nd\re\u2028\U0001F600\x07')
    assert s == '"a\\"b\\\\c\\nd\\re\\u2028\\ud83d\\ude00\\u0007"'
    for bad in ("\\u000a", "\\u000d", "\\u0022", "\\u005c"):
        assert bad not in escape.java_string("\n\r\"\\").lower()


def test_cpp_string_uses_three_digit_octal():
    assert escape.cpp_string("\u00e9a?\x07\"\\") == '"\\303\\251a\\?\\007\\"\\\\"'
    assert escape.cpp_string("\x001") == '"\\0001"'  # NUL then the digit 1, not \01


def test_kotlin_string_escapes_templates():
    assert escape.kotlin_string("${x} $y") == '"\\${x} \\$y"'


def test_comment_text_is_one_safe_line():
    text = escape.comment_text("a */ b /* c\nd \\u000a e \\")
    assert "*/" not in text and "/*" not in text and "\n" not in text and "\\" not in text


def test_xml_filters():
    assert escape.xml_text("<a & b>") == "&lt;a &amp; b&gt;"
    assert escape.xml_attr("'\"\n") == "&apos;&quot;&#10;"
    with pytest.raises(UserInputError, match="U\\+0007"):
        escape.xml_text("bell \x07")


def test_android_string_resource():
    assert escape.android_string_resource("@home") == "\\@home"
    assert escape.android_string_resource("?x 'y' \"z\"") == "\\?x \\'y\\' \\\"z\\\""
    assert escape.android_string_resource(" a  b ") == "\\u0020a \\u0020b\\u0020"
    assert escape.android_string_resource("a\nb\x07<") == "a\\nb\\u0007&lt;"


@pytest.mark.parametrize("pkg", ["com.example.app", "org.x_y.Z9"])
def test_valid_packages(pkg):
    assert escape.validate_package(pkg) == pkg
    assert escape.package_path(pkg) == pkg.replace(".", "/")


@pytest.mark.parametrize("pkg", ["app", "com..x", "com.1x", "com.example.class", "com.ex-ample", "com.exämple", "_a.b", "a.b.", ""])
def test_invalid_packages_are_one_line_errors(pkg):
    with pytest.raises(UserInputError) as e:
        escape.validate_package(pkg)
    assert "\n" not in str(e.value) and "package" in str(e.value)


# ---------------------------------------------------------------------------------------------
# The rendered project
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(CONTEXTS))
def test_java_compiles(variant, tmp_path: Path, stub_jar: Path):
    ctx = CONTEXTS[variant]()
    files = render(ctx, tmp_path)
    compile_java(tmp_path, files, ctx, stub_jar)


def test_deterministic():
    assert android_files(hostile_ctx()) == android_files(hostile_ctx())


def test_hostile_strings_round_trip_through_java(tmp_path: Path, stub_jar: Path):
    """Model-derived strings compiled into Java come back exactly (as UTF-16 code units)."""
    ctx = hostile_ctx()
    files = render(ctx, tmp_path)
    classes = compile_java(tmp_path, files, ctx, stub_jar)
    probe = tmp_path / "probe" / "Probe.java"
    probe.parent.mkdir()
    probe.write_text(
        f"public class Probe {{ public static void main(String[] a) {{\n"
        f"  for (String s : new String[] {{ {ctx['package']}.ModelInfo.MODEL_NAME, {ctx['package']}.ModelInfo.LABELS_ASSET }}) {{\n"
        "    StringBuilder b = new StringBuilder();\n"
        "    for (char c : s.toCharArray()) b.append(String.format(\"%04x \", (int) c));\n"
        "    System.out.println(b.toString().trim());\n  }\n}}\n"
    )
    javac, java = require_tool("javac", "openjdk-17-jdk-headless"), require_tool("java", "openjdk-17-jre-headless")
    subprocess.run([javac, "--release", "8", "-cp", str(classes), "-d", str(probe.parent), str(probe)], check=True)
    out = subprocess.run([java, "-cp", f"{classes}{os.pathsep}{probe.parent}", "Probe"], check=True,
                         capture_output=True, text=True).stdout.splitlines()

    def utf16(s: str) -> str:
        b = s.encode("utf-16-be")
        return " ".join(f"{int.from_bytes(b[i:i + 2], 'big'):04x}" for i in range(0, len(b), 2))

    assert out == [utf16(ctx["model_name"]), utf16(ctx["labels_asset"])]


def aapt_string(text: str) -> str:
    """What aapt2 makes of a <string> body (after XML parsing): escapes resolved, unescaped
    whitespace runs collapsed to one space, leading and trailing unescaped whitespace trimmed."""
    out, i, pending_space = [], 0, False
    simple = {"n": "\n", "t": "\t", "'": "'", '"': '"', "\\": "\\", "@": "@", "?": "?"}
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            pending_space = True
            i += 1
            continue
        if pending_space and out:
            out.append(" ")
        pending_space = False
        if ch == "\\":
            nxt = text[i + 1]
            if nxt == "u":
                out.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(simple[nxt])
            i += 2
            continue
        assert ch not in "'\"", f"unescaped {ch!r} in {text!r}"
        out.append(ch)
        i += 1
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")


@pytest.mark.parametrize("variant", sorted(CONTEXTS))
def test_xml_parses_and_app_name_round_trips(variant, tmp_path: Path):
    ctx = CONTEXTS[variant]()
    files = render(ctx, tmp_path)
    xml_files = [rel for rel in files if rel.endswith(".xml")]
    assert len(xml_files) == 4
    for rel in xml_files:
        ET.parse(tmp_path / rel)
    strings = ET.parse(tmp_path / "app/src/main/res/values/strings.xml").getroot()
    app_name = next(e for e in strings if e.get("name") == "app_name")
    assert app_name.get("formatted") == "false"
    assert aapt_string(app_name.text or "") == ctx["app_name"]
    sdk_manifest = ET.parse(tmp_path / "sdk/src/main/AndroidManifest.xml").getroot()
    feature = sdk_manifest.find("uses-feature")
    ns = "{http://schemas.android.com/apk/res/android}"
    assert feature.get(ns + "glEsVersion") == "0x00030001" and feature.get(ns + "required") == "false"
    assert sdk_manifest.get("package") is None  # AGP 8: the namespace lives in build.gradle.kts


def kotlin_value(text: str, key: str) -> str:
    m = re.search(rf"^\s*{key}\s*=\s*(.+)$", text, re.M)
    assert m, f"no {key} in\n{text}"
    return m.group(1).strip()


@pytest.mark.parametrize("variant", sorted(CONTEXTS))
def test_gradle_structure(variant):
    ctx = CONTEXTS[variant]()
    files = android_files(ctx)
    settings = files["settings.gradle.kts"]
    assert 'include(":sdk")' in settings and 'include(":app")' in settings and "pluginManagement" in settings
    catalog = files["gradle/libs.versions.toml"]
    agp = re.search(r'^agp = "(\d+)\.(\d+)\.(\d+)"$', catalog, re.M)
    assert agp and agp.group(1) == "9"
    assert "alias(libs.plugins.android.library) apply false" in files["build.gradle.kts"]

    sdk = files["sdk/build.gradle.kts"]
    assert "alias(libs.plugins.android.library)" in sdk
    assert kotlin_value(sdk, "namespace") == escape.kotlin_string(ctx["package"])
    versions = re.search(r"^\[versions\]\n(.*?)\n\n", catalog, re.S | re.M).group(1)
    pins = dict(re.findall(r'^(\w+) = "([^"]+)"$', versions, re.M))
    assert pins["compileSdk"] == "36" and pins["targetSdk"] == "36" and pins["minSdk"] == "24"
    assert re.fullmatch(r"\d+\.\d+\.\d+", pins["ndk"]), "ndkVersion is pinned to a full NDK revision"
    assert kotlin_value(sdk, "compileSdk") == "libs.versions.compileSdk.get().toInt()"
    assert kotlin_value(sdk, "minSdk") == "libs.versions.minSdk.get().toInt()"
    assert kotlin_value(sdk, "ndkVersion") == "libs.versions.ndk.get()"
    assert kotlin_value(sdk, "version") == "libs.versions.cmake.get()"
    assert 'abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")' in sdk
    assert kotlin_value(sdk, "path") == 'file("src/main/cpp/CMakeLists.txt")'
    assert "androidTestImplementation(libs.junit)" in sdk and "androidTestImplementation(libs.androidx.test.runner)" in sdk

    app = files["app/build.gradle.kts"]
    app_id = ctx.get("application_id") or ctx["package"] + ".app"
    assert kotlin_value(app, "applicationId") == escape.kotlin_string(app_id)
    assert kotlin_value(app, "minSdk") == "libs.versions.minSdk.get().toInt()" and 'implementation(project(":sdk"))' in app
    assert kotlin_value(app, "targetSdk") == "libs.versions.targetSdk.get().toInt()"
    # Every library a build script names is in the catalog.
    for alias in re.findall(r"libs\.((?:androidx|junit)[\w.]*)", sdk + app):
        assert f"{alias.replace('.', '-')} = " in catalog, alias
    main = f"app/src/main/java/{app_id.replace('.', '/')}/MainActivity.java"
    assert main in files and f"package {app_id};" in files[main]

    # The JNI layer's CMake fragment lists exactly the sources it ships.
    jni_cmake = files[f"{JNI_DIR}/CMakeLists.txt"]
    listed = set(re.findall(r"^\s+(\w+\.cpp)$", jni_cmake, re.M))
    assert listed == {Path(rel).name for rel in files if rel.startswith(JNI_DIR) and rel.endswith(".cpp")}


def test_cmake_entry_point_exists_in_the_full_tree():
    """sdk/build.gradle.kts points at src/main/cpp/CMakeLists.txt: the engine's templates/cpp
    (copied to sdk/src/main/cpp by engine_files) must provide it and build jni/ on Android."""
    text = (ROOT / "templates" / "cpp" / "CMakeLists.txt").read_text()
    assert "add_subdirectory(jni)" in text and "mobilegen_engine" in text


def test_jni_registration_matches_java(tmp_path: Path, stub_jar: Path):
    """RegisterNatives names and signatures in the bridge equal javap's view of Classifier."""
    ctx = make_ctx()
    files = render(ctx, tmp_path)
    classes = compile_java(tmp_path, files, ctx, stub_jar)
    javap = require_tool("javap", "openjdk-17-jdk-headless")
    out = subprocess.run([javap, "-p", "-s", "-cp", str(classes), ctx["package"] + ".Classifier"],
                         check=True, capture_output=True, text=True).stdout
    java = dict(re.findall(r"static native \S+ (\w+)\(.*\);\n\s+descriptor: (\S+)", out))
    cpp = files[f"{JNI_DIR}/mobilegen_jni.cpp"]
    registered = dict(re.findall(r'method\("(\w+)", "([^"]+)",', cpp))
    assert java and registered == java
    assert escape.cpp_string(ctx["package_path"] + "/Classifier") in cpp


# ---------------------------------------------------------------------------------------------
# C++: the JNI bridge against real headers, the portable parts run on the host
# ---------------------------------------------------------------------------------------------


def gxx() -> str:
    return require_tool("g++", "g++")


@pytest.mark.parametrize("variant", sorted(CONTEXTS))
def test_jni_bridge_compiles(variant, tmp_path: Path):
    require_file(ANDROID_INCLUDE / "android" / "asset_manager.h", "android-platform-frameworks-native-headers")
    require_file(ANDROID_INCLUDE / "android" / "log.h", "android-liblog-dev")
    home = java_home()
    files = render(CONTEXTS[variant](), tmp_path)
    for rel in files:
        if rel.startswith(JNI_DIR) and rel.endswith(".cpp"):
            res = subprocess.run(
                [gxx(), "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                 f"-I{home / 'include'}", f"-I{home / 'include' / 'linux'}", f"-I{ANDROID_INCLUDE}",
                 f"-I{ENGINE_HEADERS}", str(tmp_path / rel)],
                capture_output=True, text=True)
            assert res.returncode == 0, f"{rel}:\n{res.stderr}"


HARNESS = r"""
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "image_input.h"

using namespace mobilegen;

// harness RGBA_FILE W H OUT_H OUT_W C DTYPE(0 f32, 1 i8, 2 u8) SCALE ZP MEAN STD OUT_FILE
int main(int, char** argv) {
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<uint8_t> rgba((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const int w = atoi(argv[2]), h = atoi(argv[3]);
  TensorInfo t{};
  t.rank = 4;
  t.h = atoi(argv[4]);
  t.w = atoi(argv[5]);
  t.c = atoi(argv[6]);
  t.shape[0] = 1;
  t.shape[1] = t.h;
  t.shape[2] = t.w;
  t.shape[3] = t.c;
  t.dtype = static_cast<DType>(atoi(argv[7]));
  t.scale = strtof(argv[8], nullptr);
  t.zero_point = atoi(argv[9]);
  // Padded rows, as Android bitmaps may have: the stride is not width * 4.
  const size_t stride = static_cast<size_t>(w) * 4 + 12;
  std::vector<uint8_t> padded(stride * h, 0xEE);
  for (int y = 0; y < h; ++y) {
    std::copy(rgba.begin() + y * w * 4, rgba.begin() + (y + 1) * w * 4, padded.begin() + y * stride);
  }
  io::ImagePreprocessor pre;
  std::vector<uint8_t> out(tensor_bytes(t));
  std::string error;
  // A first, different image exercises the reuse of the preprocessor's buffers.
  std::vector<uint8_t> small(4 * 3 * 2, 100);
  if (!pre.run({small.data(), 3, 2, 12}, t, 0.0f, 1.0f, out.data(), out.size(), &error) ||
      !pre.run({padded.data(), w, h, stride}, t, strtof(argv[10], nullptr), strtof(argv[11], nullptr),
               out.data(), out.size(), &error)) {
    fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::ofstream(argv[12], std::ios::binary).write(reinterpret_cast<char*>(out.data()), out.size());
  return 0;
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    compiler = gxx()
    work = tmp_path_factory.mktemp("harness")
    files = render(make_ctx(), work / "project")
    jni = work / "project" / JNI_DIR
    (work / "harness.cpp").write_text(HARNESS)
    exe = work / "harness"
    res = subprocess.run([compiler, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{jni}", f"-I{ENGINE_HEADERS}",
                          str(work / "harness.cpp"), str(ENGINE_HEADERS / "image_input.cpp"), "-o", str(exe)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert files
    return exe


DTYPE_CODE = {"float32": 0, "int8": 1, "uint8": 2}


@pytest.mark.parametrize("src,dst,c,dtype", [
    ((97, 61), (32, 24), 3, "int8"),      # shrink (antialiased), both passes
    ((13, 9), (40, 30), 3, "uint8"),      # enlarge
    ((50, 40), (50, 17), 1, "int8"),      # height only, luma
    ((40, 50), (17, 50), 3, "float32"),   # width only
    ((24, 24), (24, 24), 3, "uint8"),     # identity
    ((640, 480), (224, 224), 3, "int8"),  # a photo to MobileNet
])
def test_bitmap_preprocessing_matches_simulator(src, dst, c, dtype, harness: Path, tmp_path: Path):
    from PIL import Image

    from mobilegen.inputs import image_to_input

    rng = np.random.default_rng(sum(src) + sum(dst) + c)
    rgb = rng.integers(0, 256, (src[1], src[0], 3), dtype=np.uint8)
    png = tmp_path / "in.png"
    Image.fromarray(rgb).save(png)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    (tmp_path / "in.rgba").write_bytes(rgba.tobytes())
    scale, zp = (0.0, 0) if dtype == "float32" else (0.0078125 * 1.37, -3 if dtype == "int8" else 120)
    mean, std = 127.5, 127.5
    w_out, h_out = dst
    t = SimpleNamespace(shape=(1, h_out, w_out, c), dtype=dtype, quant=SimpleNamespace(s=scale, zp=zp),
                        describe=lambda: "input")
    want = image_to_input(png, t, mean, std)
    subprocess.run([str(harness), str(tmp_path / "in.rgba"), str(src[0]), str(src[1]), str(h_out), str(w_out),
                    str(c), str(DTYPE_CODE[dtype]), repr(np.float32(scale).item()), str(zp), str(mean), str(std),
                    str(tmp_path / "out.bin")], check=True)
    got = np.fromfile(tmp_path / "out.bin", dtype=dtype).reshape(want.shape)
    np.testing.assert_array_equal(got, want)


def test_labels_json_round_trips():
    """The labels asset is a JSON array (android.py writes it; Classifier parses it with
    org.json): every hostile label, newlines included, reads back exactly."""
    text = json.dumps(HOSTILE, ensure_ascii=False, indent=1) + "\n"
    assert json.loads(text) == HOSTILE
    assert escape.json(HOSTILE) and json.loads(escape.json(HOSTILE)) == HOSTILE


# ---------------------------------------------------------------------------------------------
# The Gradle wrapper, several SDKs in one app, the sample app's threading
# ---------------------------------------------------------------------------------------------


def test_gradle_wrapper_is_shipped_with_its_checksums_and_license():
    import hashlib

    from mobilegen.targets import android_files as af

    files = android_files(make_ctx())
    jar = files[af.GRADLE_WRAPPER_JAR]
    assert isinstance(jar, bytes) and jar[:2] == b"PK"
    assert hashlib.sha256(jar).hexdigest() == af.GRADLE_WRAPPER_JAR_SHA256
    # The template on disk is what ships (nothing re-encodes the jar).
    assert (af.ANDROID_TEMPLATES / af.GRADLE_WRAPPER_JAR).read_bytes() == jar
    props = dict(ln.split("=", 1) for ln in files["gradle/wrapper/gradle-wrapper.properties"].splitlines() if "=" in ln)
    assert props["distributionUrl"] == f"https\\://services.gradle.org/distributions/gradle-{af.GRADLE_VERSION}-bin.zip"
    assert props["distributionSha256Sum"] == af.GRADLE_DISTRIBUTION_SHA256
    assert props["validateDistributionUrl"] == "true"
    gradlew, bat = files["gradlew"], files["gradlew.bat"]
    assert gradlew.startswith("#!/bin/sh\n") and "\r" not in gradlew and "gradle-wrapper.jar" in gradlew
    assert bat.count("\r\n") == bat.count("\n") > 10, "gradlew.bat keeps its CRLF line ends"
    assert "Licensed under the Apache License, Version 2.0" in gradlew
    license_text = files["gradle/wrapper/LICENSE"]
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    notice = files["gradle/wrapper/NOTICE"]
    assert af.GRADLE_WRAPPER_JAR_SHA256 in notice and af.GRADLE_VERSION in notice
    # Executable in the templates (git records the mode) and so in the package.
    assert os.access(af.ANDROID_TEMPLATES / "gradlew", os.X_OK)
    if shutil.which("git") and (ROOT / ".git").exists():
        staged = subprocess.run(["git", "ls-files", "-s", "templates/android/gradlew"], cwd=ROOT,
                                capture_output=True, text=True).stdout
        assert staged == "" or staged.startswith("100755 "), staged
    # The README states the versions chosen and the wrapper's checksums.
    readme = files["README.md"]
    catalog = files["gradle/libs.versions.toml"]
    for key in ("agp", "compileSdk", "targetSdk", "ndk", "androidxActivity", "androidxExifinterface"):
        value = re.search(rf'^{key} = "([^"]+)"$', catalog, re.M).group(1)
        assert value in readme, key
    assert af.GRADLE_WRAPPER_JAR_SHA256 in readme and af.GRADLE_DISTRIBUTION_SHA256 in readme
    assert f"Gradle\n{af.GRADLE_VERSION}" in readme or f"Gradle {af.GRADLE_VERSION}" in readme
    assert "./gradlew assembleDebug" in readme and "gradle wrapper --gradle-version" not in readme


def two_sdk_contexts() -> tuple[dict, dict]:
    a = make_ctx(package="com.example.flowers", package_path="com/example/flowers", sdk_name="com_example_flowers",
                 blob_asset="com_example_flowers/model.mgw", labels_asset="com_example_flowers/labels.json")
    b = float_ctx()
    b.update(package="org.acme.birds", package_path="org/acme/birds", sdk_name="birds",
             blob_asset="birds/model.mgw", labels_asset="birds/labels.json", application_id="org.acme.birds.app")
    return a, b


def test_two_sdks_in_one_app_do_not_collide(tmp_path: Path, stub_jar: Path):
    """Two generated SDKs merged into one app: distinct asset paths, native libraries, cache
    directories, log tags and classes; their Java compiles together; each JNI library exports
    JNI_OnLoad only (so neither binds the other's engine symbols)."""
    require_file(ANDROID_INCLUDE / "android" / "asset_manager.h", "android-platform-frameworks-native-headers")
    nm = require_tool("nm", "binutils")
    home = java_home()
    sdks = []
    for ctx in two_sdk_contexts():
        out = tmp_path / ctx["sdk_name"]
        files = render(ctx, out)
        sdks.append((ctx, out, files))
    # What an app merges from each SDK: Java classes, assets (the engine's blob, labels, tensors
    # come from android.py under the same directory), the native library, the cache directory.
    merged: dict[str, str] = {}
    for ctx, _, files in sdks:
        name = ctx["sdk_name"]
        java = [rel.split("sdk/src/main/java/", 1)[1] for rel in files if rel.startswith("sdk/src/main/java/")]
        info = files[f"sdk/src/main/java/{ctx['package_path']}/ModelInfo.java"]
        assets = re.findall(r'_ASSET = "([^"]+)";', info)
        assert len(assets) == 3 and all(a.startswith(name + "/") for a in assets)
        assert f'SDK_NAME = "{name}";' in info and f'NATIVE_LIBRARY = "{name}";' in info
        cmake = files[f"{JNI_DIR}/CMakeLists.txt"]
        assert re.search(rf"^add_library\({name} SHARED$", cmake, re.M)
        classifier = files[f"sdk/src/main/java/{ctx['package_path']}/Classifier.java"]
        assert "System.loadLibrary(ModelInfo.NATIVE_LIBRARY)" in classifier
        assert "new File(context.getCacheDir(), ModelInfo.SDK_NAME)" in classifier
        jni = files[f"{JNI_DIR}/mobilegen_jni.cpp"]
        assert f'kLogTag[] = "mobilegen.{name}"' in jni
        for key in [f"java/{j}" for j in java] + [f"assets/{a}" for a in assets] + [f"lib/lib{name}.so", f"cache/{name}/"]:
            assert key not in merged, f"{key} is shipped by both SDKs"
            merged[key] = name

    # Both SDKs' Java (with the stub Android API) compiles as one program.
    javac = require_tool("javac", "openjdk-17-jdk-headless")
    sources = [str(out / rel) for _, out, files in sdks for rel in files
               if rel.startswith("sdk/src/main/java/") and rel.endswith(".java")]
    res = subprocess.run([javac, "--release", "8", "-encoding", "US-ASCII", "-Xlint:all", "-Xlint:-options", "-Werror",
                          "-cp", str(stub_jar), "-d", str(tmp_path / "classes"), *sources], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr

    # Each JNI library linked as Gradle links it (the version script): only JNI_OnLoad is exported.
    exported = {}
    for ctx, out, files in sdks:
        jni = out / JNI_DIR
        lib = tmp_path / f"lib{ctx['sdk_name']}.so"
        res = subprocess.run(
            [gxx(), "-std=c++17", "-shared", "-fPIC", "-O0", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror",
             f"-I{home / 'include'}", f"-I{home / 'include' / 'linux'}", f"-I{ANDROID_INCLUDE}", f"-I{ENGINE_HEADERS}",
             str(jni / "mobilegen_jni.cpp"), str(ENGINE_HEADERS / "image_input.cpp"),
             f"-Wl,--version-script={jni / 'exports.map'}", "-o", str(lib)],
            capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        symbols = subprocess.run([nm, "-D", "--defined-only", str(lib)], check=True, capture_output=True, text=True).stdout
        exported[ctx["sdk_name"]] = {ln.split()[-1] for ln in symbols.splitlines() if ln.strip()}
        # The class it registers natives on is its own package's.
        assert (ctx["package_path"] + "/Classifier").encode() in lib.read_bytes()
    assert all(names == {"JNI_OnLoad"} for names in exported.values()), exported


def _spans(text: str, opener: str, bracket: str) -> list[tuple[int, int]]:
    """(start, end) of every `opener` in Java `text` up to the bracket matching the first
    `bracket` ("(" or "{") from the opener's last character on."""
    spans = []
    for m in re.finditer(re.escape(opener), text):
        i = m.end() - 1
        while text[i] != bracket:
            i += 1
        close = {"(": ")", "{": "}"}[bracket]
        depth, j = 0, i
        while True:
            if text[j] == text[i]:
                depth += 1
            elif text[j] == close:
                depth -= 1
                if depth == 0:
                    break
            j += 1
        spans.append((m.start(), j))
    return spans


@pytest.mark.parametrize("variant", ["int8", "float"])
def test_sample_app_decodes_and_classifies_off_the_ui_thread(variant):
    """Structure (compiled by test_java_compiles): every decode and Classifier call of
    MainActivity sits in a worker.execute(...) task or in a method only such tasks call; every
    task catches and shows its failures; the Photo Picker with an ACTION_GET_CONTENT fallback;
    EXIF orientation applied."""
    ctx = CONTEXTS[variant]()
    files = android_files(ctx)
    app_id = ctx.get("application_id") or ctx["package"] + ".app"
    main = files[f"app/src/main/java/{app_id.replace('.', '/')}/MainActivity.java"]
    tasks = _spans(main, "worker.execute(", "(")
    worker_only = (_spans(main, "private Bitmap decodeUpright(", "{") + _spans(main, "private String classifyOnWorker(", "{")
                   + _spans(main, "private File newDumpDirectory(", "{"))
    assert len(tasks) >= 3 and len(worker_only) == 3

    def inside(pos, spans):
        return any(a <= pos <= b for a, b in spans)

    calls = [m.start() for m in re.finditer(r"BitmapFactory\.decode\w*\(|decodeUpright\(|classifyOnWorker\(|"
                                           r"Classifier\.create\(|\.classify\(|\.runDebug\(|newDumpDirectory\(", main)]
    assert calls
    for pos in calls:
        line = main.count("\n", 0, pos) + 1
        assert inside(pos, tasks) or inside(pos, worker_only), f"MainActivity.java:{line} runs on the UI thread"
    for a, b in tasks:
        task = main[a:b]
        if "this::closeClassifier" in task:
            continue
        assert "catch (Exception | OutOfMemoryError e)" in task and "showFailure(" in task, task
    assert "ActivityResultContracts.PickVisualMedia.isPhotoPickerAvailable(this)" in main
    assert "new ActivityResultContracts.GetContent()" in main  # ACTION_GET_CONTENT
    assert "ExifInterface.TAG_ORIENTATION" in main and "upright(decoded, orientation)" in main
    assert "extends ComponentActivity" in main
    app = files["app/build.gradle.kts"]
    assert "implementation(libs.androidx.activity)" in app and "implementation(libs.androidx.exifinterface)" in app


@pytest.mark.parametrize("variant", ["int8", "hostile"])
def test_sample_app_dump_switch(variant, tmp_path: Path):
    """The "Dump tensors" switch (compiled by test_java_compiles): a Switch in the layout with its
    string; when on, the worker runs runDebug into a new folder named by the time under
    getExternalFilesDir(null)/mobilegen-dumps (what mobilegen.pull lists over adb), and the
    results text names the folder and the pull command."""
    from mobilegen import pull

    ctx = CONTEXTS[variant]()
    files = render(ctx, tmp_path)
    layout = ET.parse(tmp_path / "app/src/main/res/layout/activity_main.xml").getroot()
    ns = "{http://schemas.android.com/apk/res/android}"
    switches = {e.get(ns + "id"): e for e in layout.iter("Switch")}
    assert switches["@+id/dump"].get(ns + "text") == "@string/dump_tensors"
    assert switches["@+id/dump"].get(ns + "checked") == "false"  # off by default: dumps are slow
    strings = {e.get("name"): e.text for e in ET.parse(tmp_path / "app/src/main/res/values/strings.xml").getroot()}
    assert strings["dump_tensors"] == "Dump tensors"
    app_id = ctx.get("application_id") or ctx["package"] + ".app"
    main = files[f"app/src/main/java/{app_id.replace('.', '/')}/MainActivity.java"]
    (body,) = [main[a:b] for a, b in _spans(main, "private String classifyOnWorker(", "{")]
    assert "classifier.runDebug(input, dumpDir)" in body and "classifier.classify(input)" in body
    assert "dumping ? newDumpDirectory() : null" in body and "dumpDir.getPath()" in body
    assert "mobilegen pull DIR\"" in body and "\" --target android --package %s" in body and "getPackageName()" in body
    (folder,) = [main[a:b] for a, b in _spans(main, "private File newDumpDirectory(", "{")]
    assert "getExternalFilesDir(null)" in folder and 'new SimpleDateFormat("yyyyMMdd-HHmmss", Locale.ROOT)' in folder
    assert f'DUMPS_DIR = "{pull.DUMPS_DIR}";' in main
    assert pull.ANDROID_DUMPS == "/sdcard/Android/data/{package}/files/" + pull.DUMPS_DIR
    assert "dump.setOnCheckedChangeListener((view, checked) -> classify());" in main
    assert "final boolean dumping = dump.isChecked();" in main  # read on the UI thread


def test_errors_developers_can_act_on():
    """The Java side of item 5, by structure (compiled by test_java_compiles, exercised natively
    by tests/test_backend_info.py): the status names Java knows are the engine's, bad_alloc in
    the JNI bridge is OutOfMemory, the backend info is exposed and logged, and an unclosed
    Classifier is released by a finalizer that warns."""
    files = android_files(make_ctx())
    pkg = f"sdk/src/main/java/{make_ctx()['package_path']}"
    exc = files[f"{pkg}/MobilegenException.java"]
    java_statuses = set(re.findall(r'public static final String \w+ = "(\w+)";', exc))
    engine_cpp = (ENGINE_HEADERS / "engine.cpp").read_text()
    engine_statuses = set(re.findall(r'case Status::\w+: return "(\w+)";', engine_cpp)) - {"Ok"}
    assert "OutOfMemory" in engine_statuses and java_statuses == engine_statuses | {"InternalError"}
    jni = files[f"{JNI_DIR}/mobilegen_jni.cpp"]
    bad_alloc = jni[jni.index("catch (const std::bad_alloc&)"):][:200]
    assert "Status::OutOfMemory" in bad_alloc
    assert "log_backend(engine.backend_info());" in jni and "ANDROID_LOG_WARN" in jni
    classifier = files[f"{pkg}/Classifier.java"]
    assert "public BackendInfo getBackendInfo()" in classifier
    finalize = classifier[classifier.index("protected void finalize()"):][:600]
    assert "Log.w(TAG," in finalize and "nativeClose(handle);" in finalize and "super.finalize();" in finalize
    engine_h = (ENGINE_HEADERS / "engine.h").read_text()
    assert "virtual const BackendInfo& backend_info() const = 0;" in engine_h


JNI_PROBE = r"""
// Runs pieces of the generated JNI bridge against a fake JNIEnv: a std::bad_alloc escaping a
// native method becomes MobilegenException("OutOfMemory", ...), and a GPU fallback is logged
// (Debian's host liblog prints to stderr).
#include <cstdarg>
#include <cstdio>
#include <string>
#include "mobilegen_jni.cpp"
#include "backend.h"

namespace {
std::string g_thrown_status, g_thrown_message;
bool g_pending = false;
jboolean fake_exception_check(JNIEnv*) { return g_pending ? JNI_TRUE : JNI_FALSE; }
jstring fake_new_string_utf(JNIEnv*, const char* text) { return reinterpret_cast<jstring>(new std::string(text)); }
jobject fake_new_object(JNIEnv*, jclass, jmethodID, ...);
jint fake_throw(JNIEnv*, jthrowable) { g_pending = true; return 0; }
jobject fake_new_object(JNIEnv*, jclass, jmethodID, ...) { return reinterpret_cast<jobject>(&g_pending); }
jobject fake_new_object_v(JNIEnv*, jclass, jmethodID, va_list args) {
  g_thrown_status = *reinterpret_cast<std::string*>(va_arg(args, jstring));
  g_thrown_message = *reinterpret_cast<std::string*>(va_arg(args, jstring));
  return reinterpret_cast<jobject>(&g_pending);
}
}  // namespace

// What the probe links but never calls: Android's asset and bitmap APIs and the engine's backends.
extern "C" {
AAssetManager* AAssetManager_fromJava(JNIEnv*, jobject) { return nullptr; }
AAsset* AAssetManager_open(AAssetManager*, const char*, int) { return nullptr; }
void AAsset_close(AAsset*) {}
const void* AAsset_getBuffer(AAsset*) { return nullptr; }
off64_t AAsset_getLength64(AAsset*) { return 0; }
int AndroidBitmap_getInfo(JNIEnv*, jobject, AndroidBitmapInfo*) { return -1; }
int AndroidBitmap_lockPixels(JNIEnv*, jobject, void**) { return -1; }
int AndroidBitmap_unlockPixels(JNIEnv*, jobject) { return -1; }
}
namespace mobilegen {
std::unique_ptr<BackendImpl> make_gles_backend() { return nullptr; }
std::unique_ptr<BackendImpl> make_cpu_backend() { return nullptr; }
const ModelPlan& model_plan() { static const ModelPlan plan{}; return plan; }
}  // namespace mobilegen

int main() {
  JNINativeInterface_ table{};
  table.ExceptionCheck = fake_exception_check;
  table.NewStringUTF = fake_new_string_utf;
  table.NewObject = fake_new_object;
  table.NewObjectV = fake_new_object_v;
  table.Throw = fake_throw;
  JNIEnv env{};
  env.functions = &table;
  guarded(&env, [] { throw std::bad_alloc(); });
  std::printf("%s|%s\n", g_thrown_status.c_str(), g_thrown_message.c_str());
  mobilegen::BackendInfo info;
  info.backend = mobilegen::Backend::Cpu;
  info.renderer = "llvmpipe (LLVM 15.0.6, 256 bits)";
  info.fallback_status = mobilegen::Status::GpuError;
  info.fallback_reason = "GPU backend: shader conv_0 does not compile: 0:1: error";
  log_backend(info);
  return 0;
}
"""


def test_jni_bad_alloc_is_out_of_memory_and_the_fallback_is_logged(tmp_path: Path):
    require_file(ANDROID_INCLUDE / "android" / "log.h", "android-liblog-dev")
    liblog = Path("/usr/lib/x86_64-linux-gnu/android")
    require_file(liblog / "liblog.so", "android-liblog-dev")
    home = java_home()
    files = render(make_ctx(), tmp_path / "project")
    jni = tmp_path / "project" / JNI_DIR
    (jni / "probe.cpp").write_text(JNI_PROBE)
    exe = tmp_path / "probe"
    # The bridge with the engine's model-independent core minus the backends (stubbed in the probe).
    engine = [str(ENGINE_HEADERS / f) for f in ("engine.cpp", "blob.cpp", "npy.cpp")]
    res = subprocess.run(
        [gxx(), "-std=c++17", "-O0", "-Wall", "-Wno-unused-function", f"-I{home / 'include'}", f"-I{home / 'include' / 'linux'}",
         f"-I{ANDROID_INCLUDE}", f"-I{ENGINE_HEADERS}", f"-I{jni}", str(jni / "probe.cpp"), str(ENGINE_HEADERS / "image_input.cpp"),
         *engine, f"-L{liblog}", f"-Wl,-rpath,{liblog}", "-llog", "-o", str(exe)],
        capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert files
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "OutOfMemory|native allocation failed"
    assert "GPU backend unavailable, running on the CPU: GpuError: GPU backend: shader conv_0 does not compile" in run.stderr
    assert "llvmpipe" in run.stderr and "mobilegen.com_example_mobilegen_demo" in run.stderr, run.stderr
