"""`mobilegen dataset import`: Labelme JSON and labelImg Pascal VOC XML written here as the tools
write them, over tiny noise images, so every crop can be checked pixel for pixel against the
array it was cut from (VOC's 1-based inclusive corners, Labelme's continuous coordinates, margins
clamped at the border, clipping, EXIF orientation per tool); plus malformed files, hostile XML,
refused labels, name collisions, re-runs, the report, the CLI's exit codes and that train's
scan_folder reads the result."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.data.folder import scan_folder
from mobilegen.dataset.annotations import REPORT_FILE, WORK_DIR, import_annotations
from mobilegen.errors import UserInputError

W, H = 40, 30  # the test image: 40 wide, 30 high


def noise(seed: int, w: int = W, h: int = H) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(path: Path, a: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, **kw)
    return path


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def shape(label, points, kind="rectangle"):
    return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": kind, "flags": {}}


def labelme(path: Path, shapes, image="img.png", w=W, h=H, flags=None, data=None) -> Path:
    """A Labelme 5 file, as Labelme saves it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": "5.4.1", "flags": flags or {}, "shapes": shapes, "imagePath": image,
           "imageData": data, "imageHeight": h, "imageWidth": w}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def voc(path: Path, objects, filename="img.png", w=W, h=H, img_path=None, depth=3) -> Path:
    """A labelImg file. objects: (name, xmin, ymin, xmax, ymax[, difficult[, truncated]])."""
    path.parent.mkdir(parents=True, exist_ok=True)
    objs = ""
    for o in objects:
        name, x0, y0, x1, y1, *rest = o
        difficult, truncated = (list(rest) + [0, 0])[:2]
        objs += f"""
\t<object>
\t\t<name>{name}</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>{truncated}</truncated>
\t\t<difficult>{difficult}</difficult>
\t\t<bndbox>
\t\t\t<xmin>{x0}</xmin>
\t\t\t<ymin>{y0}</ymin>
\t\t\t<xmax>{x1}</xmax>
\t\t\t<ymax>{y1}</ymax>
\t\t</bndbox>
\t</object>"""
    p = img_path if img_path is not None else str(path.parent / filename)
    path.write_text(f"""<annotation>
\t<folder>{path.parent.name}</folder>
\t<filename>{filename}</filename>
\t<path>{p}</path>
\t<source>
\t\t<database>Unknown</database>
\t</source>
\t<size>
\t\t<width>{w}</width>
\t\t<height>{h}</height>
\t\t<depth>{depth}</depth>
\t</size>
\t<segmented>0</segmented>{objs}
</annotation>
""", encoding="utf-8")
    return path


def crops(report, annotation=None) -> dict[str, Path]:
    """item -> crop path (for one annotation file when given)."""
    return {c.item: report.out / c.path for c in report.written if annotation in (None, c.annotation)}


def skips(report) -> dict[tuple[str, str | None], str]:
    return {(s.annotation, s.item): s.reason for s in report.skipped}


# ---------------------------------------------------------------------------------------------
# Labelme


def test_labelme_shapes_flags_and_pixels(tmp_path):
    a = noise(1)
    save(tmp_path / "src" / "img.png", a)
    labelme(tmp_path / "src" / "img.json", [
        shape("cat", [[30, 20], [2, 3]]),  # corners dragged bottom-right to top-left
        shape("dog", [[5.5, 4.2], [20.3, 9.9], [12.1, 24.6]], "polygon"),
        shape("ball", [[20, 15], [24, 18]], "circle"),  # radius 5
        shape("Cat", [[0, 0], [4, 4]]),  # case-folded into the first spelling's folder
        shape("nose", [[3, 3]], "point"),
        shape("edge", [[1, 1], [9, 9]], "line"),
        shape("trail", [[1, 1], [9, 9], [3, 2]], "linestrip"),
        {"label": "old", "points": [[1, 2], [6, 2], [6, 8]]},  # no shape_type: a polygon, as in Labelme
    ], flags={"indoor": True, "night": False})
    r = import_annotations(tmp_path / "src", "labelme", tmp_path / "out")
    got = crops(r)
    assert np.array_equal(pixels(got["s0"]), a[3:20, 2:30])
    assert np.array_equal(pixels(got["s1"]), a[4:25, 5:21])  # floor(min) .. ceil(max)
    assert np.array_equal(pixels(got["s2"]), a[10:20, 15:25])
    assert np.array_equal(pixels(got["s3"]), a[0:4, 0:4])
    assert np.array_equal(pixels(got["s7"]), a[2:8, 1:6])
    assert np.array_equal(pixels(got["image"]), a)
    folders = {c.item: c.folder for c in r.written}
    assert folders == {"image": "indoor", "s0": "cat", "s1": "dog", "s2": "ball", "s3": "cat", "s7": "old"}
    assert not (tmp_path / "out" / "night").exists() and not (tmp_path / "out" / "Cat").exists()
    why = skips(r)
    assert why[("img.json", "s4")] == "a point has no area"
    assert {why[("img.json", "s5")], why[("img.json", "s6")]} == {"a line has no area", "a linestrip has no area"}
    assert r.ok and not r.problems  # points and lines are skipped by design, not problems
    assert all(p.suffix == ".png" and p.parent.parent == tmp_path / "out" for p in got.values())


