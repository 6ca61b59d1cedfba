"""The iOS Objective-C SDK (templates/ios/Sources/{{module}}/ without Metal/ and cpp/): its
headers and .mm files syntax-check with clang-19, ARC and GNUstep against tests/apple_stubs
(tests/objc.py), misuse of the API fails to compile, every public symbol is documented; and the
portable C++ it stands on (templates/cpp/engine/image_input.{h,cpp}: EXIF orientations, BGRA
pixels, dequantized scores, top-K) matches numpy, Pillow and the simulator on the host."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.harness import require_tool
from tests.objc import clang_command, run_clang, syntax_check

ROOT = Path(__file__).resolve().parents[1]
IOS_TEMPLATES = ROOT / "templates" / "ios"
SDK_TEMPLATES = IOS_TEMPLATES / "Sources" / "{{module}}"
ENGINE = ROOT / "templates" / "cpp" / "engine"
# Worker B's (Metal adapter) and the engine tree: not part of the Objective-C SDK checked here.
NOT_OURS = ("Metal", "cpp")
PUBLIC = ("MGClassifier.h", "MGClassifierOptions.h", "MGErrors.h", "MGRecognition.h", "MGTensorSpec.h")


def make_ctx(**changes) -> dict:
    """A template context with the contract's keys (ios_contract.md), for an int8 MobileNet."""
    ctx = {
        "module": "MobilegenClassifier",
        "bundle_id": "com.example.mobilegen",
        "app_name": "Mobilegen Classifier",
        "labels": ["cat", "dog", "tabby cat"],
        "model_name": "mobilenet_v1_0.25_128_int8.tflite",
        "tool_version": "0.0-test",
        "model_sha256": "0" * 64,
        "precision": "int8",
        "input": {"h": 128, "w": 128, "c": 3, "dtype": "int8", "mean": 127.5, "std": 127.5,
                  "scale": 0.0078125, "zero_point": -1},
        "output": {"classes": 3, "dtype": "int8", "scale": 0.00390625, "zero_point": -128},
        "inputs": [{"name": "input", "shape": [1, 128, 128, 3], "dtype": "int8", "scale": 0.0078125, "zero_point": -1}],
        "outputs": [{"name": "scores", "shape": [1, 3], "dtype": "int8", "scale": 0.00390625, "zero_point": -128}],
        "float_tolerance": None,
    }
    ctx.update(changes)
    return ctx


CONTEXTS = {
    "int8": make_ctx(),
    "float": make_ctx(
        precision="fp32", module="Hostile_Module9", model_name='we"ird */ name\n.tflite',
        input={"h": 224, "w": 224, "c": 3, "dtype": "float32", "mean": 0.0, "std": 255.0, "scale": 0.0, "zero_point": 0},
        output={"classes": 3, "dtype": "float32", "scale": 0.0, "zero_point": 0}, float_tolerance=1e-4),
}


def environment():
    """The iOS target's Jinja environment (worker D's mobilegen.targets.ios_files) when it is
    there, else the same filters from mobilegen.render.escape."""
    try:
        from mobilegen.targets.ios_files import environment as ios_environment

        return ios_environment()
    except ImportError:
        from mobilegen.render import template_environment
        from mobilegen.render.escape import FILTERS, float32_literal

        return template_environment(IOS_TEMPLATES, dict(FILTERS, c_float=float32_literal))


