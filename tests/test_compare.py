"""`mobilegen compare` as the bisection tool (mobilegen.compare, mobilegen.verify.sources).

The key test seeds a fault in a generated engine: one weight of one chosen layer is changed in the
project's weights blob (model.mgw), the blob's CRC-32 recomputed so the engine still loads it (the
plan hash in its header stays the engine's), and `compare host-cpu simulator` (and host-gpu), on
Android and on iOS, must exit 1 naming exactly that layer, its op kind, and its input as equal
("diverges here"); the same project unmodified passes. The model is the committed demo (MobileNet
V1 0.25 / 128, int8), so no TensorFlow is needed.

The rest: the table's columns, the --json document, exit codes, tolerances by precision, the
verdicts when a tensor's inputs already differed, and the one-line user errors."""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.compare import (
    DIFFERED,
    EQUAL,
    WITHIN,
    compare_paths,
    first_divergence,
)
from mobilegen.dump import INDEX_FILE
from mobilegen.export import export_plan, plan_for_precision
from mobilegen.tflite.reader import read_model_file
from mobilegen.verify.host import project_blob
from mobilegen.weights import HEADER_SIZE, read_blob
from tests.harness import random_input, require_tool

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo" / "model.tflite"
runner = CliRunner()

# The layers corrupted: a DEPTHWISE_CONV_2D and a CONV_2D in the middle of the demo MobileNet (ops
# 12 and 13), so layers before them must compare equal and layers after them inherit the fault.
DEPTHWISE_OP, CONV_OP = 12, 13


def invoke(*args):
    return runner.invoke(app, ["compare", *map(str, args)])


@pytest.fixture(scope="module")
def graph():
    return read_model_file(DEMO)