def test_labelme_image_data_fallback_and_missing_image(tmp_path):
    a = noise(2)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    src = tmp_path / "src"
    labelme(src / "embedded.json", [shape("cat", [[1, 2], [11, 12]])], image="moved/away.png", data=data)
    bom = labelme(src / "bom.json", [shape("chat", [[1, 2], [11, 12]])], image="moved/away.png", data=data)
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())  # as Windows editors save it
    labelme(src / "nothing.json", [shape("cat", [[1, 2], [11, 12]])], image="gone.png")
    labelme(src / "noimage.json", [shape("cat", [[1, 2], [11, 12]])], image=None)
    labelme(src / "badb64.json", [shape("cat", [[1, 2], [11, 12]])], image="gone.png", data="!!!not base64 or image")
    r = import_annotations(src, "labelme", tmp_path / "out")
    assert np.array_equal(pixels(crops(r, "embedded.json")["s0"]), a[2:12, 1:11])
    assert np.array_equal(pixels(crops(r, "bom.json")["s0"]), a[2:12, 1:11])
    assert ("embedded.json", "image moved/away.png not found; used the embedded imageData") in r.notes
    why = skips(r)
    assert "image 'gone.png' not found" in why[("nothing.json", None)] and "no imageData" in why[("nothing.json", None)]
    assert "imageData" in why[("badb64.json", None)]
    assert why[("noimage.json", None)] == "no imagePath and no imageData: nothing to crop from"
    assert not r.ok and len(r.problems) == 3


def test_exif_orientation_labelme_upright_voc_raw(tmp_path):
    """The stored pixels are 24x16 with EXIF orientation 6 (shown rotated 90 degrees clockwise,
    16x24): Labelme's coordinates are on the upright picture, labelImg's on the stored one."""
    raw = noise(3, 24, 16)
    upright = np.rot90(raw, -1)  # what a viewer applying orientation 6 shows
    ex = Image.Exif()
    ex[0x0112] = 6
    src = tmp_path / "src"
    save(src / "img.png", raw, exif=ex)
    labelme(src / "lm.json", [shape("a", [[2, 3], [10, 20]])], w=16, h=24)
    labelme(src / "old.json", [shape("a", [[2, 3], [10, 14]])], w=24, h=16)  # annotated unrotated
    labelme(src / "wrong.json", [shape("a", [[2, 3], [10, 14]])], w=50, h=50)
    r = import_annotations(src, "labelme", tmp_path / "lm")
    assert np.array_equal(pixels(crops(r, "lm.json")["s0"]), upright[3:20, 2:10])
    assert np.array_equal(pixels(crops(r, "old.json")["s0"]), raw[3:14, 2:10])
    assert any(a == "old.json" and "without its EXIF orientation" in n for a, n in r.notes)
    assert "is 16x24 but the annotation says 50x50" in skips(r)[("wrong.json", None)]

    voc(src / "v.xml", [("a", 3, 4, 10, 14)], w=24, h=16)
    r = import_annotations(src / "v.xml", "voc", tmp_path / "voc")
    assert np.array_equal(pixels(crops(r)["o0"]), raw[3:14, 2:10])


