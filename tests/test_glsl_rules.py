"""mobilegen.render.glsl_rules: the GLSL ES 3.10 / OpenGL ES 3.1 rules glslang does not enforce,
on hand-written shaders that break one rule each (and a correct one), and on the programs rendered
for a sweep of models (render_gpu runs the same check on every model any test generates)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mobilegen.render.glsl_rules import (
    R_BARRIER,
    R_HIGHP,
    R_LOCAL_SIZE,
    R_PRECISION,
    R_RESERVED,
    R_SHARED,
    R_SSBO,
    R_VERSION,
    ShaderRuleError,
    check_program,
    check_rendered,
    check_shader,
    strip_comments,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = ROOT / "examples" / "demo" / "model.tflite"

HEAD = """#version 310 es
precision highp float;
precision highp int;
layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(std430, binding = 0) writeonly buffer OutBuffer { int out_data[]; };
layout(std430, binding = 1) readonly buffer InpBuffer { int inp_data[]; };
shared int reduction[64];
"""
MAIN_LINE = HEAD.count("\n") + 3  # the line of main()'s first statement, when there is no `extra`


def shader(body: str, extra: str = "", head: str = HEAD) -> str:
    """A complete compute shader: `head`, then `extra` (helpers), then main() with `body`."""
    return f"{head}{extra}void main() {{\n  int t = int(gl_LocalInvocationID.x);\n{body}}}\n"


def rules(text: str) -> list[tuple[str, int]]:
    return [(v.rule, v.line) for v in check_shader("test", text)]


# The unrolled tree the softmax kernel uses: every barrier() directly in main().
GOOD_BODY = """  reduction[t] = inp_data[t];
  barrier();
  if (t < 32) reduction[t] += reduction[t + 32];
  barrier();
  if (t < 16) { reduction[t] += reduction[t + 16]; } barrier();
  if (t == 0) { out_data[0] = reduction[0]; }
