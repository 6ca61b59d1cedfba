"""`mobilegen pull` against fake `adb` and `xcrun` executables put first on PATH.

The fakes are small Python scripts that emulate the real tools' command lines and outputs over a
folder standing for the device's storage (`sdcard/` for Android, the app container for iOS), and
log every argument vector they receive, so the tests check both what `pull` does with their
answers and the exact commands it runs: `adb devices`, `adb -s S shell pm path P`,
`adb -s S shell ls -1 /sdcard/Android/data/P/files/mobilegen-dumps`, `adb -s S pull REMOTE TMP`;
`xcrun devicectl list devices --json-output F`, `xcrun devicectl device copy from --device D
--domain-type appDataContainer --domain-identifier B --source Documents/mobilegen-dumps[/N]
--destination F`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.dump import INDEX_FILE

ROOT = Path(__file__).resolve().parents[1]
PKG = "com.example.mobilegen.demo.app"  # android_sample's applicationId
REMOTE = f"/sdcard/Android/data/{PKG}/files/mobilegen-dumps"
BUNDLE = "com.example.mobilegen.demo"  # ios_sample's bundle id
OLD, NEW = "20260101-090000", "20260102-101500"

FAKE_ADB = r'''
import json, os, shutil, sys
from pathlib import Path

state = json.loads(Path(os.environ["FAKE_STATE"]).read_text())
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["adb", *args]) + "\n")
devices = state["devices"]
if args == ["devices"]:
    print("* daemon not running; starting now at tcp:5037") if state.get("daemon_noise") else None
    print("List of devices attached")
    for serial, st in devices:
        print(f"{serial}\t{st}")
    print()
    sys.exit(0)
serial = None
if args[:1] == ["-s"]:
    serial, args = args[1], args[2:]
usable = [s for s, st in devices if st == "device"]
if serial is None:
    if len(devices) != 1:
        print("adb: more than one device/emulator" if devices else "adb: no devices/emulators found", file=sys.stderr)
        sys.exit(1)
    serial = devices[0][0]
if serial not in usable:
    print(f"adb: device '{serial}' not found", file=sys.stderr)
    sys.exit(1)
sdcard = Path(state["sdcard"][serial])

def local(remote):
    assert remote.startswith("/sdcard/"), remote
    return sdcard / remote[len("/sdcard/"):]

if args[:3] == ["shell", "pm", "path"]:
    if args[3] in state.get("installed", []):
        print(f"package:/data/app/~~x==/{args[3]}-1/base.apk")
        sys.exit(0)
    sys.exit(1)
if args[:3] == ["shell", "ls", "-1"]:
    p = local(args[3])
    if not p.is_dir():
        print(f"ls: {args[3]}: No such file or directory", file=sys.stderr)
        sys.exit(1)
    for child in sorted(p.iterdir()):
        print(child.name)
    sys.exit(0)
if args[0] == "pull" and len(args) == 3:
    src, dst = local(args[1]), Path(args[2])
    if not src.exists():
        print(f"adb: error: failed to stat remote object '{args[1]}': No such file or directory", file=sys.stderr)
        sys.exit(1)
    target = dst / src.name if dst.is_dir() else dst
    shutil.copytree(src, target)
    print(f"{args[1]}/: {len(list(src.iterdir()))} files pulled, 0 skipped.")
    sys.exit(0)
print(f"fake adb: unexpected arguments {args}", file=sys.stderr)
sys.exit(2)
'''

FAKE_XCRUN = r'''
import json, os, shutil, sys
from pathlib import Path

state = json.loads(Path(os.environ["FAKE_STATE"]).read_text())
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["xcrun", *args]) + "\n")
if args[:3] == ["devicectl", "list", "devices"] and args[3] == "--json-output":
    Path(args[4]).write_text(json.dumps({"info": {"outcome": "success"}, "result": {"devices": state["devices"]}}))
    sys.exit(0)
if args[:4] == ["devicectl", "device", "copy", "from"]:
    opts = dict(zip(args[4::2], args[5::2]))
    ids = [d["identifier"] for d in state["devices"]]
    if opts["--device"] not in ids or opts["--domain-type"] != "appDataContainer":
        print("ERROR: The specified device was not found.", file=sys.stderr)
        sys.exit(1)
    container = Path(state["containers"].get(opts["--domain-identifier"], "/nonexistent"))
    src, dst = container / opts["--source"], Path(opts["--destination"])
    if not src.exists() or dst.exists():
        print(f"ERROR: cannot copy {opts['--source']}", file=sys.stderr)
        sys.exit(1)
    shutil.copytree(src, dst)  # the folder's contents become the destination
    sys.exit(0)
print(f"fake xcrun: unexpected arguments {args}", file=sys.stderr)
sys.exit(2)
'''


def write_dump(folder: Path, seed: int, *, drop: str | None = None) -> Path:
    """A dump as the SDKs write it: tensors.json listing the kernel outputs (1 and 2), their
    .npy files and the graph input 0.npy (unlisted). `drop` leaves one file out."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    records = [{"index": i, "name": f"t{i}", "shape": [1, 4], "dtype": "int8", "scale": 0.5, "zero_point": 0}
               for i in (1, 2)]
    (folder / INDEX_FILE).write_text(json.dumps({"tensors": records}, indent=1) + "\n")
    for i in (0, 1, 2):
        np.save(folder / f"{i}.npy", rng.integers(-128, 128, (1, 4), dtype=np.int8))
    if drop:
        (folder / drop).unlink()
    return folder