def test_labelme_malformed_files_and_shapes(tmp_path):
    src = tmp_path / "src"
    save(src / "img.png", noise(4))
    (src / "trunc.json").write_text('{"shapes": [')
    (src / "list.json").write_text("[1, 2]")
    (src / "latin1.json").write_bytes(b'{"label": "caf\xe9"}')
    (src / "deep.json").write_text("[" * 100000 + "]" * 100000)
    (src / "noshapes.json").write_text(json.dumps({"imagePath": "img.png"}))
    labelme(src / "flags.json", [], flags=["cat"])
    labelme(src / "width.json", [], w="40")
    labelme(src / "path.json", [], image=7)
    labelme(src / "shapes.json", [
        "rect",
        shape(3, [[0, 0], [4, 4]]),
        shape("a", "0,0,4,4"),
        shape("a", [[0, 0], [4]]),
        shape("a", [[0, 0], ["4", 4]]),
        shape("a", [[0, 0], [True, 4]]),
        shape("a", [[0, 0], [float("nan"), 4]]),
        shape("a", [[0, 0]]),
        shape("a", [[0, 0], [4, 4]], "polygon"),
        shape("a", [[0, 0], [4, 4]], "ellipse"),
        shape("a", [[0, 0], [4, 4]], 5),
        {"points": [[0, 0], [4, 4]], "shape_type": "rectangle"},
        shape("ok", [[0, 0], [4, 4]]),
    ], flags={"good": "yes"})
    r = import_annotations(src, "labelme", tmp_path / "out")
    why = skips(r)
    expect = {
        ("trunc.json", None): "not valid JSON",
        ("list.json", None): "expected a JSON object, got list",
        ("latin1.json", None): "not UTF-8",
        ("deep.json", None): "not valid JSON",
        ("noshapes.json", None): "no 'shapes' list",
        ("flags.json", None): "'flags': expected an object",
        ("width.json", None): "'imageWidth': expected a whole number",
        ("path.json", None): "'imagePath': expected text",
        ("shapes.json", "image"): "flag 'good': expected true or false",
        ("shapes.json", "s0"): "expected a shape object, got str",
        ("shapes.json", "s1"): "'label': expected text, got 3",
        ("shapes.json", "s2"): "'points': expected a list",
        ("shapes.json", "s3"): "point 1: expected [x, y]",
        ("shapes.json", "s4"): "point 1 x: expected a number, got str",
        ("shapes.json", "s5"): "point 1 x: expected a number, got bool",
        ("shapes.json", "s6"): "not a finite number",
        ("shapes.json", "s7"): "a rectangle needs at least 2 points, got 1",
        ("shapes.json", "s8"): "a polygon needs at least 3 points, got 2",
        ("shapes.json", "s9"): "unknown shape_type 'ellipse'",
        ("shapes.json", "s10"): "'shape_type': expected text",
        ("shapes.json", "s11"): "no 'label'",
    }
    for key, text in expect.items():
        assert text in why[key], (key, why.get(key))
    assert set(why) == set(expect)
    assert [c.item for c in r.written] == ["s12"]
    assert all(s.problem for s in r.skipped) and r.files == 9


# ---------------------------------------------------------------------------------------------
# Pascal VOC


def test_voc_one_based_inclusive_boxes_difficult_truncated(tmp_path):
    a = noise(5)
    src = tmp_path / "src"
    save(src / "img.png", a)
    voc(src / "img.xml", [
        ("cat", 1, 1, 10, 8),  # the top-left 10x8 pixels
        ("dog", 40, 30, 40, 30),  # the single bottom-right pixel
        ("cat", 3, 5, 7.6, 9.2),  # decimals, as some converters write: rounded
        ("bird", 5, 5, 20, 20, 1),  # difficult
        ("fish", 30, 2, 40, 12, 0, 1),  # truncated
        ("\n\t\tcafé  noir\n", 1, 1, 2, 2),  # labelImg writes UTF-8; whitespace is collapsed
    ])
    r = import_annotations(src, "voc", tmp_path / "out")
    got = crops(r)
    assert np.array_equal(pixels(got["o0"]), a[0:8, 0:10])
    assert np.array_equal(pixels(got["o1"]), a[29:30, 39:40])
    assert np.array_equal(pixels(got["o2"]), a[4:9, 2:8])
    assert np.array_equal(pixels(got["o4"]), a[1:12, 29:40])
    assert "o3" not in got and "difficult" in skips(r)[("img.xml", "o3")]
    assert r.ok  # difficult objects are skipped by design
    assert {c.item: c.note for c in r.written}["o4"] == "truncated"
    assert [c.box for c in r.written if c.item == "o0"] == [(0, 0, 10, 8)]
    assert {c.item: c.folder for c in r.written}["o5"] == "café noir"

    r = import_annotations(src, "voc", tmp_path / "out2", keep_difficult=True)
    assert np.array_equal(pixels(crops(r)["o3"]), a[4:20, 4:20])


