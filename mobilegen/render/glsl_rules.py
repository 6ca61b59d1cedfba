"""Static checks of emitted GLSL ES 3.10 compute programs for the rules glslangValidator (and Mesa)
do not enforce but a strict mobile driver may: a program one of them rejects makes Backend::Auto
fall back to the CPU without a word, so every program mobilegen renders is checked here
(render_gpu calls check_program on each; a violation is an internal error, ShaderRuleError).

The checker reads the program as the engine hands it to glShaderSource: the shader library
(library.glsl.j2) followed by the kernel's source. It strips comments, expands object-like macros,
tokenizes, and walks the statement structure of every function body (braces, and the one-statement
bodies of if / else / for / while / do / switch). It is not a GLSL compiler: it relies on the
program also passing glslangValidator (tests/test_glsl.py), and it is conservative where it cannot
tell (a bare nested block, a barrier in a helper function, declared rather than active blocks).

Each rule names its source; R_* are the rule identifiers that appear in the messages.

Spec rules (GLSL ES 3.10 / OpenGL ES 3.1). Section numbers are those of the GLSL ES 3.20 text (the
3.10 text was not at hand to check them against); the ES 3.1 minimum limits of Tables 20.45 and
20.47 are as ANGLE's GenerateMinimumCaps (src/libANGLE/Caps.cpp) transcribes them:
  version        The first line is `#version 310 es`; no other #version (GLSL ES §3.3: the
                 directive "must be present in the first line of a shader", "only permitted in
                 the first line"; the library string is the first of the program's strings).
  barrier        barrier() not inside any control flow and not after a return statement in
                 main() (the Khronos OpenGL ES 3.1 reference page of barrier, GLSL ES 3.10: "barrier may
                 be placed anywhere in a compute shader, except within any control flow or after a
                 return statement in the function main()"). GLSL ES 3.20 §8.15 (Shader Invocation
                 Control Functions) relaxed this to uniform control flow for compute shaders; a
                 3.10 compiler may still reject it. The memory barriers (memoryBarrierShared() and
                 the others, §8.16 in 3.20) carry no placement rule and are not checked.
  reserved       No reserved keyword of GLSL ES §3.7 that names a 64-bit or other non-ES type
                 (double, dvecN, dmat*, long, short, half, fixed, unsigned, superp, hvecN, fvecN),
                 and no 64-bit extension type (int64_t, uint64_t, i64vecN, u64vecN, float64_t,
                 f64vecN): GLSL ES 3.10 has none (§4.1).
  precision      Opaque types without a predeclared default precision (every sampler / image
                 type but sampler2D and samplerCube) carry a precision qualifier or follow a
                 `precision` statement for the type (GLSL ES §4.7.4: compute has predeclared
                 highp float and int, lowp sampler2D / samplerCube, highp atomic_uint; "there is
                 no default precision qualifier in any of the languages for any type not listed").
  local_size     A compute program declares its local size (GLSL ES §4.4.1 Compute Shader
                 Inputs: otherwise a link-time error; an unspecified dimension is 1; repeated
                 declarations must agree), each dimension within (128, 128, 64) and the product
                 within 128 invocations (OpenGL ES 3.1 Table 20.45 minimums of
                 MAX_COMPUTE_WORK_GROUP_SIZE and MAX_COMPUTE_WORK_GROUP_INVOCATIONS).
  shared_memory  The shared variables fit in 16384 bytes (Table 20.45 minimum of
                 MAX_COMPUTE_SHARED_MEMORY_SIZE), counted with std430 array strides.
  ssbo           At most 4 buffer blocks per compute program (Table 20.45 minimum of
                 MAX_COMPUTE_SHADER_STORAGE_BLOCKS), bindings below 4 (Table 20.47 minimum of
                 MAX_SHADER_STORAGE_BUFFER_BINDINGS).

Project rules (conservative, documented in mobilegen/render/glsl.py and NUMERICS.md):
  barrier        barrier() directly in main()'s own statement list: not in a helper function
                 (the checker does not follow calls, and a helper called from a loop would put
                 the barrier in control flow), not in a bare nested { } block ("directly in
                 main()" read strictly), not in a macro.
  highp          No mediump / lowp anywhere: integer paths are highp only (NUMERICS.md).
  ssbo           Every buffer block has an explicit, distinct binding (the GLES backend's
                 binding contract: the engine binds slots by number).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import NamedTuple

# OpenGL ES 3.1 minimum maximums (Table 20.45 / 20.47), the limits a conforming driver may report.
MAX_WORK_GROUP_SIZE = (128, 128, 64)
MAX_WORK_GROUP_INVOCATIONS = 128
MAX_SHARED_MEMORY_BYTES = 16384
MAX_COMPUTE_STORAGE_BLOCKS = 4
MAX_STORAGE_BUFFER_BINDINGS = 4

R_VERSION = "version"
R_BARRIER = "barrier"
R_RESERVED = "reserved"
R_PRECISION = "precision"
R_HIGHP = "highp"
R_LOCAL_SIZE = "local_size"
R_SHARED = "shared_memory"
R_SSBO = "ssbo"

RESERVED_TYPES = frozenset(
    "double long short half fixed unsigned superp hvec2 hvec3 hvec4 fvec2 fvec3 fvec4 dvec2 dvec3 dvec4 "
    "dmat2 dmat3 dmat4 dmat2x2 dmat2x3 dmat2x4 dmat3x2 dmat3x3 dmat3x4 dmat4x2 dmat4x3 dmat4x4 "
    "int64_t uint64_t i64vec2 i64vec3 i64vec4 u64vec2 u64vec3 u64vec4 float64_t f64vec2 f64vec3 f64vec4".split()
)
PRECISIONS = frozenset(("highp", "mediump", "lowp"))
# Opaque types that have a predeclared default precision in every non-fragment language (§4.7.4).
DEFAULT_PRECISION_OPAQUE = frozenset(("sampler2D", "samplerCube", "atomic_uint"))
# The sampler and image types of GLSL ES §3.7 / §4.1 (3.20's list; 3.10 has a subset).
OPAQUE_TYPES = frozenset(
    [f"{p}sampler{s}" for p in ("", "i", "u") for s in ("2D", "2DArray", "2DMS", "2DMSArray", "3D", "Cube",
                                                         "CubeArray", "Buffer")]
    + ["sampler2DShadow", "sampler2DArrayShadow", "samplerCubeShadow", "samplerCubeArrayShadow"]
    + [f"{p}image{s}" for p in ("", "i", "u") for s in ("2D", "2DArray", "3D", "Cube", "CubeArray", "Buffer")]
)
CONTROL_KEYWORDS = frozenset(("if", "else", "for", "while", "do", "switch"))
# std430 sizes / array strides in bytes of the shared-variable element types mobilegen could use.
STD430_STRIDE = {
    "int": 4, "uint": 4, "float": 4, "bool": 4,
    "ivec2": 8, "uvec2": 8, "vec2": 8, "bvec2": 8,
    "ivec3": 16, "uvec3": 16, "vec3": 16, "bvec3": 16,
    "ivec4": 16, "uvec4": 16, "vec4": 16, "bvec4": 16,
    "mat2": 32, "mat3": 48, "mat4": 64,
}
MEMORY_QUALIFIERS = frozenset(("coherent", "volatile", "restrict", "readonly", "writeonly"))


class ShaderRuleError(RuntimeError):
    """A rendered shader breaks a GLSL ES 3.10 portability rule: a bug in mobilegen's templates,
    never the user's input (so not a MobilegenError: the CLI shows a traceback)."""

    def __init__(self, violations: list["Violation"]):
        self.violations = violations
        lines = "\n".join(f"  {v}" for v in violations)
        super().__init__(f"internal error: {len(violations)} GLSL ES 3.10 rule violation(s) in rendered shaders:\n{lines}")