class Fake:
    """The fake tools' world: a bin/ folder first on PATH, their state file and their call log."""

    def __init__(self, tmp: Path, monkeypatch):
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.state_file = tmp / "state.json"
        self.log_file = tmp / "calls.log"
        self.log_file.write_text("")
        self.env = {"FAKE_STATE": str(self.state_file), "FAKE_LOG": str(self.log_file),
                    # Only the fakes (and coreutils-free Python) on PATH: no real adb or xcrun is found.
                    "PATH": str(self.bin)}
        for k, v in self.env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("ANDROID_HOME", raising=False)
        monkeypatch.delenv("ANDROID_SDK_ROOT", raising=False)

    def tool(self, name: str, source: str) -> None:
        exe = self.bin / name
        exe.write_text(f"#!{sys.executable}\n{source}")
        exe.chmod(0o755)

    def state(self, **state) -> None:
        self.state_file.write_text(json.dumps(state))

    def calls(self) -> list[list[str]]:
        return [json.loads(ln) for ln in self.log_file.read_text().splitlines()]


@pytest.fixture
def fake(tmp_path, monkeypatch) -> Fake:
    return Fake(tmp_path, monkeypatch)


def android_device(fake: Fake, serial: str = "emulator-5554", dumps=(OLD, NEW), **extra) -> Path:
    """One device with the app installed holding `dumps`; returns its sdcard folder."""
    sdcard = fake.tmp / f"sdcard-{serial}"
    for seed, name in enumerate(dumps):
        write_dump(sdcard / REMOTE[len("/sdcard/"):] / name, seed, **extra.pop(name, {}))
    sdcard.mkdir(exist_ok=True)
    return sdcard


def run(args: list[str]):
    return CliRunner().invoke(app, ["pull", *map(str, args)])