def test_margin_clamped_and_clipping(tmp_path):
    a = noise(6)
    src = tmp_path / "src"
    save(src / "img.png", a)
    voc(src / "img.xml", [
        ("m", 11, 11, 20, 20),  # 10x10 at (10, 10): margin 0.25 -> 3 px (rounded) each side
        ("m", 2, 3, 11, 12),  # 10x10 at (1, 2): the margin is clamped at the top-left border
        ("m", 36, 25, 40, 30),  # 5x6 at the bottom-right corner: clamped there
        ("c", -4, 20, 8, 35),  # partly outside: clipped
        ("x", 50, 5, 60, 10),  # fully outside
        ("x", 10, 10, 5, 20),  # inverted
        ("x", 0, 0, 0, 0),  # outside (VOC is 1-based: pixel 0 is before the image)
    ])
    r = import_annotations(src, "voc", tmp_path / "out", margin=0.25)
    got = crops(r)
    assert np.array_equal(pixels(got["o0"]), a[7:23, 7:23])
    assert np.array_equal(pixels(got["o1"]), a[0:15, 0:14])  # [1, 11) x [2, 12) grown by 3: clamped at 0
    assert np.array_equal(pixels(got["o2"]), a[22:30, 34:40])  # 5x6: margins round(1.25) = 1, round(1.5) = 2
    # [-5, 8) x [19, 35) clipped to [0, 8) x [19, 30), then the annotated box's margins (3, 4), clamped
    assert np.array_equal(pixels(got["o3"]), a[15:30, 0:11])
    clipped = {c.item for c in r.written if c.clipped}
    assert clipped == {"o3"}  # the margin being clamped is not clipping
    why = skips(r)
    assert "outside the 40x30 image" in why[("img.xml", "o4")]
    assert "inverted box" in why[("img.xml", "o5")]
    assert "outside" in why[("img.xml", "o6")]
    assert not r.ok and "clipped to the image: 1" in r.summary()

    # Labelme: a zero-area rectangle is empty, a box off the image is outside, min_side applies.
    labelme(src / "lm.json", [shape("e", [[5, 5], [5, 9]]), shape("o", [[-9, -9], [-1, -1]]),
                              shape("t", [[0, 0], [3, 9]]), shape("k", [[0, 0], [4, 4]])])
    r = import_annotations(src / "lm.json", "labelme", tmp_path / "lm", min_side=4)
    why = skips(r)
    assert "empty box" in why[("lm.json", "s0")] and "outside" in why[("lm.json", "s1")]
    assert "smaller than 4 px" in why[("lm.json", "s2")] and list(crops(r)) == ["s3"]