@dataclass(frozen=True)
class Violation:
    shader: str  # kernel / program name
    part: str  # "library" or "kernel": which source string the line is in
    line: int  # 1-based, within that source string
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.shader} ({self.part} line {self.line}): [{self.rule}] {self.message}"


class _Tok(NamedTuple):
    text: str
    line: int  # 1-based line in the concatenated program


@dataclass
class _Facts:
    """What the structural walk collects."""

    consts: dict[str, int] = field(default_factory=dict)
    precision_types: set[str] = field(default_factory=set)


# --------------------------------------------------------------------------------------------------
# Lexing
# --------------------------------------------------------------------------------------------------
_COMMENT = re.compile(r"//[^\n]*|/\*.*?(?:\*/|\Z)", re.S)


def strip_comments(text: str) -> str:
    """`text` with every comment (// to the end of the line, /* ... */, unterminated to the end)
    replaced by spaces, newlines kept (so line numbers stay). GLSL has no strings or characters."""
    return _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


_TOKEN = re.compile(
    r"(?P<id>[A-Za-z_]\w*)|(?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[uUfF]?)"
    r"|(?P<op>[^\s\w])"
)


def _tokenize_line(text: str, line: int) -> list[_Tok]:
    return [_Tok(m.group(0), line) for m in _TOKEN.finditer(text)]


