"""The rules every dataset command shares: labels that become folder names (labels.py), paths
that cannot leave the output (labels.inside) and what an acceptable image file is (imagefile.py).
The commands' own tests reach these through fetch and import; here each rule is hit directly."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from mobilegen.dataset.imagefile import ImageProblem, image_problem, inspect_image
from mobilegen.dataset.labels import LabelError, LabelSet, inside, safe_label
from mobilegen.errors import UserInputError

ACCEPTED = {
    "cat": "cat",
    "  Golden \t retriever\n": "Golden retriever",  # whitespace runs -> one space, trimmed
    "e\u0301clair": "\u00e9clair",  # NFC: one folder whatever the keyboard produced
    "a*b?c": "a_b_c",  # characters Windows refuses in names
    "v1.0": "v1.0",
    "size...": "size",  # Windows drops trailing dots: two labels would merge
    "CONsole": "CONsole",  # only the exact device names are reserved
    "x" * 100: "x" * 100,
}
REFUSED = {
    "../x": "path separator",
    "/abs": "path separator",
    "a\\b": "path separator",
    "..": "names a directory",
    ".": "names a directory",
    "": "empty",
    "   ": "empty",
    ".hidden": "hidden",
    "C:evil": "drive",
    "CON": "device",
    "nul.txt": "device",
    "bell\x07": "control",
    "x" * 101: "longer than",
    "...": "hidden",  # not "." or "..", but a hidden name all the same
}


@pytest.mark.parametrize("raw,want", ACCEPTED.items(), ids=range(len(ACCEPTED)))
def test_safe_label_accepts_and_sanitizes(raw, want):
    assert safe_label(raw) == want


@pytest.mark.parametrize("raw,why", REFUSED.items(), ids=range(len(REFUSED)))
def test_safe_label_refuses_paths_and_names_that_are_not_classes(raw, why):
    with pytest.raises(LabelError) as e:
        safe_label(raw)
    msg = str(e.value)
    assert "\n" not in msg and why in msg, msg
    assert isinstance(e.value, UserInputError)  # one line on the command line


def test_label_set_folds_case_to_the_first_spelling():
    labels = LabelSet(existing=["Dog"])
    assert labels.folder("dog") == "Dog"
    assert labels.folder("CAT") == "CAT"
    assert labels.folder("cat") == "CAT"
    assert list(labels) == ["CAT", "Dog"]


def test_inside_refuses_what_resolves_outside(tmp_path):
    out = tmp_path / "out"
    (out / "cls").mkdir(parents=True)
    assert inside(out, "cls", "a.png") == out.resolve() / "cls" / "a.png"
    for parts in (("..", "x"), ("/etc", "passwd"), ("cls", "..", "..", "x")):
        with pytest.raises(UserInputError):
            inside(out, *parts)
    os.symlink(tmp_path, out / "link")  # a class folder that is a link out of the output
    with pytest.raises(UserInputError):
        inside(out, "link", "a.png")


def _png(size=(16, 12)) -> bytes:
    """Noise, so that cutting the file cuts pixel data (a flat image's data is a few bytes)."""
    buf = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buf, "PNG")
    return buf.getvalue()


def test_inspect_image_accepts_a_complete_image(tmp_path):
    p = tmp_path / "a.jpg"  # the suffix does not matter, the content does
    p.write_bytes(_png())
    facts = inspect_image(p)
    assert (facts.format, facts.width, facts.height, facts.suffix) == ("PNG", 16, 12, ".png")


@pytest.mark.parametrize("case", ["empty", "truncated", "html", "svg", "json", "format", "bytes", "pixels", "tiny"])
def test_inspect_image_reasons(tmp_path, case):
    p = tmp_path / "x.png"
    png = _png()
    body, limits, want = {
        "empty": (b"", {}, "empty"),
        "truncated": (png[: len(png) // 2], {}, ""),
        "html": (b"  <!DOCTYPE html><html>404</html>", {}, "HTML"),
        "svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", {}, "SVG"),
        "json": (b'{"error": "not found"}', {}, "JSON"),
        "format": (png, {"formats": ("JPEG",)}, "PNG image; allowed: JPEG"),
        "bytes": (png, {"max_bytes": len(png) - 1}, "over the limit"),
        "pixels": (png, {"max_pixels": 16 * 12 - 1}, "16x12 pixels, over the limit"),
        "tiny": (png, {"min_side": 13}, "smaller than 13"),
    }[case]
    p.write_bytes(body)
    reason = image_problem(p, **limits)
    assert reason is not None and want in reason and "\n" not in reason, reason
    with pytest.raises(ImageProblem):
        inspect_image(p, **limits)
    # exactly at each limit is accepted
    if case in ("bytes", "pixels", "tiny"):
        at = {"bytes": {"max_bytes": len(png)}, "pixels": {"max_pixels": 16 * 12}, "tiny": {"min_side": 12}}[case]
        assert image_problem(p, **at) is None