def test_voc_malformed_files(tmp_path):
    src = tmp_path / "src"
    save(src / "img.png", noise(7))
    (src / "notxml.xml").write_text("this is not xml")
    (src / "unclosed.xml").write_text("<annotation><filename>img.png</filename>")
    (src / "other.xml").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    voc(src / "noimage.xml", [("a", 1, 1, 5, 5)], filename="missing.png", img_path="/nowhere/missing.png")
    voc(src / "size.xml", [("a", 1, 1, 5, 5)], w="wide")
    voc(src / "objects.xml", [("a", "left", 1, 5, 5), ("", 1, 1, 5, 5), ("ok", 1, 1, 5, 5)])
    bad = voc(src / "nobox.xml", [("a", 1, 1, 5, 5)])
    bad.write_text(bad.read_text().replace("<bndbox>", "<box>").replace("</bndbox>", "</box>"))
    diff = voc(src / "difficult.xml", [("a", 1, 1, 5, 5, "maybe")])
    corrupt = src / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    voc(src / "corrupt.xml", [("a", 1, 1, 5, 5)], filename="corrupt.png")
    r = import_annotations(src, "voc", tmp_path / "out")
    why = skips(r)
    expect = {
        ("notxml.xml", None): "not well-formed XML",
        ("unclosed.xml", None): "not well-formed XML",
        ("other.xml", None): "root element is <{http://www.w3.org/2000/svg}svg>",
        ("noimage.xml", None): "image 'missing.png' not found",
        ("size.xml", None): "<width> 'wide': expected a number",
        ("objects.xml", "o0"): "<xmin> 'left': expected a number",
        ("objects.xml", "o1"): "no <name>",
        ("nobox.xml", "o0"): "no <bndbox>",
        ("difficult.xml", "o0"): "<difficult> 'maybe': expected 0 or 1",
        ("corrupt.xml", None): "image corrupt.png:",
    }
    for key, text in expect.items():
        assert text in why[key], (key, why.get(key))
    assert set(why) == set(expect) and [c.item for c in r.written] == ["o2"]
    assert diff.exists() and r.files == 9


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE annotation [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<annotation><filename>img.png</filename>
<object><name>&lol9;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>
</annotation>
"""


def test_hostile_xml_refused_without_expansion(tmp_path):
    src = tmp_path / "src"
    save(src / "img.png", noise(8))
    secret = tmp_path / "secret.txt"
    secret.write_text("leaked")
    (src / "laughs.xml").write_text(BILLION_LAUGHS)
    # A small internal entity: cheap to expand, so only refusing entities keeps it out.
    (src / "small.xml").write_text(BILLION_LAUGHS.replace("&lol9;", "&lol1;"))
    (src / "external.xml").write_text(f"""<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY xxe SYSTEM "file://{secret}">]>