def assert_one_line_error(r, *needles: str) -> str:
    assert r.exit_code != 0, r.stdout
    msg = r.stderr.strip()
    assert len(msg.splitlines()) == 1 and msg.startswith("error: "), msg
    assert "Traceback" not in r.stderr and r.exception is None or isinstance(r.exception, SystemExit)
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def same_dump(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


# ---------------------------------------------------------------------------------------------
# Android
# ---------------------------------------------------------------------------------------------


def test_pulls_the_latest_dump_with_the_expected_adb_commands(fake, tmp_path):
    fake.tool("adb", FAKE_ADB)
    sdcard = android_device(fake)
    fake.state(devices=[["emulator-5554", "device"]], installed=[PKG], sdcard={"emulator-5554": str(sdcard)})
    out = tmp_path / "pulled"
    r = run([out, "--target", "android", "--package", PKG])
    assert r.exit_code == 0, r.output
    # The latest of the two, complete, moved into DIR itself (no nesting).
    assert same_dump(out, sdcard / REMOTE[len("/sdcard/"):] / NEW)
    assert not any(p.name.startswith(".mobilegen-pull-") for p in tmp_path.iterdir())
    assert f"pulled dump {NEW} of {PKG} from emulator-5554 into {out}: 2 tensors and graph input #0" in r.stdout
    assert f"next: mobilegen compare {out} simulator --model MODEL.tflite" in r.stdout
    calls = fake.calls()
    assert calls[:3] == [
        ["adb", "devices"],
        ["adb", "-s", "emulator-5554", "shell", "pm", "path", PKG],
        ["adb", "-s", "emulator-5554", "shell", "ls", "-1", REMOTE],
    ]
    assert len(calls) == 4 and calls[3][:4] == ["adb", "-s", "emulator-5554", "pull"]
    assert calls[3][4] == f"{REMOTE}/{NEW}"
    assert Path(calls[3][5]).parent == tmp_path  # fetched next to DIR, then renamed


def test_named_dump_and_project(fake, tmp_path):
    """--dump picks an older one; --project reads the app id from the generated project
    (android_sample's app/build.gradle.kts) and the model's name from its provenance."""
    fake.tool("adb", FAKE_ADB)
    sdcard = android_device(fake)
    fake.state(devices=[["emulator-5554", "device"]], installed=[PKG], sdcard={"emulator-5554": str(sdcard)})
    r = run([tmp_path / "old", "--target", "android", "--project", ROOT / "android_sample", "--dump", OLD])
    assert r.exit_code == 0, r.output
    assert same_dump(tmp_path / "old", sdcard / REMOTE[len("/sdcard/"):] / OLD)
    assert "--model model.tflite" in r.stdout
    assert fake.calls()[-1][4] == f"{REMOTE}/{OLD}"
    r = run([tmp_path / "x", "--target", "android", "--package", PKG, "--dump", "20990101-000000"])
    assert_one_line_error(r, "--dump 20990101-000000", OLD, NEW)
    r = run([tmp_path / "y", "--target", "android", "--package", PKG, "--dump", "../../etc"])
    assert_one_line_error(r, "--dump '../../etc'")


def test_two_devices_need_serial(fake, tmp_path):
    fake.tool("adb", FAKE_ADB)
    a, b = android_device(fake, "emulator-5554", dumps=(OLD,)), android_device(fake, "R58M1234ABC", dumps=(NEW,))
    fake.state(devices=[["emulator-5554", "device"], ["R58M1234ABC", "device"]], installed=[PKG],
               sdcard={"emulator-5554": str(a), "R58M1234ABC": str(b)})
    r = run([tmp_path / "d", "--target", "android", "--package", PKG])
    assert_one_line_error(r, "2 Android devices", "emulator-5554", "R58M1234ABC", "--serial")
    assert fake.calls() == [["adb", "devices"]]
    r = run([tmp_path / "d", "--target", "android", "--package", PKG, "--serial", "R58M1234ABC"])
    assert r.exit_code == 0, r.output
    assert same_dump(tmp_path / "d", b / REMOTE[len("/sdcard/"):] / NEW)
    assert all(c[1:3] == ["-s", "R58M1234ABC"] for c in fake.calls()[2:])
    r = run([tmp_path / "e", "--target", "android", "--package", PKG, "--serial", "nope"])
    assert_one_line_error(r, "--serial nope", "emulator-5554")


@pytest.mark.parametrize("devices, needles", [
    ([], ("no Android device", "USB debugging")),
    ([["0123456789", "unauthorized"]], ("0123456789 is unauthorized", "Allow USB debugging")),
    ([["0123456789", "offline"]], ("0123456789 is offline",)),
    ([["0123456789", "no permissions (missing udev rules? user is in the plugdev group)"]], ("udev",)),
])
def test_device_problems_are_one_line_errors(fake, tmp_path, devices, needles):
    fake.tool("adb", FAKE_ADB)
    fake.state(devices=devices, installed=[PKG], sdcard={}, daemon_noise=True)
    r = run([tmp_path / "d", "--target", "android", "--package", PKG])
    assert_one_line_error(r, *needles)
    assert fake.calls() == [["adb", "devices"]]
    assert not (tmp_path / "d").exists()


def test_no_dumps_and_not_installed(fake, tmp_path):
    fake.tool("adb", FAKE_ADB)
    sdcard = android_device(fake, dumps=())
    fake.state(devices=[["emulator-5554", "device"]], installed=[PKG], sdcard={"emulator-5554": str(sdcard)})
    r = run([tmp_path / "d", "--target", "android", "--package", PKG])
    assert_one_line_error(r, f"no dumps of {PKG} on emulator-5554", "Dump tensors")
    fake.state(devices=[["emulator-5554", "device"]], installed=[], sdcard={"emulator-5554": str(sdcard)})
    r = run([tmp_path / "d", "--target", "android", "--package", PKG])
    assert_one_line_error(r, f"{PKG} is not installed on emulator-5554")


@pytest.mark.parametrize("drop, needle", [("2.npy", "lists tensor 2 but 2.npy is missing"),
                                          (INDEX_FILE, "has no tensors.json")])
def test_incomplete_dump_is_refused(fake, tmp_path, drop, needle):
    fake.tool("adb", FAKE_ADB)
    sdcard = android_device(fake, **{NEW: {"drop": drop}})
    fake.state(devices=[["emulator-5554", "device"]], installed=[PKG], sdcard={"emulator-5554": str(sdcard)})
    out = tmp_path / "d"
    r = run([out, "--target", "android", "--package", PKG])
    assert_one_line_error(r, needle)
    assert not out.exists()  # nothing half-fetched left where compare would read it
    assert not any(p.name.startswith(".mobilegen-pull-") for p in tmp_path.iterdir())


def test_destination_and_option_errors(fake, tmp_path):
    fake.tool("adb", FAKE_ADB)
    sdcard = android_device(fake)
    fake.state(devices=[["emulator-5554", "device"]], installed=[PKG], sdcard={"emulator-5554": str(sdcard)})
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert_one_line_error(run([full, "--target", "android", "--package", PKG]), "not an empty directory")
    assert (full / "keep.txt").read_text() == "mine"
    assert_one_line_error(run([tmp_path / "d", "--target", "android"]), "--package", "--project")
    assert_one_line_error(run([tmp_path / "d", "--target", "android", "--package", "a b;rm -rf /"]), "--package")
    assert_one_line_error(run([tmp_path / "d", "--target", "android", "--project", tmp_path]), "not a generated project")
    assert_one_line_error(run([tmp_path / "d", "--target", "android", "--project", ROOT / "ios_sample"]),
                          "a generated ios project")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run([empty, "--target", "android", "--package", PKG])  # an empty DIR is fine
    assert r.exit_code == 0, r.output
    assert (empty / INDEX_FILE).is_file()


def test_adb_missing(fake, tmp_path, monkeypatch):
    r = run([tmp_path / "d", "--target", "android", "--package", PKG])
    assert_one_line_error(r, "adb not found", "apt-get install adb", "platform-tools")
    # The Android SDK's copy is found through ANDROID_HOME.
    sdk = tmp_path / "sdk"
    (sdk / "platform-tools").mkdir(parents=True)
    exe = sdk / "platform-tools" / "adb"
    exe.write_text(f"#!{sys.executable}\n{FAKE_ADB}")
    exe.chmod(0o755)
    monkeypatch.setenv("ANDROID_HOME", str(sdk))
    fake.state(devices=[], installed=[], sdcard={})
    assert_one_line_error(run([tmp_path / "d", "--target", "android", "--package", PKG]), "no Android device")


def test_console_script_pulls(fake, tmp_path):
    """The installed `mobilegen` entry point, as a user runs it (a real subprocess)."""
    exe = Path(sys.executable).with_name("mobilegen")
    if not exe.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    fake.tool("adb", FAKE_ADB)
    sdcard = android_device(fake)
    fake.state(devices=[["emulator-5554", "device"]], installed=[PKG], sdcard={"emulator-5554": str(sdcard)})
    env = dict(os.environ, **fake.env)
    r = subprocess.run([str(exe), "pull", str(tmp_path / "d"), "--target", "android", "--project",
                        str(ROOT / "android_sample")], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"pulled dump {NEW}" in r.stdout and same_dump(tmp_path / "d", sdcard / REMOTE[len("/sdcard/"):] / NEW)
    r = subprocess.run([str(exe), "pull", str(tmp_path / "e"), "--target", "android", "--package", PKG],
                       capture_output=True, text=True, env=dict(env, PATH=str(tmp_path / "nothing")), timeout=120)
    assert r.returncode != 0 and r.stderr.startswith("error: adb not found") and len(r.stderr.splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# iOS
# ---------------------------------------------------------------------------------------------


def ios_device(identifier: str, name: str, **connection) -> dict:
    return {"identifier": identifier, "deviceProperties": {"name": name},
            "hardwareProperties": {"platform": "iOS", "reality": "physical", "udid": "00008110-" + identifier[:8]},
            "connectionProperties": {"pairingState": "paired", "tunnelState": "connected", **connection}}


def ios_world(fake: Fake, dumps=(OLD, NEW)) -> Path:
    container = fake.tmp / "container"
    for seed, name in enumerate(dumps):
        write_dump(container / "Documents" / "mobilegen-dumps" / name, seed)
    container.mkdir(exist_ok=True)
    return container


def test_ios_devicectl_copies_the_latest(fake, tmp_path):
    fake.tool("xcrun", FAKE_XCRUN)
    container = ios_world(fake)
    dev = "6A1B2C3D-0000-1111-2222-333344445555"
    fake.state(devices=[ios_device(dev, "iPhone"), ios_device("OLD-PAIRED", "old", tunnelState="unavailable")],
               containers={BUNDLE: str(container)})
    out = tmp_path / "ios"
    r = run([out, "--target", "ios", "--project", ROOT / "ios_sample"])
    assert r.exit_code == 0, r.output
    assert same_dump(out, container / "Documents" / "mobilegen-dumps" / NEW)
    assert f"pulled dump {NEW} of {BUNDLE} from {dev}" in r.stdout and "--model model.tflite" in r.stdout
    calls = fake.calls()
    assert calls[0][:5] == ["xcrun", "devicectl", "list", "devices", "--json-output"]
    copy = calls[1]
    assert copy[:5] == ["xcrun", "devicectl", "device", "copy", "from"]
    assert dict(zip(copy[5::2], copy[6::2])) == {
        "--device": dev, "--domain-type": "appDataContainer", "--domain-identifier": BUNDLE,
        "--source": "Documents/mobilegen-dumps", "--destination": copy[-1]}
    # A named dump, on a named device: one copy of just that folder.
    r = run([tmp_path / "old", "--target", "ios", "--package", BUNDLE, "--serial", dev, "--dump", OLD])
    assert r.exit_code == 0, r.output
    assert same_dump(tmp_path / "old", container / "Documents" / "mobilegen-dumps" / OLD)
    last = fake.calls()[-1]
    assert last[last.index("--source") + 1] == f"Documents/mobilegen-dumps/{OLD}" and len(fake.calls()) == 3


def test_ios_errors(fake, tmp_path):
    r = run([tmp_path / "d", "--target", "ios", "--package", BUNDLE])
    assert_one_line_error(r, "xcrun not found", "Download Container")
    fake.tool("xcrun", FAKE_XCRUN)
    container = ios_world(fake, dumps=())
    fake.state(devices=[], containers={BUNDLE: str(container)})
    assert_one_line_error(run([tmp_path / "d", "--target", "ios", "--package", BUNDLE]), "no iOS device")
    fake.state(devices=[ios_device("A", "one"), ios_device("B", "two")], containers={BUNDLE: str(container)})
    assert_one_line_error(run([tmp_path / "d", "--target", "ios", "--package", BUNDLE]), "2 iOS devices", "--serial")
    (container / "Documents" / "mobilegen-dumps").mkdir(parents=True)
    assert_one_line_error(run([tmp_path / "d", "--target", "ios", "--package", BUNDLE, "--serial", "A"]), "no dumps")
    assert_one_line_error(run([tmp_path / "d", "--target", "ios", "--package", "org.other", "--serial", "A"]),
                          "devicectl could not copy", "org.other")