def render_sdk(ctx: dict, out: Path) -> Path:
    """Renders the SDK's templates into out/Sources/<module>/ (with the engine headers in
    cpp/engine/ for the .mm includes); returns that folder."""
    env = environment()
    root = out / "Sources" / ctx["module"]
    for path in sorted(SDK_TEMPLATES.rglob("*")):
        rel = path.relative_to(SDK_TEMPLATES)
        if not path.is_file() or rel.parts[0] in NOT_OURS:
            continue
        name = env.from_string(rel.as_posix()).render(ctx)
        target = root / (name[: -len(".j2")] if name.endswith(".j2") else name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".j2":
            template = env.get_template(path.relative_to(IOS_TEMPLATES).as_posix())
            target.write_text(template.render(ctx))
        else:
            shutil.copyfile(path, target)
    (root / "cpp" / "engine").mkdir(parents=True, exist_ok=True)
    for header in ENGINE.glob("*.h"):
        shutil.copyfile(header, root / "cpp" / "engine" / header.name)
    return root


def sdk_sources(root: Path) -> tuple[list[Path], list[Path]]:
    """(public headers, .mm files) of a rendered SDK."""
    headers = sorted((root / "include").rglob("*.h"))
    return headers, sorted(root.glob("*.mm"))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    return {name: render_sdk(ctx, tmp_path_factory.mktemp(name)) for name, ctx in CONTEXTS.items()}


# ---- the Objective-C sources ----------------------------------------------------------------------


def test_templates_are_the_contracts_files(rendered):
    root = rendered["int8"]
    headers, mms = sdk_sources(root)
    assert sorted(h.name for h in headers) == sorted(PUBLIC + ("MobilegenClassifier.h",))
    assert all(h.parent == root / "include" / "MobilegenClassifier" for h in headers)
    assert {m.name for m in mms} == {"MGClassifier.mm", "MGValues.mm"}


# The SDK's own sources are held to more than tests/objc.py's -Wall: implicit conversions, a
# nullable value passed where the API promises nonnull, shadowing, designated-initializer rules.
STRICT = ["-Wextra", "-Wno-unused-parameter", "-Wconversion", "-Wno-sign-conversion", "-Wshadow",
          "-Wnullable-to-nonnull-conversion", "-Wobjc-designated-initializers"]


@pytest.mark.parametrize("variant", sorted(CONTEXTS))
def test_sdk_syntax_checks(variant, rendered):
    """Every public header on its own (Objective-C and Objective-C++: each is self-contained) and
    every .mm, with all warnings (nullability completeness included) as errors; the .mm files also
    with SwiftPM's SWIFTPM_MODULE_BUNDLE defined (the other branch of initWithOptions:error:)."""
    root = rendered[variant]
    headers, mms = sdk_sources(root)
    include = [root / "include"]
    syntax_check(headers, include, objcxx=False, flags=STRICT)
    syntax_check(headers, include, objcxx=True, flags=STRICT)
    syntax_check(mms, include, flags=STRICT)
    syntax_check(mms, include, flags=[*STRICT, "-DSWIFTPM_MODULE_BUNDLE=[NSBundle mainBundle]"])


@pytest.mark.parametrize("variant", sorted(CONTEXTS))
def test_sdk_compiles_to_objects(variant, rendered, tmp_path: Path):
    """Beyond the syntax: clang generates code for the .mm files (ARC and C++ members of
    Objective-C classes included). Linking needs an ARC runtime, which Debian lacks."""
    root = rendered[variant]
    _, mms = sdk_sources(root)
    for mm in mms:
        cmd = [c for c in clang_command([mm], [root / "include"], True) if c != "-fsyntax-only"]
        res = subprocess.run(cmd + ["-c", "-o", str(tmp_path / (mm.name + ".o"))], capture_output=True, text=True)
        assert res.returncode == 0, f"{mm.name}:\n{res.stderr}"
        assert (tmp_path / (mm.name + ".o")).stat().st_size > 0


CLIENT = r"""
#import <MobilegenClassifier/MobilegenClassifier.h>

NS_ASSUME_NONNULL_BEGIN
// What an app does with the SDK: options, both initializers, every call, errors by code.
NSString *_Nullable Use(UIImage *image, CVPixelBufferRef frame, CGImageRef cgImage, NSURL *dir) {
  MGClassifierOptions *options = [[MGClassifierOptions alloc] init];
  options.backend = MGBackendCPU;
  options.maxResults = 3;
  options.cacheDirectory = nil;
  NSError *error = nil;
  MGClassifier *classifier = [[MGClassifier alloc] initWithOptions:options error:&error];
  if (classifier == nil) {
    classifier = [[MGClassifier alloc] initWithBundle:[NSBundle mainBundle] options:nil error:&error];
  }
  if (classifier == nil) {
    return [error.domain isEqualToString:MGClassifierErrorDomain] && error.code == MGClassifierErrorResourceMissing
               ? @"missing" : error.localizedDescription;
  }
  NSArray<MGRecognition *> *top = [classifier classifyImage:image error:&error];
  top = [classifier classifyImage:image dumpDirectory:dir error:&error];
  top = [classifier classifyCGImage:cgImage orientation:kCGImagePropertyOrientationRight error:&error];
  top = [classifier classifyPixelBuffer:frame orientation:kCGImagePropertyOrientationUp error:NULL];
  NSMutableArray<NSData *> *inputs = [NSMutableArray array];
  for (MGTensorSpec *spec in classifier.inputs) [inputs addObject:[NSMutableData dataWithLength:spec.byteCount]];
  NSArray<NSData *> *outputs = [classifier runWithInputs:inputs error:&error];
  outputs = [classifier runDebugWithInputs:inputs dumpDirectory:dir error:&error];
  MGDataType type = classifier.outputs[0].dataType;
  NSString *reason = classifier.fallbackReason ?: classifier.deviceName;
  return [NSString stringWithFormat:@"%@ %@ %f %ld %lu %@ %f %ld %@ %@ %ld", top.firstObject.label, reason,
                                    classifier.lastInferenceTimeMs, (long)type, (unsigned long)outputs.count,
                                    classifier.labels.firstObject, (double)top.firstObject.score,
                                    (long)top.firstObject.index, classifier.inputs[0].name,
                                    classifier.inputs[0].shape, (long)classifier.backend];
}
NS_ASSUME_NONNULL_END
"""


def check_client(root: Path, tmp_path: Path, body: str, suffix: str = ".m"):
    src = tmp_path / f"client{suffix}"
    src.write_text(body)
    return run_clang([src], [root / "include"])


@pytest.mark.parametrize("suffix", [".m", ".mm"])
def test_an_app_using_the_api_compiles(suffix, rendered, tmp_path: Path):
    res = check_client(rendered["int8"], tmp_path, CLIENT, suffix)
    assert res.returncode == 0, res.stderr


MISUSE = {
    # NS_UNAVAILABLE: only the designated initializers make a classifier.
    "plain init": ("(void)[[MGClassifier alloc] init];", "'init' is unavailable"),
    "new": ("(void)[MGClassifier new];", "'new' is unavailable"),
    "made recognitions": ("(void)[[MGRecognition alloc] init];", "'init' is unavailable"),
    "made tensor specs": ("(void)[MGTensorSpec new];", "'new' is unavailable"),
    # Nullability: the image is required.
    "nil image": ("NSError *e; (void)[[[MGClassifier alloc] initWithOptions:nil error:&e] classifyImage:nil error:&e];",
                  "null passed to a callee that requires a non-null"),
    # Lightweight generics: the inputs are NSData.
    "strings as tensors": ("NSError *e; (void)[[[MGClassifier alloc] initWithOptions:nil error:&e] "
                           "runWithInputs:@[@\"x\"] error:&e];", "NSString"),
    # Read-only results.
    "assign a label": ("MGRecognition *r = nil; r.label = @\"x\";", "readonly"),
}


@pytest.mark.parametrize("case", sorted(MISUSE))
def test_api_misuse_does_not_compile(case, rendered, tmp_path: Path):
    code, diagnostic = MISUSE[case]
    body = f"#import <MobilegenClassifier/MobilegenClassifier.h>\nvoid misuse(void);\nvoid misuse(void) {{ {code} }}\n"
    res = check_client(rendered["int8"], tmp_path, body)
    assert res.returncode != 0, f"{case}: compiled"
    assert diagnostic in res.stderr, res.stderr


DECLARATION = re.compile(r"^(@interface|@property|[-+] \(|FOUNDATION_EXPORT|typedef|  MG[A-Za-z]+ = )")


def test_every_public_symbol_is_documented(rendered):
    """Every declaration of the public headers follows a /** */ comment (NS_SWIFT_NAME lines may
    sit between), and every header is wrapped in NS_ASSUME_NONNULL."""
    headers, _ = sdk_sources(rendered["int8"])
    undocumented = []
    for header in headers:
        if header.name == "MobilegenClassifier.h":
            continue  # the umbrella: imports only
        text = header.read_text()
        assert "NS_ASSUME_NONNULL_BEGIN" in text and "NS_ASSUME_NONNULL_END" in text, header.name
        documented = False
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("NS_SWIFT_NAME("):
                continue
            if DECLARATION.match(line):
                if not documented:
                    undocumented.append(f"{header.name}: {stripped}")
                documented = False
            elif stripped.endswith("*/"):
                documented = True
            elif stripped and not stripped.startswith(("*", "/**")):
                documented = False
    assert not undocumented, "\n".join(undocumented)


def test_header_declares_the_contracts_swift_names(rendered):
    headers, _ = sdk_sources(rendered["int8"])
    text = "\n".join(h.read_text() for h in headers)
    for swift in ("ClassifierError", "Backend", "DataType", "ClassifierOptions", "Recognition", "TensorSpec",
                  "Classifier", "classify(_:)", "classify(cgImage:orientation:)",
                  "classify(pixelBuffer:orientation:)", "run(inputs:)", "runDebug(inputs:dumpDirectory:)",
                  "classify(_:dumpDirectory:)"):
        assert f"NS_SWIFT_NAME({swift})" in text, swift
    assert "NS_ERROR_ENUM(MGClassifierErrorDomain, MGClassifierErrorCode)" in text
    assert text.count("NS_DESIGNATED_INITIALIZER") == 2  # the classifier's and the options' init


def test_sample_app_dump_switch():
    """The sample app's "Dump tensors" switch (syntax-checked with the whole app by
    tests/test_ios_project.py): on, the classification goes through classifyImage:dumpDirectory:
    into a new Documents/mobilegen-dumps/<yyyyMMdd-HHmmss> folder (what mobilegen.pull copies
    with devicectl), off the main thread, and the app shows where the dump went."""
    from mobilegen import pull

    vc = environment().get_template("App/ViewController.m.j2").render(**make_ctx())
    assert pull.IOS_DUMPS == "Documents/" + pull.DUMPS_DIR
    assert f'static NSString *const kDumpsFolder = @"{pull.DUMPS_DIR}";' in vc
    assert "self.dumpSwitch = [[UISwitch alloc] init];" in vc and 'dumpTitle.text = @"Dump tensors";' in vc
    assert "self.dumpSwitch.on = NO;" in vc
    assert "NSSearchPathForDirectoriesInDomains(NSDocumentDirectory, NSUserDomainMask, YES)" in vc
    assert 'format.dateFormat = @"yyyyMMdd-HHmmss";' in vc and '@"en_US_POSIX"' in vc
    queued = vc[vc.index("dispatch_async(self.inferenceQueue"):]
    assert queued.index("classifyImage:image dumpDirectory:(NSURL *)dumpDirectory error:&error") < \
        queued.index("dispatch_get_main_queue()")  # run on the inference queue
    assert "[weakSelf showDump:results != nil ? dumpDirectory : nil];" in vc
    assert "mobilegen pull DIR --target ios --package %@" in vc


def test_generated_project_sdk_syntax_checks(tmp_path: Path):
    """Through the iOS target itself (mobilegen.targets.ios) on the demo model: the SDK as
    generated, with the real engine tree, syntax-checks."""
    ios = pytest.importorskip("mobilegen.targets.ios", reason="the iOS target (worker D) is not there yet")
    pytest.importorskip("flatbuffers")
    model = ROOT / "examples" / "demo" / "model.tflite"
    files, _ = ios.ios_project(model.read_bytes(), model.name, ios.IOSOptions())
    for rel, content in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    root = tmp_path / "Sources" / ios.IOSOptions().module
    headers, mms = sdk_sources(root)
    assert {m.name for m in mms} >= {"MGClassifier.mm", "MGValues.mm"}
    syntax_check(headers + mms, [root / "include"])


# ---- the portable C++ under the SDK: image_input.{h,cpp} -------------------------------------------

HARNESS = r"""
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "image_input.h"

using namespace mobilegen;

static std::vector<uint8_t> slurp(const char* path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
static void spill(const char* path, const void* data, size_t bytes) {
  std::ofstream(path, std::ios::binary).write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
}
static int fail(const std::string& error) {
  std::fprintf(stderr, "%s\n", error.c_str());
  return 1;
}

// orient IN W H STRIDE ORDER ORIENTATION OUT: writes int32 width, height, then the RGBA pixels.
// preprocess IN W H STRIDE ORDER ORIENTATION OUT_H OUT_W C DTYPE SCALE ZP MEAN STD OUT
// scores IN DTYPE SCALE ZP COUNT OUT (float32 scores)
// topk IN(float32) K OUT (int32 indices)
// uikit: prints the EXIF orientation of UIImageOrientation -1..8 (0: none)
int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  std::string error;
  if (mode == "orient" || mode == "preprocess") {
    const std::vector<uint8_t> pixels = slurp(argv[2]);
    const io::RgbaImage image{pixels.data(), atoi(argv[3]), atoi(argv[4]), static_cast<size_t>(atol(argv[5]))};
    const auto order = static_cast<io::PixelOrder>(atoi(argv[6]));
    const auto orientation = static_cast<io::Orientation>(atoi(argv[7]));
    if (mode == "orient") {
      std::vector<uint8_t> out;
      int32_t size[2];
      if (!io::orient_pixels(image, order, orientation, &out, &size[0], &size[1], &error)) return fail(error);
      int32_t expected[2];
      io::oriented_size(image.width, image.height, orientation, &expected[0], &expected[1]);
      if (expected[0] != size[0] || expected[1] != size[1]) return fail("oriented_size disagrees");
      out.insert(out.begin(), reinterpret_cast<uint8_t*>(size), reinterpret_cast<uint8_t*>(size) + 8);
      spill(argv[8], out.data(), out.size());
      return 0;
    }
    TensorInfo t{};
    t.rank = 4;
    t.h = atoi(argv[8]);
    t.w = atoi(argv[9]);
    t.c = atoi(argv[10]);
    t.shape[0] = 1;
    t.shape[1] = t.h;
    t.shape[2] = t.w;
    t.shape[3] = t.c;
    t.dtype = static_cast<DType>(atoi(argv[11]));
    t.scale = strtof(argv[12], nullptr);
    t.zero_point = atoi(argv[13]);
    std::vector<uint8_t> out(tensor_bytes(t));
    io::ImagePreprocessor pre;
    if (!pre.run(image, order, orientation, t, strtof(argv[14], nullptr), strtof(argv[15], nullptr), out.data(),
                 out.size(), &error)) {
      return fail(error);
    }
    spill(argv[16], out.data(), out.size());
    return 0;
  }
  if (mode == "scores") {
    const std::vector<uint8_t> data = slurp(argv[2]);
    TensorInfo t{};
    t.rank = 2;
    t.h = t.w = 1;
    t.c = atoi(argv[6]);
    t.shape[0] = 1;
    t.shape[1] = t.c;
    t.dtype = static_cast<DType>(atoi(argv[3]));
    t.scale = strtof(argv[4], nullptr);
    t.zero_point = atoi(argv[5]);
    std::vector<float> scores;
    if (!io::output_scores(t, data.data(), data.size(), &scores, &error)) return fail(error);
    spill(argv[7], scores.data(), scores.size() * sizeof(float));
    return 0;
  }
  if (mode == "topk") {
    const std::vector<uint8_t> data = slurp(argv[2]);
    std::vector<float> scores(data.size() / sizeof(float));
    if (!data.empty()) std::copy(data.begin(), data.end(), reinterpret_cast<uint8_t*>(scores.data()));
    std::vector<int32_t> best;
    io::top_k(scores.data(), scores.size(), static_cast<size_t>(atol(argv[3])), &best);
    spill(argv[4], best.data(), best.size() * sizeof(int32_t));
    return 0;
  }
  if (mode == "uikit") {
    for (int32_t v = -1; v <= 8; ++v) {
      io::Orientation o = io::Orientation::Up;
      std::printf("%d ", io::orientation_from_uikit(v, &o) ? static_cast<int>(o) : 0);
    }
    return 0;
  }
  return fail("unknown mode " + mode);
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    compiler = require_tool("g++", "g++")
    work = tmp_path_factory.mktemp("image_input")
    (work / "harness.cpp").write_text(HARNESS)
    exe = work / "harness"
    res = subprocess.run([compiler, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{ENGINE}",
                          str(work / "harness.cpp"), str(ENGINE / "image_input.cpp"), "-o", str(exe)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return exe


def run_harness(exe: Path, *args) -> str:
    res = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


# The displayed image of stored pixels `a` ([h][w][ch]) under each EXIF orientation, in numpy.
NUMPY_ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),  # clockwise
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),  # counter-clockwise
}


def pillow_orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Pillow's reading of the EXIF orientation (ImageOps.exif_transpose's table): an independent
    check that NUMPY_ORIENT means what the EXIF standard says."""
    from PIL import Image

    t = Image.Transpose
    method = {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE, 6: t.ROTATE_270,
              7: t.TRANSVERSE, 8: t.ROTATE_90}.get(orientation)
    img = Image.fromarray(np.ascontiguousarray(a), "RGBA")
    return np.asarray(img if method is None else img.transpose(method))


def stored_bytes(pixels: np.ndarray, order: str, pad: int) -> bytes:
    """RGBA pixels [h][w][4] in memory as `order` says, with `pad` junk bytes after each row."""
    h, w = pixels.shape[:2]
    stored = pixels[..., [2, 1, 0, 3]] if order == "bgra" else pixels
    return np.concatenate([stored.reshape(h, w * 4), np.full((h, pad), 0xEE, np.uint8)], axis=1).tobytes()


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("order", ["rgba", "bgra"])
def test_orientations_match_numpy_and_pillow(orientation, order, harness: Path, tmp_path: Path):
    rng = np.random.default_rng(orientation * 2 + (order == "bgra"))
    for w, h, pad in ((7, 5, 12), (1, 9, 0), (9, 1, 4), (1, 1, 0), (13, 13, 8)):  # odd, thin, square
        pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)  # R, G, B, A
        (tmp_path / "in.bin").write_bytes(stored_bytes(pixels, order, pad))
        run_harness(harness, "orient", tmp_path / "in.bin", w, h, w * 4 + pad, int(order == "bgra"), orientation,
                    tmp_path / "out.bin")
        out = np.fromfile(tmp_path / "out.bin", np.uint8)
        ow, oh = np.frombuffer(out[:8].tobytes(), np.int32)
        want = NUMPY_ORIENT[orientation](pixels)
        np.testing.assert_array_equal(want, pillow_orient(pixels, orientation))
        assert (oh, ow) == want.shape[:2], (w, h)
        np.testing.assert_array_equal(out[8:].reshape(oh, ow, 4), want, err_msg=f"{w}x{h}")