<annotation><filename>img.png</filename>
<object><name>&xxe;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>
</annotation>
""")
    r = import_annotations(src, "voc", tmp_path / "out")
    why = skips(r)
    for name in ("laughs.xml", "small.xml", "external.xml"):
        assert why[(name, None)].startswith("refused: declares the XML entity"), why
    assert not r.written and sorted(p.name for p in (tmp_path / "out").iterdir()) == [REPORT_FILE]
    assert "leaked" not in (tmp_path / "out" / REPORT_FILE).read_text()


def test_refused_labels_write_nothing_outside(tmp_path):
    src = tmp_path / "src"
    save(src / "img.png", noise(9))
    bad = ["../x", "/abs", "a/b", "..", ".hidden", "C:evil", "NUL", "a\\b"]
    labelme(src / "img.json", [shape(b, [[0, 0], [4, 4]]) for b in bad] + [shape("ok?", [[0, 0], [4, 4]])],
            flags={"../flag": True})
    voc(src / "img.xml", [(b, 1, 1, 5, 5) for b in ("../x", "/abs")])
    out = tmp_path / "out"
    r = import_annotations(src, "labelme", out)
    assert [(c.item, c.folder) for c in r.written] == [(f"s{len(bad)}", "ok_")]
    assert len(r.problems) == len(bad) + 1 and all("label" in s.reason for s in r.problems)
    r = import_annotations(src, "voc", out)
    assert not r.written and len(r.problems) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]
    assert sorted(p.name for p in out.iterdir()) == [REPORT_FILE, "ok_"]


def test_image_resolution_voc_layout_images_dir_and_path(tmp_path):
    a, b, c = noise(10), noise(11), noise(12)
    dev = tmp_path / "VOC2012"
    save(dev / "JPEGImages" / "2007_000001.png", a)
    voc(dev / "Annotations" / "2007_000001.xml", [("a", 1, 1, 8, 8)], filename="2007_000001.png",
        img_path="C:\\Users\\someone\\VOC\\2007_000001.png")  # labelImg on another machine
    save(tmp_path / "pics" / "b.png", b)
    voc(tmp_path / "ann" / "b.xml", [("b", 1, 1, 8, 8)], filename="b.png", img_path="/nowhere/b.png")
    save(tmp_path / "abs" / "c.png", c)
    voc(tmp_path / "ann" / "c.xml", [("c", 1, 1, 8, 8)], filename="renamed.png", img_path=str(tmp_path / "abs" / "c.png"))
    save(tmp_path / "ann" / "d.png", c)
    voc(tmp_path / "ann" / "d.xml", [("d", 1, 1, 8, 8)], filename="d", img_path="")  # no suffix
    r = import_annotations(dev, "voc", tmp_path / "o1")
    assert np.array_equal(pixels(crops(r)["o0"]), a[0:8, 0:8])
    r = import_annotations(tmp_path / "ann", "voc", tmp_path / "o2", images=tmp_path / "pics")
    got = {c.annotation: tmp_path / "o2" / c.path for c in r.written}
    assert np.array_equal(pixels(got["b.xml"]), b[0:8, 0:8])
    assert np.array_equal(pixels(got["c.xml"]), c[0:8, 0:8])
    assert np.array_equal(pixels(got["d.xml"]), c[0:8, 0:8])
    # Labelme: --images is searched by file name before the path relative to the JSON.
    labelme(tmp_path / "lm" / "x.json", [shape("b", [[0, 0], [8, 8]])], image="..\\photos\\b.png")
    r = import_annotations(tmp_path / "lm", "labelme", tmp_path / "o3", images=tmp_path / "pics")
    assert np.array_equal(pixels(crops(r)["s0"]), b[0:8, 0:8])


def test_same_stem_in_two_folders_and_rerun_identical(tmp_path):
    src = tmp_path / "src"
    a, b = noise(13), noise(14)
    save(src / "day" / "img.png", a)
    save(src / "night" / "img.png", b)
    labelme(src / "day" / "img.json", [shape("cat", [[0, 0], [9, 9]])], flags={"scene": True})
    labelme(src / "night" / "img.json", [shape("cat", [[0, 0], [9, 9]])], flags={"scene": True})
    out = tmp_path / "out"
    r1 = import_annotations(src, "labelme", out)
    paths = sorted(c.path for c in r1.written)
    assert len(set(paths)) == 4 and all(c.status == "written" for c in r1.written)
    got = {(c.annotation, c.item): out / c.path for c in r1.written}
    assert np.array_equal(pixels(got[("day/img.json", "s0")]), a[0:9, 0:9])
    assert np.array_equal(pixels(got[("night/img.json", "s0")]), b[0:9, 0:9])
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*.png")}
    r2 = import_annotations(src, "labelme", out, jobs=1)
    assert sorted(c.path for c in r2.written) == paths and all(c.status == "unchanged" for c in r2.written)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*.png")} == before
    assert "(4 unchanged)" in r2.summary()
    assert not (out / WORK_DIR).exists()


def test_existing_folder_spelling_and_progress(tmp_path):
    src = tmp_path / "src"
    save(src / "img.png", noise(18))
    labelme(src / "a.json", [shape("cat", [[0, 0], [9, 9]]), shape("dog", [[0, 0], [9, 9]])])
    labelme(src / "b.json", [shape("DOG", [[0, 0], [9, 9]])])
    out = tmp_path / "out"
    (out / "Cat").mkdir(parents=True)  # a class folder from an earlier fetch or import
    calls = []
    r = import_annotations(src, "labelme", out, on_progress=lambda files, n: calls.append((files, n)))
    assert [c.folder for c in r.written] == ["Cat", "dog", "dog"]
    assert calls == [(1, 2), (2, 3)]


def test_output_inside_source_is_not_read_back(tmp_path):
    src = tmp_path / "src"
    save(src / "img.png", noise(15))
    labelme(src / "img.json", [shape("cat", [[0, 0], [9, 9]])])
    for _ in range(2):  # the second run must not take out/import-report.json for an annotation
        r = import_annotations(src, "labelme", src / "out")
        assert r.files == 1 and r.ok
    with pytest.raises(UserInputError, match="contains the annotations"):
        import_annotations(src, "labelme", tmp_path)
    with pytest.raises(UserInputError, match="no .json files found"):
        import_annotations(tmp_path / "src" / "out" / "cat", "labelme", tmp_path / "o")
    assert not (tmp_path / "o").exists()  # nothing to import: no output folder either
    with pytest.raises(UserInputError, match="margin"):
        import_annotations(src, "labelme", tmp_path / "o", margin=-0.1)


def test_output_is_what_train_reads(tmp_path):
    src = tmp_path / "src"
    a = noise(16)
    save(src / "img.png", a)
    labelme(src / "img.json", [shape("cat", [[0, 0], [9, 9]]), shape("dog", [[10, 10], [30, 25]]),
                               shape("cat", [[20, 0], [30, 9]])])
    out = tmp_path / "out"
    r = import_annotations(src, "labelme", out)
    folder = scan_folder(out)
    assert folder.classes == ["cat", "dog"] and not folder.skipped
    assert sorted(s.path for s in folder.samples) == sorted(out / c.path for c in r.written)
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["ok"] and report["classes"] == ["cat", "dog"] and len(report["written"]) == 3


# ---------------------------------------------------------------------------------------------
# CLI


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A VOC folder with one good file and one with a box outside the image."""
    root = tmp_path_factory.mktemp("cli")
    save(root / "ann" / "img.png", noise(17))
    voc(root / "ann" / "good.xml", [("cat", 1, 1, 10, 10), ("dog", 11, 11, 20, 20)])
    voc(root / "bad" / "bad.xml", [("cat", 1, 1, 10, 10), ("dog", 60, 60, 70, 70)], img_path=str(root / "ann" / "img.png"))
    return root


