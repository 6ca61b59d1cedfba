"""Escaping filters: every model- or user-derived string (labels, model and app names, package ids)
passes through one of these before it lands in generated source, so hostile text (quotes,
backslashes, newlines, `*/`, `${}`, `%s`, control characters, any Unicode) compiles and reads back
exactly. Each filter names the one language it is for; none of them is safe in another.

Jinja filters: java_string, cpp_string, kotlin_string, xml_text, xml_attr,
android_string_resource, comment_text, json, objc_string, swift_string, pbxproj_string,
yaml_string. Property lists are written with `plist` (plistlib), never from a template.
"""

from __future__ import annotations

import json as _json
import re

import numpy as np

from mobilegen.errors import UserInputError

# ---------------------------------------------------------------------------------------------
# Java / Kotlin / C++ string literals
# ---------------------------------------------------------------------------------------------

_JAVA_NAMED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _utf16_units(ch: str) -> list[int]:
    cp = ord(ch)
    if cp <= 0xFFFF:
        return [cp]
    cp -= 0x10000
    return [0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)]


def java_string(s: str) -> str:
    """A Java string literal, quotes included, in printable ASCII.

    Everything outside printable ASCII becomes \\uXXXX (UTF-16 units; emoji as surrogate pairs).
    javac translates \\uXXXX escapes *before* lexing, so the characters that would end or break the
    literal (LF, CR, `"`, `\\`) always use their named escapes instead, never \\u000a, \\u000d,
    \\u0022 or \\u005c. A backslash in the text is doubled, so `\\u0041` in a label stays six
    characters: a backslash preceded by an odd number of backslashes starts no unicode escape.
    """
    out = ['"']
    for ch in s:
        if ch in _JAVA_NAMED:
            out.append(_JAVA_NAMED[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.extend(f"\\u{u:04x}" for u in _utf16_units(ch))
    out.append('"')
    return "".join(out)


_KOTLIN_NAMED = {**_JAVA_NAMED, "$": "\\$"}


def kotlin_string(s: str) -> str:
    """A Kotlin string literal (Gradle Kotlin DSL), quotes included: like java_string, plus `$`
    escaped so that `${...}` and `$name` are not templates."""
    out = ['"']
    for ch in s:
        if ch in _KOTLIN_NAMED:
            out.append(_KOTLIN_NAMED[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.extend(f"\\u{u:04x}" for u in _utf16_units(ch))
    out.append('"')
    return "".join(out)


_CPP_NAMED = {"\\": "\\\\", '"': '\\"', "?": "\\?", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def cpp_string(s: str) -> str:
    """A C++ narrow string literal, quotes included, holding the UTF-8 bytes of `s`.

    Bytes outside printable ASCII are 3-digit octal escapes: an octal escape ends after 3 digits,
    whereas \\x would swallow any hex digits that follow. `?` is escaped against trigraphs (`??/`).
    Lone surrogates (which UTF-8 cannot encode) are written as their surrogatepass bytes.
    """
    out = ['"']
    for b in s.encode("utf-8", "surrogatepass"):
        ch = chr(b)
        if ch in _CPP_NAMED:
            out.append(_CPP_NAMED[ch])
        elif 0x20 <= b <= 0x7E:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Comments (C++, Java, Kotlin, GLSL: `//` and `/* */`)
# ---------------------------------------------------------------------------------------------


def comment_text(s: str) -> str:
    """Text that is safe inside `//` and `/* */` comments of C-family languages, on one line.

    Printable ASCII is kept except the backslash; every other character (newlines, controls,
    non-ASCII, the backslash) is written as U+XXXX. The backslash must go: at the end of a `//`
    line it continues the comment onto the next line in C++, and `\\u000a` is a line break to
    javac even inside a comment. `*/` and `/*` are split with a space.
    """
    text = "".join(ch if " " <= ch <= "~" and ch != "\\" else f"U+{ord(ch):04X}" for ch in s)
    return text.replace("*/", "* /").replace("/*", "/ *")


# ---------------------------------------------------------------------------------------------
# XML and Android resources
# ---------------------------------------------------------------------------------------------

# Characters XML 1.0 cannot carry at all, not even as character references.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _check_xml_chars(s: str, what: str) -> None:
    m = _XML_ILLEGAL.search(s)
    if m:
        raise UserInputError(
            f"{s!r}: U+{ord(m.group()):04X} cannot be written in XML ({what}); remove it from the text"
        )


def xml_text(s: str) -> str:
    """XML character data: &, < and > escaped (`>` too, so `]]>` cannot appear)."""
    _check_xml_chars(s, "element text")
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xml_attr(s: str) -> str:
    """An XML attribute value for either quote style; tab, LF and CR as character references so
    that attribute-value normalization keeps them."""
    _check_xml_chars(s, "attribute value")
    return (
        xml_text(s).replace('"', "&quot;").replace("'", "&apos;")
        .replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")
    )


_ANDROID_NAMED = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def android_string_resource(s: str) -> str:
    """The body of a `<string>` in res/values/*.xml, so that aapt2 reads back exactly `s`.

    Two layers: aapt2's own escapes first (backslash, both quotes, newline, tab, a leading `@` or
    `?` that would make it a reference, spaces that it would trim or collapse, and every control
    or non-character as \\uXXXX, which XML could not carry), then XML escaping. `%` is left alone:
    the template marks the string `formatted="false"` so aapt2 does not take `%s` for a format.
    """
    out = []
    for i, ch in enumerate(s):
        if ch in _ANDROID_NAMED:
            out.append(_ANDROID_NAMED[ch])
        elif ch in "@?" and i == 0:
            out.append("\\" + ch)
        elif ch == " " and (i == 0 or i == len(s) - 1 or s[i - 1].isspace()):
            out.append("\\u0020")  # aapt2 trims leading/trailing and collapses repeated whitespace
        elif _XML_ILLEGAL.match(ch) or ch.isspace() and ch != " " or ord(ch) == 0x7F:
            out.extend(f"\\u{u:04x}" for u in _utf16_units(ch))
        else:
            out.append(ch)
    return xml_text("".join(out))


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def json(value, indent: int | None = None) -> str:  # noqa: A001 - the filter's name in templates
    """JSON text (UTF-8, keys in given order): any string round-trips through any JSON parser."""
    return _json.dumps(value, ensure_ascii=False, indent=indent)


# ---------------------------------------------------------------------------------------------
# Objective-C, Swift, Xcode project files, YAML, property lists
# ---------------------------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_scalars(s: str, what: str) -> None:
    """Objective-C, Swift and plist strings hold Unicode scalars: a lone surrogate (which only a
    broken decoder produces) has no spelling in any of them."""
    m = _SURROGATE.search(s)
    if m:
        raise UserInputError(f"{s!r}: U+{ord(m.group()):04X} is a lone surrogate and cannot be written in {what}")


_OBJC_NAMED = {"\\": "\\\\", '"': '\\"', "?": "\\?", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def objc_string(s: str) -> str:
    """An Objective-C NSString literal, `@"..."`, in printable ASCII, that reads back as `s`.

    Inside `@"..."` the C rules apply. ASCII controls and DEL are 3-digit octal escapes (an
    octal escape ends after 3 digits); everything from U+00A0 up is a universal character name
    (\\uXXXX or \\UXXXXXXXX), which clang stores as UTF-8 and the NSString literal decodes to that
    scalar. C forbids universal character names below U+00A0, so the C1 controls U+0080..U+009F
    are written as the octal escapes of their UTF-8 bytes, which decode the same way. `?` is
    escaped against trigraphs. `%` is left alone: a user string is never a format string in the
    generated code (it goes through `%@` or a plain assignment).
    """
    _check_scalars(s, "an Objective-C string literal")
    out = ['@"']
    for ch in s:
        cp = ord(ch)
        if ch in _OBJC_NAMED:
            out.append(_OBJC_NAMED[ch])
        elif 0x20 <= cp <= 0x7E:
            out.append(ch)
        elif cp < 0xA0:
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8"))
        elif cp <= 0xFFFF:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


_SWIFT_NAMED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def swift_string(s: str) -> str:
    """A Swift string literal, quotes included, in printable ASCII: `\\` and `"` escaped (so
    `\\(...)` is never an interpolation), everything outside printable ASCII as \\u{X}."""
    _check_scalars(s, "a Swift string literal")
    out = ['"']
    for ch in s:
        if ch in _SWIFT_NAMED:
            out.append(_SWIFT_NAMED[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    out.append('"')
    return "".join(out)


# Xcode writes these unquoted; anything else is quoted.
_PBX_BARE = re.compile(r"[A-Za-z0-9_./]+")
_PBX_NAMED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def pbxproj_string(s: str) -> str:
    """A string in an Xcode project file (an OpenStep property list): bare when it only holds
    letters, digits and `_./` (Xcode's own style), otherwise double-quoted in printable ASCII with
    `\\`, `"`, newline and tab escaped and every other character as \\Uxxxx (OpenStep's escape for a
    UTF-16 unit, which Xcode's and GNUstep's parsers both read)."""
    _check_scalars(s, "an Xcode project file")
    if _PBX_BARE.fullmatch(s):
        return s
    out = ['"']
    for ch in s:
        if ch in _PBX_NAMED:
            out.append(_PBX_NAMED[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.extend(f"\\U{u:04x}" for u in _utf16_units(ch))
    out.append('"')
    return "".join(out)


_YAML_NAMED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def yaml_string(s: str) -> str:
    """A YAML double-quoted scalar (XcodeGen's project.yml) in printable ASCII: `\\` and `"`
    escaped, everything else outside printable ASCII as \\uXXXX or \\UXXXXXXXX (YAML 1.1 and 1.2
    read both the same way; JSON's surrogate pairs would not be)."""
    _check_scalars(s, "YAML")
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if ch in _YAML_NAMED:
            out.append(_YAML_NAMED[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def plist(value) -> bytes:
    """An XML property list (Info.plist, PrivacyInfo.xcprivacy) written by plistlib, keys in the
    given order: every string is escaped by the XML writer, never by a template. Characters XML
    cannot carry are refused with a one-line UserInputError."""
    import plistlib

    def check(v):
        if isinstance(v, str):
            _check_xml_chars(v, "a property list")
            if "\r" in v:  # an XML parser reads a carriage return back as a line feed
                raise UserInputError(f"{v!r}: a carriage return cannot be kept in a property list; remove it from the text")
        elif isinstance(v, dict):
            for k, x in v.items():
                check(k)
                check(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                check(x)

    check(value)
    return plistlib.dumps(value, fmt=plistlib.FMT_XML, sort_keys=False)


FILTERS = {
    "java_string": java_string,
    "kotlin_string": kotlin_string,
    "cpp_string": cpp_string,
    "comment_text": comment_text,
    "xml_text": xml_text,
    "xml_attr": xml_attr,
    "android_string_resource": android_string_resource,
    "json": json,
    "objc_string": objc_string,
    "swift_string": swift_string,
    "pbxproj_string": pbxproj_string,
    "yaml_string": yaml_string,
}

# ---------------------------------------------------------------------------------------------
# Package ids
# ---------------------------------------------------------------------------------------------

# Reserved words and literals (JLS 3.9, 3.10.3, 3.10.7); none may be a package name segment.
JAVA_KEYWORDS = frozenset(
    """abstract assert boolean break byte case catch char class const continue default do double
    else enum extends final finally float for goto if implements import instanceof int interface
    long native new package private protected public return short static strictfp super switch
    synchronized this throw throws transient try void volatile while true false null""".split()
)
# Android's rule for applicationId, which is stricter than Java's: ASCII, each segment starts
# with a letter.
_SEGMENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def validate_package(pkg: str) -> str:
    """`pkg` if it is a valid Java package and Android application id, else a one-line
    UserInputError that names the rule it breaks."""
    segments = pkg.split(".")
    problem = None
    if not pkg:
        problem = "it is empty; expected segments separated by dots, like com.example.classifier"
    elif len(segments) < 2:
        problem = "it has one segment; an Android application id needs at least two, like com.example.classifier"
    else:
        for i, seg in enumerate(segments, 1):
            if not seg:
                problem = f"segment {i} is empty (a leading, trailing or doubled dot)"
            elif not seg[0].isascii() or not seg[0].isalpha():
                what = "a digit" if seg[0].isdigit() else repr(seg[0])
                problem = f"segment {seg!r} starts with {what}; each segment must start with an ASCII letter"
            elif not _SEGMENT.fullmatch(seg):
                bad = next(ch for ch in seg if not _SEGMENT.fullmatch("a" + ch))
                problem = (f"segment {seg!r} holds {bad!r}, which is not allowed "
                           "(ASCII letters, digits and _ only)")
            elif seg in JAVA_KEYWORDS:
                problem = f"segment {seg!r} is a Java keyword"
            if problem:
                break
    if problem:
        raise UserInputError(f"invalid package {pkg!r}: {problem}")
    return pkg


def package_path(pkg: str) -> str:
    """com.example.app -> com/example/app (validated)."""
    return validate_package(pkg).replace(".", "/")


def float32_literal(v: float) -> str:
    """A float32 literal for C++ and Java that reads back exactly: 9 significant digits
    round-trip any float32, and the suffix needs a '.' or exponent before it ("1f" is invalid)."""
    text = f"{float(np.float32(v)):.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"
