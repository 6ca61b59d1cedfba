"""The Android project's hand-written half: Gradle files, the JNI bridge, the Java SDK, the
instrumentation test and the sample app, rendered from templates/android.

Templates ending in `.j2` are rendered (the suffix is dropped); other files are copied verbatim.
Directory and file names may hold placeholders such as `{{ package_path }}`. The engine sources,
the assets (weights blob, labels.json, tensors.json, sample image, golden tensors) and the
provenance file come from the caller (mobilegen.targets.android).
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from jinja2 import Environment

from mobilegen.render import template_environment
from mobilegen.render.escape import FILTERS, float32_literal, validate_package

ANDROID_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "android"

# Bytes per element of the input/output dtypes the SDK accepts.
DTYPE_BYTES = {"float32": 4, "int8": 1, "uint8": 1}


def environment() -> Environment:
    return template_environment(ANDROID_TEMPLATES, dict(FILTERS, java_float=float32_literal))


def template_context(ctx: dict) -> dict:
    """`ctx` (see android_files) plus the values the templates derive from it."""
    validate_package(ctx["package"])
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
        "input_bytes": inp["h"] * inp["w"] * inp["c"] * DTYPE_BYTES[inp["dtype"]],
        "output_bytes": out["classes"] * DTYPE_BYTES[out["dtype"]],
    }


def android_files(ctx: dict) -> dict[str, str]:
    """Relative output path -> text of every file under templates/android, rendered with `ctx`.

    ctx keys: package, package_path, app_name, labels, model_name, input (h, w, c, dtype, scale,
    zero_point, mean, std), output (classes, dtype, scale, zero_point), precision, tool_version,
    model_sha256, blob_asset, labels_asset (a JSON array of strings), float_tolerance (None:
    the instrumentation test demands identical bytes). Optional: application_id (default
    package + ".app"), tensors_asset (default: tensors.json next to the blob).
    """
    env = environment()
    values = template_context(ctx)
    files: dict[str, str] = {}
    for path in sorted(ANDROID_TEMPLATES.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(ANDROID_TEMPLATES).as_posix()
        out = env.from_string(rel).render(values) if "{{" in rel else rel
        if rel.endswith(".j2"):
            files[out[: -len(".j2")]] = env.get_template(rel).render(values)
        else:
            files[out] = path.read_text(encoding="utf-8")
    return files