def test_cli_report_json_and_exit_codes(dataset, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["dataset", "import", str(dataset / "ann"), "--format", "voc", "--out", str(tmp_path / "o"),
                            "--margin", "0.1", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["classes"] == ["cat", "dog"] and doc == json.loads((tmp_path / "o" / REPORT_FILE).read_text())
    r = runner.invoke(app, ["dataset", "import", str(dataset / "bad"), "--format", "voc", "--out", str(tmp_path / "p")])
    assert r.exit_code == 1, r.output
    assert "imported 1 crop into 1 class folder" in r.stdout and "outside the 40x30 image" in r.stdout
    for args, text in [
        ([str(tmp_path / "nope"), "--format", "voc"], "does not exist"),
        ([str(dataset / "ann"), "--format", "coco"], "coco"),
        ([str(dataset / "ann"), "--format", "voc", "--margin", "2"], "--margin"),
        ([str(dataset / "ann"), "--format", "labelme"], "no .json files found"),
        ([str(dataset / "ann" / "good.xml"), "--format", "labelme"], "expected a .json file"),
    ]:
        r = runner.invoke(app, ["dataset", "import", *args, "--out", str(tmp_path / "q")], env={"COLUMNS": "500"})
        assert r.exit_code == 2, (args, r.output)
        assert text in " ".join(r.output.replace("│", " ").split()), (args, r.output)
        assert "Traceback" not in r.output


def test_cli_real_subprocess(dataset, tmp_path):
    exe = Path(sys.executable).with_name("mobilegen")
    out = tmp_path / "out"
    r = subprocess.run([str(exe), "dataset", "import", str(dataset / "ann"), "--format", "voc", "--out", str(out)],
                       capture_output=True, text=True, env={**os.environ, "CI": os.environ.get("CI", "")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("imported 2 crops into 2 class folders") and r.stderr == ""
    assert scan_folder(out).classes == ["cat", "dog"]


def test_source_formats_and_modes_keep_pixels(tmp_path):
    """JPEG, grayscale, palette with transparency, 16-px GIF: crops are PNG with the decoded pixels;
    the ICC profile comes along, EXIF does not."""
    from PIL import ImageCms

    src = tmp_path / "src"
    a = noise(19)
    save(src / "photo.jpg", a, quality=90, icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    save(src / "gray.png", a[..., 0])
    pal = Image.fromarray(a).quantize(16)
    pal.info["transparency"] = 0
    pal.save(src / "pal.png", transparency=0)
    Image.fromarray(a[:16, :16]).convert("P").save(src / "tiny.gif")
    for name in ("photo.jpg", "gray.png", "pal.png", "tiny.gif"):
        labelme(src / (name + ".json"), [shape("x", [[2, 1], [12, 9]])], image=name, w=16 if "tiny" in name else W,
                h=16 if "tiny" in name else H)
    r = import_annotations(src, "labelme", tmp_path / "out")
    got = {c.annotation: tmp_path / "out" / c.path for c in r.written}
    assert r.ok and len(got) == 4
    for name, mode in (("photo.jpg", "RGB"), ("gray.png", "L"), ("pal.png", "RGBA"), ("tiny.gif", "RGB")):
        with Image.open(src / name) as im:
            want = np.asarray(im.convert(mode).crop((2, 1, 12, 9)))
            icc = im.info.get("icc_profile")
        with Image.open(got[name + ".json"]) as crop:
            assert crop.format == "PNG" and crop.mode == mode, name
            assert np.array_equal(np.asarray(crop), want), name
            assert crop.info.get("icc_profile") == icc and "exif" not in crop.info, name
    with Image.open(src / "photo.jpg") as im:
        assert im.info.get("icc_profile")  # so the loop above saw one kept