def test_invalid_orientations_and_images_are_errors(harness: Path, tmp_path: Path):
    (tmp_path / "in.bin").write_bytes(bytes(4 * 6))
    for orientation in (0, 9, -1):
        res = subprocess.run([str(x) for x in (harness, "orient", tmp_path / "in.bin", 3, 2, 12, 0, orientation,
                                               tmp_path / "o")], capture_output=True, text=True)
        assert res.returncode == 1 and "EXIF orientations are 1 to 8" in res.stderr
    res = subprocess.run([str(x) for x in (harness, "orient", tmp_path / "in.bin", 3, 2, 8, 0, 1, tmp_path / "o")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "bad row stride" in res.stderr


def test_uikit_orientations_map_by_name(harness: Path):
    # UIImageOrientation: Up, Down, Left, Right, UpMirrored, DownMirrored, LeftMirrored, RightMirrored.
    assert run_harness(harness, "uikit").split() == ["0", "1", "3", "8", "6", "2", "4", "5", "7", "0"]


def pillow_resizes_vertically_first(w: int, h: int, out_w: int, out_h: int) -> bool:
    """Whether Pillow's BILINEAR resize of a w x h picture runs its vertical pass first (Pillow 13:
    when the height shrinks by more than twice as many pixels as the width), told apart by its
    output: each pass rounds to 8 bits, so the two orders differ in the last bit."""
    from PIL import Image

    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    bilinear = Image.Resampling.BILINEAR
    direct = np.asarray(im.resize((out_w, out_h), bilinear))
    vertical_first = np.asarray(im.resize((w, out_h), bilinear).resize((out_w, out_h), bilinear))
    horizontal_first = np.asarray(im.resize((out_w, h), bilinear).resize((out_w, out_h), bilinear))
    assert not np.array_equal(vertical_first, horizontal_first), "a shape where the order shows"
    assert np.array_equal(direct, vertical_first) or np.array_equal(direct, horizontal_first)
    return np.array_equal(direct, vertical_first)


def preprocess(harness: Path, tmp_path: Path, pixels: np.ndarray, order: str, orientation: int, t) -> np.ndarray:
    """ImagePreprocessor::run on `pixels` ([h][w][4] R, G, B, A) stored in `order` with padded rows."""
    h, w = pixels.shape[:2]
    pad = 20
    (tmp_path / "in.bin").write_bytes(stored_bytes(pixels, order, pad))
    _, out_h, out_w, c = t.shape
    run_harness(harness, "preprocess", tmp_path / "in.bin", w, h, w * 4 + pad, int(order == "bgra"), orientation,
                out_h, out_w, c, {"float32": 0, "int8": 1, "uint8": 2}[t.dtype], repr(np.float32(t.quant.s).item()),
                t.quant.zp, 127.5, 127.5, tmp_path / "out.bin")
    return np.fromfile(tmp_path / "out.bin", t.dtype).reshape(t.shape)


def simulator_input(tmp_path: Path, upright: np.ndarray, t) -> np.ndarray:
    from PIL import Image

    from mobilegen.inputs import image_to_input

    png = tmp_path / "upright.png"
    Image.fromarray(np.ascontiguousarray(upright[..., :3])).save(png)
    return image_to_input(png, t, 127.5, 127.5)


def image_tensor(h: int, w: int, dtype: str = "int8"):
    return SimpleNamespace(shape=(1, h, w, 3), dtype=dtype, quant=SimpleNamespace(s=0.0078125 * 1.37, zp=-3),
                           describe=lambda: "input")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_oriented_bgra_picture_is_the_simulators_input(orientation, harness: Path, tmp_path: Path):
    """End to end through ImagePreprocessor::run: a BGRA camera frame stored turned, with padded
    rows, gives exactly the simulator's input for the upright picture (odd sizes, a shrink; the
    turned orientations 5-8 resize vertical pass first, the others horizontal pass first)."""
    rng = np.random.default_rng(100 + orientation)
    w, h = 41, 23
    t = image_tensor(15, 17)
    assert not pillow_resizes_vertically_first(w, h, 17, 15) and pillow_resizes_vertically_first(h, w, 17, 15)
    pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    want = simulator_input(tmp_path, NUMPY_ORIENT[orientation](pixels), t)
    np.testing.assert_array_equal(preprocess(harness, tmp_path, pixels, "bgra", orientation, t), want)


# (w, h) -> (out_w, out_h) and the pass order Pillow takes: both orders, shrinking and growing.
PASS_ORDER_CASES = [
    ((23, 37), (17, 15), True),     # the height shrinks 22 px, the width 6: vertical first
    ((360, 640), (224, 224), True),   # a 9:16 portrait frame: vertical first
    ((480, 640), (224, 224), False),  # a 3:4 portrait photo: horizontal first (416 <= 2 * 256)
    ((640, 480), (224, 224), False),  # a landscape one
    ((37, 23), (17, 15), False),
    ((20, 68), (84, 86), False),    # growing both ways
    ((40, 90), (60, 20), True),     # wider, much lower
    ((90, 40), (20, 60), False),    # narrower, taller
]


@pytest.mark.parametrize("size,out,vertical_first", PASS_ORDER_CASES, ids=str)
def test_resize_takes_pillows_pass_order(size, out, vertical_first, harness: Path, tmp_path: Path):
    """ImagePreprocessor orders its two resize passes as Pillow does, so the engine's input equals
    the simulator's bit for bit whichever pass goes first (a fixed order is 1 LSB off on many
    shapes)."""
    (w, h), (out_w, out_h) = size, out
    assert pillow_resizes_vertically_first(w, h, out_w, out_h) == vertical_first
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    t = image_tensor(out_h, out_w)
    np.testing.assert_array_equal(preprocess(harness, tmp_path, pixels, "rgba", 1, t),
                                  simulator_input(tmp_path, pixels, t))


@pytest.mark.parametrize("dtype,code", [("int8", 1), ("uint8", 2), ("float32", 0)])
def test_output_scores_dequantize_like_the_android_sdk(dtype, code, harness: Path, tmp_path: Path):
    if dtype == "float32":
        q = np.array([0.5, -1.25, np.inf, -0.0, 3e-39], np.float32)
        want = q
        scale, zp = 0.0, 0
    else:
        info = np.iinfo(dtype)
        q = np.arange(info.min, info.max + 1).astype(dtype)
        scale, zp = np.float32(0.00390625 * 1.7), (-128 if dtype == "int8" else 7)
        # Classifier.java's score(): OUTPUT_SCALE * (q - OUTPUT_ZERO_POINT), float arithmetic.
        want = scale * (q.astype(np.int32) - zp).astype(np.float32)
    (tmp_path / "q.bin").write_bytes(q.tobytes())
    run_harness(harness, "scores", tmp_path / "q.bin", code, repr(float(scale)), zp, q.size, tmp_path / "s.bin")
    got = np.fromfile(tmp_path / "s.bin", np.float32)
    np.testing.assert_array_equal(got.view(np.uint32), want.astype(np.float32).view(np.uint32))


def reference_top_k(scores: list[float], k: int) -> list[int]:
    """Best first: numbers before NaN, higher first, equal scores in index order."""
    def key(i):
        s = scores[i]
        return (1, 0.0, i) if math.isnan(s) else (0, -s, i)

    return sorted(range(len(scores)), key=key)[:k]


TOP_K_CASES = [
    ([0.1, 0.9, 0.5, 0.9, 0.2], 3),                       # a tie at the top: lower index first
    ([-3.0, -1.0, -2.0, -1.0], 2),                        # negative scores (logits)
    ([float("nan"), 1.0, float("nan"), -1.0], 4),         # NaN last
    ([float("-inf"), float("nan"), float("inf")], 3),     # infinities before NaN
    ([0.0, -0.0, 0.0], 3),                                # signed zeros are equal
    ([1.0, 2.0], 5),                                      # k > n
    ([1.0, 2.0], 0),                                      # k = 0
    ([], 5),                                              # no scores
]


@pytest.mark.parametrize("scores,k", TOP_K_CASES)
def test_top_k_edge_cases(scores, k, harness: Path, tmp_path: Path):
    (tmp_path / "s.bin").write_bytes(np.array(scores, np.float32).tobytes())
    run_harness(harness, "topk", tmp_path / "s.bin", k, tmp_path / "k.bin")
    assert np.fromfile(tmp_path / "k.bin", np.int32).tolist() == reference_top_k(scores, k)


def test_top_k_random_ties(harness: Path, tmp_path: Path):
    """Many ties (scores from 8-bit outputs take few values), k from 1 to beyond n."""
    rng = np.random.default_rng(7)
    for trial in range(40):
        n = int(rng.integers(1, 1200))
        scores = (rng.integers(-6, 6, n) * np.float32(0.25)).astype(np.float32)
        k = int(rng.integers(1, n + 3))
        (tmp_path / "s.bin").write_bytes(scores.tobytes())
        run_harness(harness, "topk", tmp_path / "s.bin", k, tmp_path / "k.bin")
        got = np.fromfile(tmp_path / "k.bin", np.int32).tolist()
        assert got == reference_top_k(scores.tolist(), k), f"trial {trial}: n={n} k={k}"


# ---- tests/objc.py itself ------------------------------------------------------------------------


def test_syntax_check_reports_clangs_errors(tmp_path: Path):
    """A broken file fails with clang's diagnostics in the message; warnings count as errors;
    each language gets its own run (-std=c++17 only for Objective-C++)."""
    good_m, good_mm = tmp_path / "good.m", tmp_path / "good.mm"
    good_m.write_text("#import <Foundation/Foundation.h>\nNSString *f(void);\nNSString *f(void) { return @\"x\"; }\n")
    good_mm.write_text("#import <Foundation/Foundation.h>\n#include <vector>\nint g();\nint g() { return (int)std::vector<id>().size(); }\n")
    syntax_check([good_m, good_mm])
    bad = tmp_path / "bad.m"
    bad.write_text("#import <Foundation/Foundation.h>\nvoid h(void);\nvoid h(void) { int unused; }\n")
    with pytest.raises(AssertionError, match=r"unused variable 'unused'.*-Werror"):
        syntax_check([good_m, bad])
