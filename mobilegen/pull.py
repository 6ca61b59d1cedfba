"""`mobilegen pull`: fetch a tensor dump that a generated sample app wrote on a device.

The sample apps' "Dump tensors" switch runs the classification through the SDK's debug call
(Android `Classifier.runDebug`, iOS `-[MGClassifier classifyImage:dumpDirectory:error:]`), which
writes DESIGN.md's dump format (`<tensor index>.npy` for the graph inputs and every tensor an
operator writes, plus `tensors.json`) into a folder named by the time of the run:

    Android  getExternalFilesDir(null)/mobilegen-dumps/<yyyyMMdd-HHmmss>/
             = /sdcard/Android/data/<application id>/files/mobilegen-dumps/<name>  (adb, no root)
    iOS      <app container>/Documents/mobilegen-dumps/<yyyyMMdd-HHmmss>/

Android: adb lists the dumps and pulls one (the latest by default: the names sort by time).
iOS: `xcrun devicectl device copy from --domain-type appDataContainer` (macOS, Xcode 15 or later)
copies the app's dumps; elsewhere the README's step-by-step route (Xcode's Download Container)
is the way. Either way the dump lands in DIR only once it reads back as a complete dump
(`mobilegen.dump.read_dump`: tensors.json present, every tensor it lists there).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mobilegen.dump import INDEX_FILE, read_dump
from mobilegen.errors import UserInputError
from mobilegen.targets.writer import PROVENANCE

DUMPS_DIR = "mobilegen-dumps"
# Where getExternalFilesDir(null) is for the shell user (adb): the primary external storage.
ANDROID_DUMPS = "/sdcard/Android/data/{package}/files/" + DUMPS_DIR
IOS_DUMPS = "Documents/" + DUMPS_DIR
DOCS = "the iOS project's README.md ('Tensor dumps from a device') and mobilegen's README ('Dumps from a device')"
# Dump names the apps write (yyyyMMdd-HHmmss, "-2"... when two runs share a second) and --dump
# accepts: nothing a device shell would interpret.
DUMP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Android application ids and iOS bundle ids: letters, digits, '_', '-' and dots.
APP_ID = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")
ADB_TIMEOUT_S = 600


@dataclass
class Pulled:
    """What `pull` fetched: the dump's name on the device, the device, the app, where it went,
    the tensors tensors.json lists and the unlisted graph inputs (`<index>.npy` files)."""

    name: str
    device: str
    app_id: str
    directory: Path
    tensors: int
    inputs: list[int] = field(default_factory=list)
    bytes: int = 0
    model: str | None = None  # the model the project was generated from (its provenance), if known

    def summary(self) -> str:
        inputs = f" and graph input{'s' if len(self.inputs) != 1 else ''} " + ", ".join(f"#{i}" for i in self.inputs) \
            if self.inputs else " (no graph input tensors: an SDK older than the dump switch?)"
        model = self.model or "MODEL.tflite"
        return (f"pulled dump {self.name} of {self.app_id} from {self.device} into {self.directory}: "
                f"{self.tensors} tensors{inputs}, {self.bytes:,} bytes\n"
                f"next: mobilegen compare {self.directory} simulator --model {model}")


# ---------------------------------------------------------------------------------------------
# The app id: given, or read from a generated project
# ---------------------------------------------------------------------------------------------


def _provenance(project: Path) -> dict:
    p = project / PROVENANCE
    if not p.is_file():
        raise UserInputError(f"{project}: not a generated project (no {PROVENANCE}); pass --package instead")
    try:
        return json.loads(p.read_text())
    except ValueError as e:
        raise UserInputError(f"{p}: not a mobilegen provenance file ({e})") from None


def project_app_id(project: Path, target: str) -> tuple[str, str | None]:
    """(the sample app's id, the model file name) of a project that `generate` wrote: Android's
    applicationId from app/build.gradle.kts (what is installed), iOS's bundle id from mobilegen.json."""
    project = Path(project)
    options = _provenance(project).get("options", {})
    model = options.get("model")
    if options.get("target") not in (None, target):
        raise UserInputError(f"{project}: a generated {options['target']} project, not {target}; "
                             f"pass --target {options['target']} or the {target} project")
    if target == "android":
        gradle = project / "app" / "build.gradle.kts"
        if not gradle.is_file():
            raise UserInputError(f"{project}: no app/build.gradle.kts (not an Android project); pass --package instead")
        m = re.search(r'^\s*applicationId\s*=\s*"([^"\\]+)"', gradle.read_text(), re.M)
        if m is None:
            raise UserInputError(f"{gradle}: no applicationId = \"...\" line; pass --package instead")
        return m.group(1), model
    bundle = options.get("bundle_id")
    if not bundle:
        raise UserInputError(f"{project / PROVENANCE}: records no bundle_id; pass --package (the app's bundle id) instead")
    return bundle, model


def _check_app_id(app_id: str, what: str) -> str:
    if not APP_ID.match(app_id):
        raise UserInputError(f"{what} {app_id!r}: expected an app id like com.example.app (letters, digits, '_', '-', dots)")
    return app_id


def _check_dump_name(name: str) -> str:
    if not DUMP_NAME.match(name) or name in (".", ".."):
        raise UserInputError(f"--dump {name!r}: expected a dump folder name such as 20260102-030405")
    return name


def _check_destination(directory: Path) -> Path:
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UserInputError(f"{directory}: exists and is not an empty directory; pull into a new one")
    return directory


# ---------------------------------------------------------------------------------------------
# Running the device tools
# ---------------------------------------------------------------------------------------------


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=ADB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserInputError(f"{what}: `{' '.join(cmd)}` did not finish within {ADB_TIMEOUT_S} s") from None
    except OSError as e:
        raise UserInputError(f"{what}: cannot run {cmd[0]} ({e.strerror or e})") from None


def _last_line(res: subprocess.CompletedProcess) -> str:
    lines = [ln.strip() for ln in (res.stderr + "\n" + res.stdout).splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit status {res.returncode}"


def find_adb() -> str:
    """adb on PATH, else in the Android SDK named by ANDROID_HOME / ANDROID_SDK_ROOT."""
    found = shutil.which("adb")
    if found:
        return found
    for var in ("ANDROID_HOME", "ANDROID_SDK_ROOT"):
        root = os.environ.get(var)
        if root and os.access(Path(root) / "platform-tools" / "adb", os.X_OK):
            return str(Path(root) / "platform-tools" / "adb")
    raise UserInputError("adb not found: install Debian's adb package (apt-get install adb) or the Android SDK's "
                         "platform-tools (sdkmanager platform-tools), and put adb on PATH")


def adb_devices(adb: str) -> list[tuple[str, str]]:
    """(serial, state) of every device `adb devices` lists: state "device" when usable, else
    e.g. "unauthorized", "offline", "no permissions (...)"."""
    res = _run([adb, "devices"], "adb devices")
    if res.returncode != 0:
        raise UserInputError(f"adb devices failed: {_last_line(res)}")
    devices = []
    for line in res.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith(("List of devices", "*")):
            continue  # the header, and "* daemon started successfully" noise
        serial, _, state = line.partition("\t") if "\t" in line else line.partition(" ")
        devices.append((serial.strip(), state.strip() or "unknown"))
    return devices


def _state_error(serial: str, state: str) -> UserInputError:
    if state == "unauthorized":
        return UserInputError(f"device {serial} is unauthorized: unlock it and accept the 'Allow USB debugging' "
                              "prompt, then run pull again")
    if state.startswith("no permissions"):
        return UserInputError(f"device {serial}: adb has no permission to open it ({state}); add a udev rule for it "
                              "(Debian: the android-sdk-platform-tools-common package)")
    return UserInputError(f"device {serial} is {state}, not ready: reconnect it (adb reconnect) and run pull again")


def pick_android_device(devices: list[tuple[str, str]], serial: str | None) -> str:
    if serial is not None:
        states = dict(devices)
        if serial not in states:
            listed = ", ".join(s for s, _ in devices) or "none"
            raise UserInputError(f"--serial {serial}: adb lists no such device (devices: {listed})")
        if states[serial] != "device":
            raise _state_error(serial, states[serial])
        return serial
    if not devices:
        raise UserInputError("no Android device: adb devices lists none; connect one with USB debugging on "
                             "(Settings > Developer options), or start an emulator")
    if len(devices) > 1:
        listed = ", ".join(f"{s} ({st})" for s, st in devices)
        raise UserInputError(f"{len(devices)} Android devices attached ({listed}): pick one with --serial")
    only, state = devices[0]
    if state != "device":
        raise _state_error(only, state)
    return only


def _dump_sizes(directory: Path) -> tuple[int, list[int], int]:
    """(tensors tensors.json lists, unlisted graph-input indices, total bytes) of a complete dump;
    raises UserInputError when it is not one."""
    if not (directory / INDEX_FILE).is_file():
        raise UserInputError(f"{directory}: the fetched dump has no {INDEX_FILE}: not a complete mobilegen dump "
                             "(was the app still writing it?)")
    records, _ = read_dump(directory)  # every listed <index>.npy present and readable
    listed = {int(r["index"]) for r in records}
    extra = sorted(int(p.stem) for p in directory.glob("*.npy") if p.stem.isdigit() and int(p.stem) not in listed)
    size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    return len(records), extra, size


def _settle(fetched: Path, name: str, destination: Path) -> Path:
    """The dump folder inside what a tool fetched (`fetched/<name>` or `fetched` itself), checked,
    then moved to `destination`."""
    source = fetched / name if (fetched / name).is_dir() else fetched
    _dump_sizes(source)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists():
        destination.rmdir()  # empty: checked before fetching
    shutil.move(str(source), str(destination))
    return destination


# ---------------------------------------------------------------------------------------------
# Android
# ---------------------------------------------------------------------------------------------


def list_android_dumps(adb: str, serial: str, package: str) -> list[str]:
    """The dump folders of `package`'s app on the device, oldest first (the names sort by time)."""
    installed = _run([adb, "-s", serial, "shell", "pm", "path", package], "adb shell pm path")
    if "package:" not in installed.stdout:
        raise UserInputError(f"{package} is not installed on {serial} (adb shell pm path {package} finds nothing); "
                             "install the sample app first (./gradlew installDebug)")
    remote = ANDROID_DUMPS.format(package=package)
    res = _run([adb, "-s", serial, "shell", "ls", "-1", remote], "adb shell ls")
    text = (res.stdout + res.stderr).strip()
    if res.returncode != 0 or "No such file" in text:
        if "No such file" in text or not text:
            return []
        raise UserInputError(f"cannot list {remote} on {serial}: {_last_line(res)}")
    return sorted(n.strip() for n in res.stdout.splitlines() if n.strip() and DUMP_NAME.match(n.strip()))


def pull_android(directory: Path, package: str, serial: str | None = None, dump: str | None = None,
                 model: str | None = None) -> Pulled:
    directory = _check_destination(directory)
    _check_app_id(package, "--package")
    if dump is not None:
        _check_dump_name(dump)
    adb = find_adb()
    serial = pick_android_device(adb_devices(adb), serial)
    names = list_android_dumps(adb, serial, package)
    remote = ANDROID_DUMPS.format(package=package)
    if not names:
        raise UserInputError(f"no dumps of {package} on {serial} ({remote} is empty or missing): turn on "
                             "'Dump tensors' in the app and classify a picture")
    if dump is None:
        name = names[-1]  # the latest
    elif dump in names:
        name = dump
    else:
        raise UserInputError(f"--dump {dump}: no such dump of {package} on {serial}; there are: {', '.join(names)}")
    with tempfile.TemporaryDirectory(prefix=".mobilegen-pull-", dir=_temp_parent(directory)) as tmp:
        res = _run([adb, "-s", serial, "pull", f"{remote}/{name}", tmp], "adb pull")
        if res.returncode != 0:
            raise UserInputError(f"adb pull {remote}/{name} failed: {_last_line(res)}")
        _settle(Path(tmp), name, directory)
    tensors, inputs, size = _dump_sizes(directory)
    return Pulled(name, serial, package, directory, tensors, inputs, size, model)


def _temp_parent(directory: Path) -> Path:
    """Fetch next to the destination, so the final move is a rename on the same file system."""
    parent = Path(directory).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


# ---------------------------------------------------------------------------------------------
# iOS
# ---------------------------------------------------------------------------------------------


def ios_devices(xcrun: str) -> list[tuple[str, str]]:
    """(identifier, name) of every paired physical iOS device devicectl can reach now."""
    with tempfile.TemporaryDirectory(prefix="mobilegen-devicectl-") as tmp:
        out = Path(tmp) / "devices.json"
        res = _run([xcrun, "devicectl", "list", "devices", "--json-output", str(out)], "xcrun devicectl list devices")
        if res.returncode != 0 or not out.is_file():
            raise UserInputError(f"xcrun devicectl list devices failed: {_last_line(res)} (devicectl needs Xcode 15 "
                                 f"or later; else see {DOCS})")
        try:
            listed = json.loads(out.read_text()).get("result", {}).get("devices", [])
        except ValueError as e:
            raise UserInputError(f"xcrun devicectl list devices: unreadable JSON ({e})") from None
    found = []
    for d in listed:
        hardware, connection = d.get("hardwareProperties", {}), d.get("connectionProperties", {})
        if hardware.get("platform", "iOS") != "iOS" or hardware.get("reality", "physical") != "physical":
            continue
        if connection.get("pairingState", "paired") != "paired" or connection.get("tunnelState") == "unavailable":
            continue
        found.append((str(d.get("identifier", "")), str(d.get("deviceProperties", {}).get("name", ""))))
    return found


def pull_ios(directory: Path, bundle_id: str, device: str | None = None, dump: str | None = None,
             model: str | None = None) -> Pulled:
    directory = _check_destination(directory)
    _check_app_id(bundle_id, "--package")
    if dump is not None:
        _check_dump_name(dump)
    xcrun = shutil.which("xcrun")
    if xcrun is None:
        raise UserInputError("xcrun not found: --target ios pulls with Xcode's devicectl (macOS, Xcode 15+); without it "
                             "use Xcode's Window > Devices and Simulators > Download Container, step by step in "
                             + DOCS)
    if device is None:
        devices = ios_devices(xcrun)
        if not devices:
            raise UserInputError("no iOS device: devicectl lists no paired device that is connected; connect and "
                                 "unlock one (Xcode > Window > Devices and Simulators shows it)")
        if len(devices) > 1:
            listed = ", ".join(f"{i} ({n})" for i, n in devices)
            raise UserInputError(f"{len(devices)} iOS devices attached ({listed}): pick one with --serial")
        device = devices[0][0]
    source = IOS_DUMPS if dump is None else f"{IOS_DUMPS}/{dump}"
    with tempfile.TemporaryDirectory(prefix=".mobilegen-pull-", dir=_temp_parent(directory)) as tmp:
        fetched = Path(tmp) / "fetched"  # devicectl will not overwrite: a destination that does not exist
        cmd = [xcrun, "devicectl", "device", "copy", "from", "--device", device,
               "--domain-type", "appDataContainer", "--domain-identifier", bundle_id,
               "--source", source, "--destination", str(fetched)]
        res = _run(cmd, "xcrun devicectl device copy from")
        if res.returncode != 0 or not fetched.exists():
            raise UserInputError(f"devicectl could not copy {source} of {bundle_id} from {device}: {_last_line(res)} "
                                 "(is the app installed, and has 'Dump tensors' written a dump?)")
        if dump is None:
            # The whole mobilegen-dumps folder came over: take its latest dump.
            root = fetched / DUMPS_DIR if (fetched / DUMPS_DIR).is_dir() else fetched
            names = sorted(p.name for p in root.iterdir() if p.is_dir() and DUMP_NAME.match(p.name))
            if not names:
                raise UserInputError(f"no dumps of {bundle_id} on {device} ({IOS_DUMPS} is empty): turn on "
                                     "'Dump tensors' in the app and classify a picture")
            name = names[-1]
            _settle(root, name, directory)
        else:
            name = dump
            _settle(fetched, name, directory)
    tensors, inputs, size = _dump_sizes(directory)
    return Pulled(name, device, bundle_id, directory, tensors, inputs, size, model)


def pull(directory: Path, target: str, package: str | None = None, project: Path | None = None,
         serial: str | None = None, dump: str | None = None) -> Pulled:
    """The command: the app id from --package or --project, then the target's route."""
    if (package is None) == (project is None):
        raise UserInputError("pass one of --package (the app's id) and --project (the generated project)")
    model = None
    if project is not None:
        package, model = project_app_id(Path(project), target)
    if target == "android":
        return pull_android(Path(directory), package, serial, dump, model)
    if target == "ios":
        return pull_ios(Path(directory), package, serial, dump, model)
    raise UserInputError(f"--target {target}: expected android or ios")