def _preprocess(text: str, first_line: int, macros: dict[str, tuple[_Tok, ...]]):
    """(tokens, macros after, [(line, rule, message)]) of one source string whose first line is
    program line `first_line`: comments stripped, directives read (object-like macros expanded;
    function-like ones are not, but may not contain barrier), the rest tokenized."""
    events = []
    toks: list[_Tok] = []
    for number, line in enumerate(strip_comments(text).split("\n"), start=first_line):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            directive = stripped[1:].strip()
            if directive.startswith("version"):
                if number != 1:
                    events.append((number, R_VERSION, "#version is only allowed in the first line of the program"))
                continue
            m = re.match(r"define\s+([A-Za-z_]\w*)(\()?(.*)$", directive)
            if m:
                body = tuple(_tokenize_line(m.group(3), number))
                if any(t.text == "barrier" for t in body):
                    events.append((number, R_BARRIER, f"barrier() inside the macro {m.group(1)} (project rule: "
                                                      "barrier() only directly in main())"))
                if m.group(2) is None:
                    macros[m.group(1)] = body
                continue
            m = re.match(r"undef\s+([A-Za-z_]\w*)", directive)
            if m:
                macros.pop(m.group(1), None)
            continue  # other directives (#extension, #pragma, #line, #if ...) carry no tokens we check
        for t in _tokenize_line(line, number):
            body = macros.get(t.text)
            if body is None:
                toks.append(t)
            else:
                toks.extend(_Tok(b.text, number) for b in body)
    return toks, macros, events


@functools.lru_cache(maxsize=8)
def _library_pass(library: str):
    """_preprocess of the shader library (the same string for every program of a model), cached."""
    toks, macros, events = _preprocess(library, 1, {})
    return tuple(toks), tuple(macros.items()), tuple(events)


