"""The Android project's hand-written half: Gradle files, the JNI bridge, the Java SDK, the
instrumentation test and the sample app, rendered from templates/android.

Templates ending in `.j2` are rendered (the suffix is dropped); other files are copied verbatim,
byte for byte (the Gradle wrapper's jar as bytes, `gradlew.bat` keeps its CRLF line ends).
Directory and file names may hold placeholders such as `{{ package_path }}`. The engine sources,
the assets (weights blob, labels.json, tensors.json, sample image, golden tensors) and the
provenance file come from the caller (mobilegen.targets.android).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from jinja2 import Environment

from mobilegen.render import template_environment
from mobilegen.errors import UserInputError
from mobilegen.render.escape import FILTERS, float32_literal, validate_package

ANDROID_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "android"

# Bytes per element of the input/output dtypes the SDK accepts.
DTYPE_BYTES = {"float32": 4, "int8": 1, "uint8": 1}

# The Gradle wrapper shipped in templates/android (gradlew, gradlew.bat, gradle/wrapper/): Gradle
# 9.4.1's, copied unchanged from the npm package @react-native-community/template 0.87.2 (see
# gradle/wrapper/NOTICE). GRADLE_WRAPPER_JAR_SHA256 is the checksum Gradle publishes for the 9.4.1
# wrapper JAR; GRADLE_DISTRIBUTION_SHA256 is Gradle's published sha256 of gradle-9.4.1-bin.zip
# (gradle.org/release-checksums; the same value verifies that zip in Docker's official gradle
# image and in dependabot's wrapper updates to 9.4.1). Tests check the shipped files against both.
GRADLE_VERSION = "9.4.1"
GRADLE_WRAPPER_JAR = "gradle/wrapper/gradle-wrapper.jar"
GRADLE_WRAPPER_JAR_SHA256 = "55243ef57851f12b070ad14f7f5bb8302daceeebc5bce5ece5fa6edb23e1145c"
GRADLE_DISTRIBUTION_SHA256 = "2ab2958f2a1e51120c326cad6f385153bb11ee93b3c216c5fccebfdfbb7ec6cb"
# Copied as bytes; every other static template is UTF-8 text.
BINARY_SUFFIXES = (".jar",)

# The SDK name (`--name`) becomes a file name (lib<name>.so), an asset directory, a cache
# directory and a CMake target: lowercase ASCII, so it means the same on case-insensitive file
# systems, and none of the CMake targets or system libraries the native build links.
_SDK_NAME = re.compile(r"[a-z][a-z0-9_]*")
SDK_NAME_MAX = 64
RESERVED_SDK_NAMES = frozenset({
    "mobilegen_engine", "mobilegen_core", "mobilegen_run", "mobilegen_size",  # templates/cpp targets
    "android", "log", "jnigraphics", "egl", "glesv2", "glesv3", "c", "m", "dl", "z", "stdc++", "c++_shared",
})


def validate_sdk_name(name: str) -> str:
    """`name` if it can name the SDK's native library, asset and cache directories, else a one-line
    UserInputError saying which rule it breaks."""
    problem = None
    if not name:
        problem = "it is empty"
    elif not ("a" <= name[0] <= "z"):
        problem = f"it must start with a lowercase ASCII letter, not {name[0]!r}"
    elif not _SDK_NAME.fullmatch(name):
        bad = next(ch for ch in name if not _SDK_NAME.fullmatch("a" + ch))
        problem = f"character {bad!r} is not allowed (lowercase ASCII letters, digits and _ only)"
    elif len(name) > SDK_NAME_MAX:
        problem = f"it has {len(name)} characters, at most {SDK_NAME_MAX} are allowed"
    elif name in RESERVED_SDK_NAMES:
        problem = "it is reserved (a CMake target or a system library of the native build)"
    if problem:
        raise UserInputError(f"invalid --name {name!r}: {problem}")
    return name


def default_sdk_name(package: str) -> str:
    """The SDK name when `--name` is not given: the package, lowercased, dots as underscores
    (com.example.Flowers -> com_example_flowers), so SDKs of different packages do not collide."""
    name = validate_package(package).lower().replace(".", "_")
    if len(name) > SDK_NAME_MAX or name in RESERVED_SDK_NAMES:
        raise UserInputError(f"package {package!r} gives the SDK name {name!r}, which is too long or reserved; "
                             "choose one with --name")
    return name


def environment() -> Environment:
    return template_environment(ANDROID_TEMPLATES, dict(FILTERS, java_float=float32_literal))


def template_context(ctx: dict) -> dict:
    """`ctx` (see android_files) plus the values the templates derive from it."""
    validate_package(ctx["package"])
    validate_sdk_name(ctx["sdk_name"])
    app_package = ctx.get("application_id") or ctx["package"] + ".app"
    validate_package(app_package)
    for side in ("input", "output"):
        if ctx[side]["dtype"] not in DTYPE_BYTES:
            raise ValueError(f"{side} dtype {ctx[side]['dtype']!r}: expected one of {sorted(DTYPE_BYTES)}")
    inp, out = ctx["input"], ctx["output"]
    return {
        **ctx,
        "app_package": app_package,
        "app_package_path": app_package.replace(".", "/"),
        # The dump index (DESIGN.md's tensors.json) sits next to the weights blob.
        "tensors_asset": ctx.get("tensors_asset") or posixpath.join(posixpath.dirname(ctx["blob_asset"]), "tensors.json"),
        "gradle_version": GRADLE_VERSION,
        "gradle_wrapper_jar_sha256": GRADLE_WRAPPER_JAR_SHA256,
        "gradle_distribution_sha256": GRADLE_DISTRIBUTION_SHA256,
        "versions": catalog_versions(),
        "input_bytes": inp["h"] * inp["w"] * inp["c"] * DTYPE_BYTES[inp["dtype"]],
        "output_bytes": out["classes"] * DTYPE_BYTES[out["dtype"]],
        # Every graph input and output (name, shape, dtype, scale, zero_point); by default the
        # one image input and one score vector described by `input` and `output`.
        "inputs": ctx.get("inputs") or [{"name": "input", "shape": [1, inp["h"], inp["w"], inp["c"]], "dtype": inp["dtype"],
                                         "scale": inp["scale"], "zero_point": inp["zero_point"]}],
        "outputs": ctx.get("outputs") or [{"name": "output", "shape": [1, out["classes"]], "dtype": out["dtype"],
                                           "scale": out["scale"], "zero_point": out["zero_point"]}],
    }


def catalog_versions() -> dict[str, str]:
    """The [versions] table of templates/android/gradle/libs.versions.toml (the README quotes it)."""
    import tomllib

    return dict(tomllib.loads((ANDROID_TEMPLATES / "gradle" / "libs.versions.toml").read_text(encoding="utf-8"))["versions"])


def android_files(ctx: dict) -> dict[str, str | bytes]:
    """Relative output path -> text of every file under templates/android, rendered with `ctx`.

    ctx keys: package, package_path, sdk_name (validate_sdk_name), app_name, labels, model_name, input (h, w, c, dtype, scale,
    zero_point, mean, std), output (classes, dtype, scale, zero_point), precision, tool_version,
    model_sha256, blob_asset, labels_asset (a JSON array of strings), float_tolerance (None:
    the instrumentation test demands identical bytes). Optional: application_id (default
    package + ".app"), tensors_asset (default: tensors.json next to the blob), inputs and outputs
    (every graph input and output: name, shape, dtype, scale, zero_point; default: `input` and
    `output` alone).
    """
    env = environment()
    values = template_context(ctx)
    files: dict[str, str | bytes] = {}
    for path in sorted(ANDROID_TEMPLATES.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(ANDROID_TEMPLATES).as_posix()
        out = env.from_string(rel).render(values) if "{{" in rel else rel
        if rel.endswith(".j2"):
            files[out[: -len(".j2")]] = env.get_template(rel).render(values)
        elif rel.endswith(BINARY_SUFFIXES):
            files[out] = path.read_bytes()
        else:
            # Decoded by hand: read_text would turn gradlew.bat's CRLF into LF.
            files[out] = path.read_bytes().decode("utf-8")
    return files