"""


def test_correct_shader_passes():
    assert check_shader("good", shader(GOOD_BODY)) == []


@pytest.mark.parametrize("body,line", [
    # the old looped softmax form
    ("  for (int stride = 32; stride > 0; stride /= 2) {\n"
     "    if (t < stride) reduction[t] += reduction[t + stride];\n"
     "    barrier();\n"
     "  }\n", 3),
    ("  for (int i = 0; i < 2; ++i) barrier();\n", 1),  # a one-statement loop body
    ("  for (int i = 0; i < 2; ++i) { reduction[t] = i; barrier(); }\n", 1),  # braces on one line
    ("  if (t < 32) {\n    barrier();\n  }\n", 2),
    ("  if (t < 32) barrier();\n", 1),
    ("  if (t < 32) reduction[t] = 0; else barrier();\n", 1),
    ("  if (t < 32) { reduction[t] = 0; } else if (t < 48) { barrier(); }\n", 1),
    ("  while (t < 0) {\n    barrier();\n  }\n", 2),
    ("  do barrier(); while (t < 0);\n", 1),
    ("  do {\n    t += 1;\n    barrier();\n  } while (t < 0);\n", 3),
    ("  switch (t) {\n    case 0:\n      barrier();\n      break;\n    default:\n      break;\n  }\n", 3),
    ("  if (t < 32) {\n    if (t < 16) {\n      for (int i = 0; i < 1; ++i) {\n        barrier();\n      }\n    }\n  }\n", 4),
    ("  {\n    {\n      barrier();\n    }\n  }\n", 3),  # a bare nested block (project rule)
    ("  if (t > 100) return;\n  barrier();\n", 2),  # after a return in main
    ("  for (int i = 0; i < int(barrier_count()); ++i) { }\n", None),  # not a call of barrier
])
def test_barrier_placement(body, line):
    extra = "uint barrier_count() { return 1u; }\n" if "barrier_count" in body else ""
    got = rules(shader(body, extra))
    if line is None:
        assert got == []
    else:
        first = MAIN_LINE + extra.count("\n")
        assert (R_BARRIER, first + line - 1) in got, got


def test_barrier_in_a_helper_function():
    extra = "void sync() {\n  barrier();\n}\n"
    got = check_shader("helper", shader("  sync();\n", extra))
    assert [(v.rule, v.line) for v in got] == [(R_BARRIER, HEAD.count("\n") + 2)]
    assert "sync()" in got[0].message and "helper" in str(got[0])


def test_barrier_in_a_macro():
    got = rules(shader("  SYNC;\n", "#define SYNC barrier()\n"))
    assert (R_BARRIER, HEAD.count("\n") + 1) in got


def test_comments_and_return_in_helpers_do_not_count():
    extra = ("// barrier(); in a comment, and /* for (;;) { barrier(); } */\n"
             "int clamp_t(int v) { if (v > 63) return 63; return v; }\n"
             "/* for (int i = 0; i < 4; ++i) {\n   barrier();\n} */\n")
    body = GOOD_BODY + "  // for (;;) barrier();\n  reduction[clamp_t(t)] = 0; /* if (t) barrier(); */\n  barrier();\n"
    assert check_shader("comments", shader(body, extra)) == []
    text = "a /* x\n barrier() */ b // barrier()\nc /* unterminated barrier()"
    stripped = strip_comments(text)
    assert [len(x) for x in stripped.split("\n")] == [len(x) for x in text.split("\n")]
    assert stripped.split() == ["a", "b", "c"]


def test_version_rules():
    assert rules(shader(GOOD_BODY).replace("#version 310 es", "#version 300 es")) == [(R_VERSION, 1)]
    assert (R_VERSION, 1) in rules("// a comment first\n" + shader(GOOD_BODY))
    # The kernel string follows the library string: its own #version is not on the first line.
    library, kernel = HEAD, shader(GOOD_BODY, head="")
    assert check_program("k", library, kernel) == []
    got = check_program("k", library, "#version 310 es\n" + kernel)
    assert [(v.rule, v.part, v.line) for v in got] == [(R_VERSION, "kernel", 1)]


def test_line_numbers_name_the_source_string():
    library, kernel = HEAD, shader("  for (int i = 0; i < 2; ++i) barrier();\n", head="")
    [v] = check_program("softmax", library, kernel)
    assert (v.shader, v.part, v.line, v.rule) == ("softmax", "kernel", 3, R_BARRIER)
    assert str(v).startswith("softmax (kernel line 3): [barrier]")


def test_types_and_precision():
    assert rules(shader("  double d = 1.0;\n")) == [(R_RESERVED, MAIN_LINE)]
    assert [r for r, _ in rules(shader("  dvec2 d; int64_t e; half f;\n"))] == [R_RESERVED] * 3
    assert rules(shader("  mediump float m = 1.0;\n")) == [(R_HIGHP, MAIN_LINE)]
    image = "layout(rgba32f, binding = 0) uniform {} image2D img;\n"
    assert [r for r, _ in rules(shader(GOOD_BODY, image.format("")))] == [R_PRECISION]
    assert rules(shader(GOOD_BODY, image.format("highp"))) == []
    assert rules(shader(GOOD_BODY, "precision highp image2D;\n" + image.format(""))) == []
    assert rules(shader(GOOD_BODY, "uniform sampler2D tex;\n")) == []  # predeclared lowp
    assert [r for r, _ in rules(shader(GOOD_BODY, "uniform usampler2D tex;\n"))] == [R_PRECISION]
    assert rules(shader("  int image2D_index = 0; int sampler_count = image2D_index;\n")) == []


@pytest.mark.parametrize("local,ok", [
    ("local_size_x = 64, local_size_y = 1, local_size_z = 1", True),
    ("local_size_x = 8, local_size_y = 8, local_size_z = 2", True),   # 128 invocations
    ("local_size_x = 128", True),
    ("local_size_x = 256", False),
    ("local_size_x = 16, local_size_y = 16", False),  # 256 invocations
    ("local_size_x = 1, local_size_y = 1, local_size_z = 65", False),  # z over 64
    ("local_size_x = 1, local_size_y = 129", False),
])
def test_local_size(local, ok):
    text = shader(GOOD_BODY).replace("local_size_x = 64, local_size_y = 1, local_size_z = 1", local)
    got = [r for r, _ in rules(text)]
    assert got == ([] if ok else [R_LOCAL_SIZE] * len(got)) and bool(got) != ok, got


def test_local_size_declarations_agree():
    text = shader(GOOD_BODY).replace("shared int", "layout(local_size_x = 32) in;\nshared int")
    assert [r for r, _ in rules(text)] == [R_LOCAL_SIZE]
    text = shader(GOOD_BODY).replace("shared int", "layout(local_size_x = 64) in;\nshared int")
    assert rules(text) == []


def test_missing_local_size():
    text = "\n".join(line for line in shader(GOOD_BODY).split("\n") if "local_size" not in line)
    assert [r for r, _ in rules(text)] == [R_LOCAL_SIZE]


@pytest.mark.parametrize("decl,ok", [
    ("shared vec4 a[1008];", True),                           # with HEAD's 64 ints: exactly 16384 bytes
    ("shared vec4 a[1009];", False),
    ("shared vec3 a[1008];", True),                           # std430 stride 16
    ("shared vec3 a[1009];", False),
    ("const int N = 4033; shared float a[N];", False),        # + the 64 ints of HEAD
    ("const int N = 4032; shared highp float a[N];", True),
    ("shared int a[64][64];", False),
])
def test_shared_memory(decl, ok):
    got = rules(shader(GOOD_BODY, decl + "\n"))
    assert (got == []) == ok and all(r == R_SHARED for r, _ in got), got


def test_storage_blocks():
    def block(binding, name):
        return f"layout(std430, binding = {binding}) buffer {name} {{ int {name.lower()}[]; }};\n"

    assert rules(shader(GOOD_BODY, block(2, "A") + block(3, "B"))) == []
    assert [r for r, _ in rules(shader(GOOD_BODY, block(2, "A") + block(3, "B") + block(3, "C")))] == [R_SSBO] * 2
    assert [r for r, _ in rules(shader(GOOD_BODY, block(4, "A")))] == [R_SSBO]
    assert [r for r, _ in rules(shader(GOOD_BODY, "layout(std430) buffer A { int a[]; };\n"))] == [R_SSBO]


def test_check_rendered_raises_an_internal_error():
    bad = type("S", (), {"name": "softmax_2", "source": shader("  while (t < 0) barrier();\n", head="")})
    with pytest.raises(ShaderRuleError) as e:
        check_rendered(HEAD, [bad])
    from mobilegen.errors import MobilegenError

    assert not isinstance(e.value, MobilegenError), "a rule violation is our bug, not the user's"
    assert "softmax_2 (kernel line 3): [barrier]" in str(e.value)


# --------------------------------------------------------------------------------------------------
# Rendered programs
# --------------------------------------------------------------------------------------------------
def _engine_model(model: bytes, precision: str | None = None):
    from mobilegen.export import export_plan, plan_for_precision
    from mobilegen.tflite.reader import read_model

    plan, precision = plan_for_precision(read_model(model), precision)
    return export_plan(plan, precision)


def _assert_clean(em, label: str) -> int:
    from mobilegen.render.glsl import render_gpu

    library, shaders, _ = render_gpu(em)  # raises ShaderRuleError on a violation
    for s in shaders:
        assert check_program(s.name, library, s.source) == [], (label, s.name)
    return len(shaders)


@pytest.mark.parametrize("precision", ["int8", "fp32", "fp16"])
def test_demo_model_programs_pass(precision):
    assert _assert_clean(_engine_model(DEMO_MODEL.read_bytes(), precision), f"demo {precision}") > 10


@pytest.mark.parametrize("precision", ["int8", "fp32", "fp16"])
@pytest.mark.parametrize("channels", [1, 3, 4, 5, 11, 64, 255, 256, 1001])
def test_softmax_widths_pass(channels, precision):
    """The softmax kernel over rows of many widths (fewer slices than threads, more, not a
    multiple): rendered from the demo model's softmax with the width changed."""
    from mobilegen.render.glsl import _Renderer, render_library

    em = _engine_model(DEMO_MODEL.read_bytes(), precision)
    [k] = [k for k in em.kernels if k.type == "Softmax"]
    tensors = list(em.tensors)
    for tid in (k.inputs[0], k.output):
        tensors[tid] = dataclasses.replace(tensors[tid], c=channels, shape=(1, channels))
    name, source, groups, _local = _Renderer(dataclasses.replace(em, tensors=tensors)).render(k)
    assert f"const int INP_C = {channels};" in source
    assert source.count("barrier();") == 2 * 6 + 3  # two unrolled trees over 64 invocations, three more
    assert check_program(name, render_library(), source) == []