# --------------------------------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------------------------------
class _Checker:
    def __init__(self, name: str, library: str, source: str):
        self.name = name
        self.program = library + source
        self.library_end = len(library)
        self.library_lines = library.count("\n")  # lines of the program that belong to the library string
        self.violations: list[Violation] = []
        self.facts = _Facts()

    def report(self, line: int, rule: str, message: str) -> None:
        if line <= self.library_lines:
            part, rel = "library", line
        else:
            part, rel = "kernel", line - self.library_lines
        self.violations.append(Violation(self.name, part, rel, rule, message))

    # -- preprocessing ----------------------------------------------------------------------------
    def preprocess(self) -> list[_Tok]:
        first = self.program.split("\n", 1)[0]
        if not re.fullmatch(r"[ \t]*#[ \t]*version[ \t]+310[ \t]+es[ \t]*", first):
            self.report(1, R_VERSION, f"the first line must be '#version 310 es', found {first.strip()!r}")
        if self.library_lines:
            lib_toks, lib_macros, lib_events = _library_pass(self.program[:self.library_end])
        else:
            lib_toks, lib_macros, lib_events = (), (), ()
        toks, _, events = _preprocess(self.program[self.library_end:], self.library_lines + 1, dict(lib_macros))
        for line, rule, message in (*lib_events, *events):
            self.report(line, rule, message)
        return [*lib_toks, *toks]

    # -- token rules ------------------------------------------------------------------------------
    def check_tokens(self, toks: list[_Tok]) -> None:
        for i, t in enumerate(toks):
            if t.text in RESERVED_TYPES:
                self.report(t.line, R_RESERVED, f"'{t.text}' is reserved or not a type in GLSL ES 3.10 (no 64-bit or "
                                                "half types; GLSL ES §3.7, §4.1)")
            elif t.text in ("mediump", "lowp"):
                self.report(t.line, R_HIGHP, f"'{t.text}' used (project rule: highp only, NUMERICS.md)")
            elif t.text == "precision" and i + 2 < len(toks):
                self.facts.precision_types.add(toks[i + 2].text)
        for i, t in enumerate(toks):
            if t.text in OPAQUE_TYPES and t.text not in DEFAULT_PRECISION_OPAQUE:
                prev = toks[i - 1].text if i else ""
                if prev == "precision" or (i >= 2 and toks[i - 2].text == "precision"):
                    continue
                if prev not in PRECISIONS and t.text not in self.facts.precision_types:
                    self.report(t.line, R_PRECISION, f"'{t.text}' has no default precision in GLSL ES 3.10: declare "
                                                     "it with a precision qualifier or a precision statement (§4.7.4)")

    # -- structure --------------------------------------------------------------------------------
    def walk(self, toks: list[_Tok]) -> None:
        """Top-level declarations and function definitions."""
        self.toks = toks
        i, n = 0, len(toks)
        decl_start = 0
        while i < n:
            t = toks[i].text
            if t == ";":
                self.declaration(toks[decl_start:i])
                i += 1
                decl_start = i
            elif t == "{":
                if i > 0 and toks[i - 1].text == ")":
                    name = self.function_name(i - 1)
                    self.in_main = name == "main"
                    self.function = name
                    self.returned_at = None
                    i = self.compound(i, control=False, nested=False)
                    self.in_main, self.function = False, ""
                    decl_start = i
                else:  # a block (interface block or struct): declaration continues to its ';'
                    j = self.match(i)
                    i = j + 1
            else:
                if t == "barrier" and i + 1 < n and toks[i + 1].text == "(":
                    self.report(toks[i].line, R_BARRIER, "barrier() outside any function")
                i += 1

    def match(self, i: int) -> int:
        """Index of the bracket closing the one at i."""
        pairs = {"{": "}", "(": ")", "[": "]"}
        open_, close = self.toks[i].text, pairs[self.toks[i].text]
        depth = 0
        for j in range(i, len(self.toks)):
            if self.toks[j].text == open_:
                depth += 1
            elif self.toks[j].text == close:
                depth -= 1
                if depth == 0:
                    return j
        return len(self.toks) - 1

    def function_name(self, close_paren: int) -> str:
        depth = 0
        for j in range(close_paren, -1, -1):
            tx = self.toks[j].text
            if tx == ")":
                depth += 1
            elif tx == "(":
                depth -= 1
                if depth == 0:
                    return self.toks[j - 1].text if j else ""
        return ""

    def compound(self, i: int, control: bool, nested: bool) -> int:
        """Statements of the { } block at i; returns the index after its '}'."""
        end = self.match(i)
        j = i + 1
        while j < end:
            j = self.statement(j, end, control, nested)
        return end + 1

    def statement(self, j: int, end: int, control: bool, nested: bool) -> int:
        """One statement starting at j (before `end`); returns the index after it."""
        toks = self.toks
        t = toks[j].text
        if t == "{":
            return self.compound(j, control, nested=True)
        if t in ("if", "for", "while", "switch"):
            k = j + 1
            if k < end and toks[k].text == "(":
                close = self.match(k)
                self.scan(k, close + 1, control=True, nested=True)
                k = close + 1
            if k >= end:
                return end
            k = self.statement(k, end, control=True, nested=True)
            if t == "if" and k < end and toks[k].text == "else":
                k = self.statement(k + 1, end, control=True, nested=True)
            return k
        if t == "do":
            k = self.statement(j + 1, end, control=True, nested=True)
            if k < end and toks[k].text == "while":  # while (cond);
                k += 1
                if k < end and toks[k].text == "(":
                    close = self.match(k)
                    self.scan(k, close + 1, control=True, nested=True)
                    k = close + 1
                if k < end and toks[k].text == ";":
                    k += 1
            return k
        if t == "else":  # stray else (malformed): treat its body as control flow
            return self.statement(j + 1, end, control=True, nested=True)
        if t in ("case", "default"):  # switch labels
            k = j
            while k < end and toks[k].text != ":":
                k += 1
            return k + 1
        # A simple statement (declaration, expression, jump) up to its ';'.
        k = j
        depth = 0
        while k < end:
            tx = toks[k].text
            if tx in "([":
                depth += 1
            elif tx in ")]":
                depth -= 1
            elif tx == ";" and depth <= 0:
                break
            elif tx == "{" and depth <= 0:  # should not happen in a simple statement; stay robust
                break
            k += 1
        self.scan(j, k, control, nested)
        if t == "return" and self.in_main and self.returned_at is None:
            self.returned_at = toks[j].line
        return k + 1 if k < end and toks[k].text == ";" else max(k, j + 1)

    def scan(self, a: int, b: int, control: bool, nested: bool) -> None:
        """Barrier calls among tokens a..b-1 in the context given."""
        toks = self.toks
        for k in range(a, b):
            if toks[k].text == "barrier" and k + 1 < len(toks) and toks[k + 1].text == "(":
                line = toks[k].line
                if not self.in_main:
                    self.report(line, R_BARRIER, f"barrier() in function {self.function}() (project rule: barrier() "
                                                 "only directly in main(); GLSL ES 3.10 forbids it in control flow)")
                elif control:
                    self.report(line, R_BARRIER, "barrier() inside control flow (if/else/for/while/do/switch) in "
                                                 "main(): not allowed in GLSL ES 3.10")
                elif nested:
                    self.report(line, R_BARRIER, "barrier() inside a nested block of main() (project rule: only in "
                                                 "main()'s own statement list)")
                if self.in_main and self.returned_at is not None:
                    self.report(line, R_BARRIER, f"barrier() after the return statement on line "
                                                 f"{self._rel(self.returned_at)} of main(): not allowed in GLSL ES 3.10")

    def _rel(self, line: int) -> str:
        return str(line) if line <= self.library_lines else f"{line - self.library_lines} (kernel)"

    # -- declarations -----------------------------------------------------------------------------
    def int_value(self, toks: list[_Tok]) -> int | None:
        """A plain integer literal or a known integer constant (what mobilegen's templates emit)."""
        if len(toks) == 1:
            tx = toks[0].text
            m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|\d+)[uU]?", tx)
            if m:
                return int(m.group(1), 0)
            return self.facts.consts.get(tx)
        return None

    def declaration(self, d: list[_Tok]) -> None:
        if not d:
            return
        texts = [t.text for t in d]
        # const int NAME = <integer>;
        if len(texts) >= 5 and texts[0] == "const" and texts[1] in ("int", "uint") and texts[3] == "=":
            v = self.int_value(d[4:])
            if v is not None:
                self.facts.consts[texts[2]] = v
        if texts[0] == "layout" and texts[-1] == "in" and any(x.startswith("local_size") for x in texts):
            self.local_sizes.append(d)
        if "buffer" in texts and "{" in texts and texts.index("buffer") < texts.index("{"):
            self.buffers.append(d)
        if texts[0] == "shared" or (texts[0] in PRECISIONS and len(texts) > 1 and texts[1] == "shared"):
            self.shared.append(d)

    def check_local_size(self) -> None:
        if not self.local_sizes:
            self.report(self.library_lines + 1, R_LOCAL_SIZE, "no layout(local_size_x/y/z ...) in; declared: a compute "
                                                              "program must declare its local size (GLSL ES §4.4.1)")
            return
        sizes = []
        for d in self.local_sizes:
            size = [1, 1, 1]
            texts = [t.text for t in d]
            for axis, key in enumerate(("local_size_x", "local_size_y", "local_size_z")):
                if key in texts:
                    k = texts.index(key)
                    v = self.int_value(d[k + 2:k + 3]) if k + 2 < len(d) and texts[k + 1] == "=" else None
                    if v is None:
                        self.report(d[k].line, R_LOCAL_SIZE, f"{key} is not an integer the checker can read")
                        continue
                    size[axis] = v
            if sizes and size != sizes[0]:
                self.report(d[0].line, R_LOCAL_SIZE, f"local size {size} differs from the earlier declaration {sizes[0]}")
            sizes.append(size)
        size = sizes[0]
        line = self.local_sizes[0][0].line
        for axis, (v, cap) in enumerate(zip(size, MAX_WORK_GROUP_SIZE)):
            if not 1 <= v <= cap:
                self.report(line, R_LOCAL_SIZE, f"local_size_{'xyz'[axis]} = {v} outside 1..{cap} (OpenGL ES 3.1 "
                                                "minimum of MAX_COMPUTE_WORK_GROUP_SIZE, Table 20.45)")
        total = size[0] * size[1] * size[2]
        if total > MAX_WORK_GROUP_INVOCATIONS:
            self.report(line, R_LOCAL_SIZE, f"{size[0]}x{size[1]}x{size[2]} = {total} invocations per workgroup, over "
                                            f"{MAX_WORK_GROUP_INVOCATIONS} (OpenGL ES 3.1 minimum of "
                                            "MAX_COMPUTE_WORK_GROUP_INVOCATIONS, Table 20.45)")
        self.local_size = tuple(size)

    def check_shared(self) -> None:
        total = 0
        for d in self.shared:
            texts = [t.text for t in d]
            k = 1 if texts[0] == "shared" else 2
            while k < len(texts) and (texts[k] in PRECISIONS or texts[k] in MEMORY_QUALIFIERS):
                k += 1
            if k >= len(texts):
                continue
            elem = texts[k]
            stride = STD430_STRIDE.get(elem)
            if stride is None:
                self.report(d[0].line, R_SHARED, f"shared variable of type {elem}: size unknown to the checker")
                continue
            count = 1
            j = k + 2
            while j < len(texts) and texts[j] == "[":
                close = j + 1
                while close < len(texts) and texts[close] != "]":
                    close += 1
                v = self.int_value(d[j + 1:close])
                if v is None:
                    self.report(d[j].line, R_SHARED, "shared array size is not an integer the checker can read")
                    v = 0
                count *= v
                j = close + 1
            total += stride * count
        if total > MAX_SHARED_MEMORY_BYTES:
            line = self.shared[0][0].line
            self.report(line, R_SHARED, f"{total} bytes of shared variables, over {MAX_SHARED_MEMORY_BYTES} (OpenGL ES "
                                        "3.1 minimum of MAX_COMPUTE_SHARED_MEMORY_SIZE, Table 20.45)")
        self.shared_bytes = total

    def check_buffers(self) -> None:
        bindings: dict[int, int] = {}
        for d in self.buffers:
            texts = [t.text for t in d]
            binding = None
            if texts[0] == "layout" and "binding" in texts:
                k = texts.index("binding")
                if k + 2 < len(d) and texts[k + 1] == "=":
                    binding = self.int_value(d[k + 2:k + 3])
            name = texts[texts.index("buffer") + 1]
            if binding is None:
                self.report(d[0].line, R_SSBO, f"buffer block {name} has no explicit binding (project rule: the GLES "
                                               "backend's binding contract)")
                continue
            if binding >= MAX_STORAGE_BUFFER_BINDINGS:
                self.report(d[0].line, R_SSBO, f"buffer block {name} at binding {binding}: OpenGL ES 3.1 guarantees "
                                               f"bindings 0..{MAX_STORAGE_BUFFER_BINDINGS - 1} only "
                                               "(MAX_SHADER_STORAGE_BUFFER_BINDINGS, Table 20.47)")
            if binding in bindings:
                self.report(d[0].line, R_SSBO, f"buffer block {name} reuses binding {binding} (project rule)")
            bindings[binding] = d[0].line
        if len(self.buffers) > MAX_COMPUTE_STORAGE_BLOCKS:
            self.report(self.buffers[-1][0].line, R_SSBO,
                        f"{len(self.buffers)} buffer blocks, over {MAX_COMPUTE_STORAGE_BLOCKS} (OpenGL ES 3.1 minimum "
                        "of MAX_COMPUTE_SHADER_STORAGE_BLOCKS, Table 20.45)")

    def run(self) -> list[Violation]:
        self.local_sizes: list[list[_Tok]] = []
        self.buffers: list[list[_Tok]] = []
        self.shared: list[list[_Tok]] = []
        self.in_main = False
        self.function = ""
        self.returned_at = None
        toks = self.preprocess()
        self.check_tokens(toks)
        self.walk(toks)
        self.check_local_size()
        self.check_shared()
        self.check_buffers()
        return self.violations


def check_program(name: str, library: str, source: str) -> list[Violation]:
    """Violations of the rules above in the program compiled from `library` followed by `source`
    (glShaderSource's two strings, concatenated as the compiler sees them)."""
    if library and not library.endswith("\n"):
        library += "\n"
    return _Checker(name, library, source).run()


def check_shader(name: str, text: str) -> list[Violation]:
    """Violations in one complete program text (its first line the #version)."""
    return _Checker(name, "", text).run()


def check_rendered(library: str, shaders) -> None:
    """Raise ShaderRuleError listing every violation in the programs `library` + shader.source of
    `shaders` (render_gpu's output)."""
    violations: list[Violation] = []
    for s in shaders:
        violations += check_program(s.name, library, s.source)
    if violations:
        raise ShaderRuleError(violations)