@pytest.fixture(scope="module")
def x(graph, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("compare") / "x.npy"
    np.save(path, random_input(graph.tensors[graph.inputs[0]], 3))
    return path


@pytest.fixture(scope="module")
def sim_dump(x, tmp_path_factory) -> Path:
    """The simulator's dump of the demo on x, made by `compare simulator simulator --keep`."""
    keep = tmp_path_factory.mktemp("keep")
    r = invoke("simulator", "simulator", "--model", DEMO, "--input", x, "--keep", keep)
    assert r.exit_code == 0, r.output
    return keep / "simulator-A"


def _project(tmp_path_factory, target: str) -> Path:
    from tests.test_engine_cpu import require_toolchain

    require_toolchain()
    if target == "ios":
        require_tool("clang++-19", "clang-19")
    out = tmp_path_factory.mktemp(target) / "project"
    r = runner.invoke(app, ["generate", str(DEMO), "--target", target, "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def android(tmp_path_factory) -> Path:
    return _project(tmp_path_factory, "android")


@pytest.fixture(scope="module")
def ios(tmp_path_factory) -> Path:
    return _project(tmp_path_factory, "ios")


@contextlib.contextmanager
def corrupted_weight(project: Path, op_index: int):
    """Change one weight of op `op_index` in `project`'s blob, with a CRC-32 the engine accepts;
    restored afterwards. Yields the weight's byte offset in the payload."""
    g = read_model_file(DEMO)
    em = export_plan(*plan_for_precision(g))
    blob = project_blob(project)
    original = blob.read_bytes()
    assert original == em.blob, "the project's blob is not the export of its model"
    record = next(k for k in em.kernels if k.op_index == op_index)
    offset, size = record.params["weights"]
    assert size > 0
    data = bytearray(original)
    data[HEADER_SIZE + offset] ^= 0x40  # the first weight of output channel 0: +-64
    struct.pack_into("<I", data, 24, zlib.crc32(bytes(data[HEADER_SIZE:])))  # the header's CRC-32 field
    assert read_blob(bytes(data))[0] == em.plan_hash  # loads: checksum right, plan hash the engine's
    blob.write_bytes(bytes(data))
    try:
        yield offset
    finally:
        blob.write_bytes(original)


def _check_fault_found(r, g, op_index: int) -> None:
    """Exit 1; the first divergence is op `op_index`'s output, which diverges there: every input
    equal, every earlier tensor equal."""
    assert r.exit_code == 1, r.output
    out = g.ops[op_index].outputs[0]
    activation = g.ops[op_index].inputs[0]
    lines = r.stderr.strip().splitlines()  # progress lines, then the one error line
    err = [line for line in lines if line.startswith("error: ")]
    assert err == lines[-1:], r.stderr
    assert f"first in graph order: tensor {out} " in err[0], err[0]
    assert f"written by op {op_index} {g.ops[op_index].opcode}: diverges here (inputs: tensor {activation} equal)" in err[0], err[0]
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    d = doc["first_divergence"]
    assert (d["tensor"]["index"], d["tensor"]["op_index"], d["tensor"]["op"]) == (out, op_index, g.ops[op_index].opcode)
    assert d["verdict"] == "diverges here"
    assert {i["index"]: i["status"] for i in d["inputs"] if i["status"] != "constant"} == {activation: "equal"}
    assert d["origin"]["index"] == out
    rows = doc["tensors"]
    first = next(n for n, row in enumerate(rows) if row["index"] == out)
    assert all(row["equal"] == 1.0 and row["ok"] for row in rows[:first]), "a tensor before the fault differs"
    assert rows[first]["max_lsb"] > 0 and rows[first]["cosine"] < 1.0


@pytest.mark.parametrize("backend,op_index", [("cpu", DEPTHWISE_OP), ("gpu", CONV_OP)])
def test_android_fault_is_located(android, graph, x, backend, op_index):
    side = f"host-{backend}"
    r = invoke(side, "simulator", "--model", DEMO, "--project", android, "--input", x, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ok"] is True
    with corrupted_weight(android, op_index):
        r = invoke(side, "simulator", "--model", DEMO, "--project", android, "--input", x, "--json")
    _check_fault_found(r, graph, op_index)


@pytest.mark.parametrize("backend,op_index", [("gpu", DEPTHWISE_OP), ("cpu", CONV_OP)])
def test_ios_fault_is_located(ios, graph, x, backend, op_index):
    side = f"host-{backend}"
    r = invoke(side, "simulator", "--model", DEMO, "--project", ios, "--input", x, "--json")
    assert r.exit_code == 0, r.output
    with corrupted_weight(ios, op_index):
        r = invoke(side, "simulator", "--model", DEMO, "--project", ios, "--input", x, "--json")
    _check_fault_found(r, graph, op_index)


def test_fp16_project_precision_and_tolerance(tmp_path_factory, x):
    """An fp16 project: compare takes its precision from mobilegen.json (the simulator runs fp16
    storage too) and the fp16 default tolerance, within which the engine passes; held to the
    int8/fp32 default (--rtol 5e-5) the same run fails, so the default is what makes it pass."""
    from tests.test_engine_cpu import require_toolchain

    require_toolchain()
    project = tmp_path_factory.mktemp("fp16") / "project"
    r = runner.invoke(app, ["generate", str(DEMO), "--target", "android", "--out", str(project), "--precision", "fp16"])
    assert r.exit_code == 0, r.output
    r = invoke("host-cpu", "simulator", "--model", DEMO, "--project", project, "--input", x, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["precision"] == "fp16" and doc["tolerance"] == {"lsb": 1, "rtol": 6e-3}
    worst = max(t["rel"] or 0.0 for t in doc["tensors"])
    assert 5e-5 < worst <= 6e-3, worst
    r = invoke("host-cpu", "simulator", "--model", DEMO, "--project", project, "--input", x, "--rtol", "5e-5")
    assert r.exit_code == 1, r.output


def test_device_style_dump_feeds_the_simulator(android, graph, x, tmp_path):
    """A kept host dump holds the graph inputs (as device dumps do): compared with `simulator`
    without --input, compare re-runs the simulator on them; the fault is still found (table form)."""
    keep = tmp_path / "keep"
    with corrupted_weight(android, CONV_OP):
        r = invoke("host-cpu", "litert" if _litert() else "simulator", "--model", DEMO, "--project", android,
                   "--input", x, "--keep", keep)
    assert r.exit_code == 1, r.output
    dump = keep / "host-cpu"
    assert (dump / INDEX_FILE).is_file()
    r = invoke(dump, "simulator", "--model", DEMO)  # no --input: the dump's graph input is used
    assert r.exit_code == 1, r.output
    assert f"written by op {CONV_OP} CONV_2D: diverges here" in r.stderr
    header = r.stdout.splitlines()[0].split()
    assert header[:8] == ["index", "max", "abs", "max", "LSB", "rel", "equal", "cosine"] and "op" in header


def test_dump_indexed_by_the_apps_tensors_json_replays_in_the_simulator(android, graph, x, tmp_path):
    """What the sample apps write: the engine's .npy files indexed by the tensors.json asset the SDK
    copies into the dump folder. That index lists the graph input (marked "input"), so compare
    re-runs the simulator on the phone's own input: the unmodified project matches everywhere."""
    keep = tmp_path / "keep"
    r = invoke("host-cpu", "simulator", "--model", DEMO, "--project", android, "--input", x, "--keep", keep)
    assert r.exit_code == 0, r.output
    dump = keep / "host-cpu"
    asset = next((android / "sdk" / "src" / "main" / "assets").glob("*/tensors.json"))
    records = json.loads(asset.read_text())["tensors"]
    assert [rec["index"] for rec in records if rec.get("input")] == list(graph.inputs)
    shutil.copy(asset, dump / INDEX_FILE)
    r = invoke(dump, "simulator", "--model", DEMO)  # no --input: the dump's graph input is used
    assert r.exit_code == 0, r.output
    assert "within tolerance" in r.stdout


def _litert() -> bool:
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        return False
    return True


# -- tables, JSON, verdicts -------------------------------------------------------------------------
def _edit(dump: Path, dest: Path, changes: dict[int, int]) -> Path:
    """A copy of `dump` with element 0 of each tensor in `changes` moved by that many LSB."""
    shutil.copytree(dump, dest)
    for index, delta in changes.items():
        p = dest / f"{index}.npy"
        a = np.load(p)
        flat = a.reshape(-1).copy()
        flat[0] = flat[0] + delta if flat[0] < 100 else flat[0] - delta
        np.save(p, flat.reshape(a.shape).astype(a.dtype))
    return dest


def test_identical_runs_pass_with_op_kinds_and_cosine(sim_dump, graph, x):
    r = invoke(sim_dump, "simulator", "--model", DEMO, "--input", x)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    n = len(graph.written_tensors()) + len(graph.inputs)
    assert lines[-1] == f"all {n} tensors within tolerance"
    conv = graph.ops[CONV_OP].outputs[0]
    row = next(line for line in lines if line.split()[0] == str(conv))
    assert f"{CONV_OP} CONV_2D" in row and "1.000000" in row and "100.00%" in row


def test_json_document(sim_dump, graph, x):
    r = invoke(sim_dump, "simulator", "--model", DEMO, "--input", x, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["first_divergence"] is None and doc["precision"] == "int8"
    assert doc["tolerance"] == {"lsb": 0, "rtol": 5e-5}
    assert doc["compared"] == len(doc["tensors"]) and doc["over_tolerance"] == 0
    kinds = {t["index"]: t["op"] for t in doc["tensors"]}
    assert all(kinds[op.outputs[0]] == op.opcode for op in graph.ops)
    assert kinds[graph.inputs[0]] is None  # a graph input: no op writes it


def test_within_tolerance_input_is_not_diverges_here(sim_dump, graph, tmp_path):
    """Op 13 moved by 1 LSB (within --tolerance 1), its consumer op 14 by 2: the first tensor over
    tolerance is op 14's, but it did not diverge there: its input already differed, and the
    difference starts at op 13, whose inputs are equal."""
    t13, t14 = graph.ops[CONV_OP].outputs[0], graph.ops[CONV_OP + 1].outputs[0]
    assert graph.ops[CONV_OP + 1].inputs[0] == t13
    b = _edit(sim_dump, tmp_path / "b", {t13: 1, t14: 2})
    r = invoke(sim_dump, b, "--model", DEMO, "--tolerance", "1", "--json")
    assert r.exit_code == 1, r.output
    d = json.loads(r.stdout)["first_divergence"]
    assert d["tensor"]["index"] == t14
    assert {i["index"]: i["status"] for i in d["inputs"]}[t13] == WITHIN
    assert d["verdict"] == "amplified here"
    assert d["origin"]["index"] == t13 and d["origin"]["op_index"] == CONV_OP
    assert f"the difference starts at tensor {t13} (op {CONV_OP} CONV_2D), whose inputs are equal" in r.stderr
    # At 0 LSB op 13 is the first over tolerance, and it diverges there.
    r = invoke(sim_dump, b, "--model", DEMO, "--json")
    d = json.loads(r.stdout)["first_divergence"]
    assert (d["tensor"]["index"], d["verdict"]) == (t13, "diverges here")


def test_inherited_when_an_input_already_differed(graph, sim_dump, tmp_path):
    """Rows whose first tensor over tolerance read an input that is over tolerance too (a side
    whose records come out of graph order): inherited, with the origin upstream."""
    t13, t14 = graph.ops[CONV_OP].outputs[0], graph.ops[CONV_OP + 1].outputs[0]
    b = _edit(sim_dump, tmp_path / "b", {t13: 3, t14: 3})
    rows = compare_paths(sim_dump, b, graph=graph)
    assert first_divergence(rows, graph).row.index == t13  # graph order: op 13 first
    r13 = next(r for r in rows if r.index == t13)
    rows.remove(r13)
    rows.append(r13)  # op 13's row last
    d = first_divergence(rows, graph)
    assert d.row.index == t14 and d.verdict == "inherited"
    assert {i.index: i.status for i in d.inputs}[t13] == DIFFERED
    assert d.origin.index == t13
    assert EQUAL not in {i.status for i in d.inputs if i.index == t13}


def test_dump_without_graph_inputs(sim_dump, graph, x, tmp_path):
    """`simulate --dump-dir` writes no graph inputs; the dumps compare makes hold them (marked
    "input"): compared, the inputs are skipped and said so, and a fault in op 0 (which reads the
    graph input) still diverges there."""
    d = tmp_path / "sim"
    r = runner.invoke(app, ["simulate", str(DEMO), "--input", str(x), "--dump-dir", str(d), "--top", "0"])
    assert r.exit_code == 0, r.output
    records = json.loads((sim_dump / INDEX_FILE).read_text())["tensors"]
    assert [r["index"] for r in records if r.get("input")] == list(graph.inputs)
    r = invoke(d, sim_dump)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1].endswith("(1 graph inputs only one side holds skipped)")
    q = graph.ops[0].outputs[0]
    b = _edit(d, tmp_path / "b", {q: 1})
    r = invoke(b, sim_dump, "--model", DEMO, "--json")
    assert r.exit_code == 1, r.output
    div = json.loads(r.stdout)["first_divergence"]
    assert div["tensor"]["index"] == q and div["verdict"] == "diverges here"
    assert [i["status"] for i in div["inputs"]] == ["graph input (not compared)"]


def test_graph_input_differs(sim_dump, graph, tmp_path):
    """Two runs on different inputs: the first difference is the graph input itself."""
    b = tmp_path / "b"
    shutil.copytree(sim_dump, b)
    p = b / f"{graph.inputs[0]}.npy"
    np.save(p, np.load(p) + np.float32(0.5))
    r = invoke(sim_dump, b, "--model", DEMO)
    assert r.exit_code == 1
    assert "it is a graph input; the two sides ran on different inputs" in r.stderr


def test_without_model_no_op_column(sim_dump, tmp_path):
    b = _edit(sim_dump, tmp_path / "b", {sim_dump_index(sim_dump, 5): 1})
    r = invoke(sim_dump, b)
    assert r.exit_code == 1
    assert "pass --model to name its op" in r.stderr
    assert "CONV_2D" not in r.stdout and "cosine" in r.stdout.splitlines()[0]


def sim_dump_index(dump: Path, n: int) -> int:
    return json.loads((dump / INDEX_FILE).read_text())["tensors"][n]["index"]


def test_fp16_default_tolerances(sim_dump, x, tmp_path):
    """At fp16 the defaults are 1 LSB and 6e-3 (a whole run's spread of half roundings); an
    explicit --rtol wins."""
    keep = tmp_path / "k"
    r = invoke("simulator", "simulator", "--model", DEMO, "--input", x, "--precision", "fp16", "--json", "--keep", keep)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tolerance"] == {"lsb": 1, "rtol": 6e-3}
    r = invoke("simulator", "simulator", "--model", DEMO, "--input", x, "--precision", "fp16", "--json", "--rtol", "1e-5",
               "--tolerance", "0")
    assert json.loads(r.stdout)["tolerance"] == {"lsb": 0, "rtol": 1e-5}


# -- user errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,message", [
    (["simulater", "simulator", "--model", DEMO],
     "A 'simulater': no such file or directory; expected a dump directory, a .npy file, or one of simulator, litert, host-gpu, host-cpu"),
    (["simulator", "litert"], "A 'simulator': a simulator run needs the model; pass --model M.tflite"),
    (["simulator", "host-gpu", "--model", DEMO], "B 'host-gpu': a host run builds a generated project's engine; pass --project P"),
    (["simulator", "simulator", "--model", DEMO], "no input to run the model on: pass --input X.npy"),
])
def test_user_errors(args, message):
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and message in r.stderr, r.stderr


def test_user_errors_with_files(sim_dump, x, tmp_path, android):
    r = invoke(x, "simulator", "--model", DEMO, "--input", x)
    assert r.exit_code == 2 and "cannot compare the single array" in r.stderr
    r = invoke(sim_dump, sim_dump, "--input", x)
    assert r.exit_code == 2 and "--input feeds the runs compare makes" in r.stderr
    r = invoke(sim_dump, sim_dump, "--project", android)
    assert r.exit_code == 2 and "--project needs --model" in r.stderr
    r = invoke(sim_dump, "simulator", "--project", android, "--model", DEMO)  # a device dump of P's app
    assert r.exit_code == 0, r.output
    r = invoke("host-cpu", "simulator", "--model", DEMO, "--project", android, "--precision", "fp16", "--input", x)
    assert r.exit_code == 2 and "was generated at int8" in r.stderr
    other = tmp_path / "other.tflite"
    other.write_bytes(DEMO.read_bytes() + b"\0")
    r = invoke("host-cpu", "simulator", "--model", other, "--project", android, "--input", x)
    assert r.exit_code == 2 and "was generated from another model" in r.stderr


def test_shapes_differ(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 3), np.int8))
    np.save(tmp_path / "b.npy", np.zeros((3, 2), np.int8))
    r = invoke(tmp_path / "a.npy", tmp_path / "b.npy", "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["tensors"][0]["note"] == "shape differs" and doc["first_divergence"]["verdict"] == "unknown"
    assert "shape differs" in r.stderr