def test_old_looped_softmax_is_rejected(monkeypatch):
    """The seeded bug: the softmax template with its reduction trees as loops again makes
    render_gpu fail with ShaderRuleError naming the kernel, the line and the rule."""
    import jinja2

    from mobilegen.render import glsl

    template = (glsl.GLSL_TEMPLATES / "softmax.comp.j2").read_text()
    unrolled = "{% for stride in strides %}\n  if (t < {{ stride }}) reduction[t] += reduction[t + {{ stride }}];\n" \
               "  barrier();\n{% endfor %}\n"
    looped = "  for (int stride = THREADS / 2; stride > 0; stride /= 2) {\n" \
             "    if (t < stride) reduction[t] += reduction[t + stride];\n    barrier();\n  }\n"
    assert unrolled in template
    environment = glsl.environment

    def seeded():
        env = environment()
        env.loader = jinja2.ChoiceLoader([jinja2.DictLoader({"softmax.comp.j2": template.replace(unrolled, looped)}),
                                          env.loader])
        return env

    monkeypatch.setattr(glsl, "environment", seeded)
    with pytest.raises(ShaderRuleError) as e:
        glsl.render_gpu(_engine_model(DEMO_MODEL.read_bytes()))
    [v] = e.value.violations
    assert (v.shader, v.part, v.rule) == ("softmax", "kernel", R_BARRIER) and "control flow" in v.message


@pytest.mark.parametrize("name,kwargs,mode,precision", [
    ("dense_softmax", dict(in_features=37, units=11), "int8", None),
    ("dense_softmax", dict(in_features=37, units=11), "uint8", None),  # legacy uint8
    ("dense_softmax", dict(in_features=37, units=11), "float32", None),
    ("dense_softmax", dict(in_features=37, units=11), "int8", "fp16"),
    ("add_softmax_rows", dict(h=3, w=4, cin=3, c=7), "int8", None),
    ("conv2d", dict(h=7, w=9, cin=3, cout=13, k=3, stride=2, padding="same"), "uint8", None),
    ("concat", dict(h=5, w=6, c1=3, c2=5), "uint8", None),
    ("depthwise", dict(h=9, w=7, c=5, k=3, stride=1, padding="same", depth_multiplier=2), "int8", None),
])
def test_one_op_model_programs_pass(name, kwargs, mode, precision):
    from tests.test_engine_cpu import _one_op_model

    _assert_clean(_engine_model(_one_op_model(name, kwargs, mode), precision), f"{name} {mode} {precision}")
