"""`mobilegen generate --target android`: deterministic output, provenance, safe re-runs, and the
committed android_sample/ staying what the generator makes for the demo model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mobilegen.cli.app import app
from tests.harness import require

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "android_sample"
DEMO = REPO / "examples" / "demo"


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    require("tensorflow")
    from tests import models

    buf = models.tflite_model("conv2d", models.BUILDERS["conv2d"], dict(h=9, w=7, cin=3, cout=5, k=3, stride=2), "int8")
    p = tmp_path_factory.mktemp("m") / "m.tflite"
    p.write_bytes(buf)
    return p


def _generate(model: Path, out: Path, *extra: str):
    return CliRunner().invoke(app, ["generate", str(model), "--target", "android", "--out", str(out), *extra])


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_with_provenance(small_model: Path, tmp_path: Path):
    r1 = _generate(small_model, tmp_path / "a", "--package", "org.example.cls")
    r2 = _generate(small_model, tmp_path / "b", "--package", "org.example.cls")
    assert r1.exit_code == 0, r1.output
    assert r2.exit_code == 0, r2.output
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a == b
    prov = json.loads(a["mobilegen.json"])
    assert prov["model_sha256"] == __import__("hashlib").sha256(small_model.read_bytes()).hexdigest()
    assert prov["options"]["package"] == "org.example.cls" and prov["version"]
    assert set(prov["files"]) == set(a) - {"mobilegen.json"}


def test_rerun_refuses_to_overwrite_user_changes(small_model: Path, tmp_path: Path):
    out = tmp_path / "p"
    assert _generate(small_model, out).exit_code == 0
    r = _generate(small_model, out)
    assert r.exit_code == 0 and "created" not in r.output
    readme = out / "README.md"
    readme.write_text(readme.read_text() + "\nmy notes\n")
    r = _generate(small_model, out, "--app-name", "Renamed")
    assert r.exit_code != 0 and "README.md" in r.output and "--force" in r.output
    assert "my notes" in readme.read_text()
    r = _generate(small_model, out, "--app-name", "Renamed", "--dry-run", "--force")
    assert r.exit_code == 0 and "my notes" in readme.read_text()
    r = _generate(small_model, out, "--app-name", "Renamed", "--force")
    assert r.exit_code == 0, r.output
    assert "my notes" not in readme.read_text()


@pytest.mark.parametrize("package", ["com", "com.example.class", "com.1x.app", "com..app", "com.example-app.x"])
def test_invalid_package_is_one_line(small_model: Path, tmp_path: Path, package: str):
    r = _generate(small_model, tmp_path / "p", "--package", package)
    assert r.exit_code != 0
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.output, r.output
    assert not (tmp_path / "p").exists()


def test_label_count_must_match(small_model: Path, tmp_path: Path):
    labels = tmp_path / "labels.txt"
    labels.write_text("only\n")
    r = _generate(small_model, tmp_path / "p", "--labels", str(labels))
    assert r.exit_code != 0 and "labels" in r.output


def test_golden_pair_is_the_simulator_on_the_sample(small_model: Path, tmp_path: Path):
    from mobilegen.plan import build_plan
    from mobilegen.sim.runner import Simulator
    from mobilegen.tflite.reader import read_model_file

    out = tmp_path / "p"
    assert _generate(small_model, out).exit_code == 0
    g = read_model_file(small_model)
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    x = np.frombuffer((out / "sdk/src/androidTest/assets/golden_input0.bin").read_bytes(), t_in.dtype).reshape(t_in.shape)
    y = np.frombuffer((out / "sdk/src/androidTest/assets/golden_output0.bin").read_bytes(), t_out.dtype)
    assert np.array_equal(Simulator(build_plan(g)).run([x])[t_out.index].reshape(-1), y)


def test_android_sample_is_up_to_date(tmp_path: Path):
    """android_sample/ is `make android-sample`: the demo model of examples/demo generated with the
    Makefile's package and app name. Regenerate it and diff every file."""
    makefile = (REPO / "Makefile").read_text()
    package = makefile.split("SAMPLE_PACKAGE := ")[1].split()[0]
    app_name = makefile.split("SAMPLE_APP := ")[1].splitlines()[0].strip()
    out = tmp_path / "android"
    r = _generate(DEMO / "model.tflite", out, "--labels", str(DEMO / "labels.txt"), "--package", package, "--app-name", app_name)
    assert r.exit_code == 0, r.output
    fresh, committed = _tree(out), _tree(SAMPLE)
    assert sorted(fresh) == sorted(committed), "file lists differ: regenerate with `make android-sample`"
    changed = [p for p in fresh if fresh[p] != committed[p]]
    assert not changed, f"android_sample is stale ({changed[:5]}); regenerate it with `make android-sample`"


@pytest.mark.parametrize("package,rule", [
    ("", "it is empty"),
    ("com", "it has one segment"),
    ("com..app", "segment 2 is empty"),
    ("com.example.", "segment 3 is empty"),
    ("com.1x.app", "segment '1x' starts with a digit"),
    ("com._x.app", "segment '_x' starts with '_'"),
    ("com.example-app.x", "segment 'example-app' holds '-'"),
    ("com.ex ample", "segment 'ex ample' holds ' '"),
    ("com.example.class", "segment 'class' is a Java keyword"),
    ("com.example.true", "segment 'true' is a Java keyword"),
])
def test_invalid_package_names_the_rule(small_model: Path, tmp_path: Path, package: str, rule: str):
    r = _generate(small_model, tmp_path / "p", "--package", package)
    assert r.exit_code != 0 and rule in r.output, r.output
    assert len([ln for ln in r.output.splitlines() if ln.strip()]) == 1


@pytest.mark.parametrize("name,rule", [
    ("", "it is empty"),
    ("Flowers", "must start with a lowercase ASCII letter"),
    ("9lives", "must start with a lowercase ASCII letter"),
    ("my-sdk", "character '-' is not allowed"),
    ("a" * 65, "at most 64"),
    ("log", "reserved"),
    ("mobilegen_engine", "reserved"),
])
def test_invalid_sdk_name_names_the_rule(small_model: Path, tmp_path: Path, name: str, rule: str):
    r = _generate(small_model, tmp_path / "p", "--name", name)
    assert r.exit_code != 0 and rule in r.output and "--name" in r.output, r.output
    assert not (tmp_path / "p").exists()


def test_builds_as_delivered_wrapper_is_executable(small_model: Path, tmp_path: Path):
    import hashlib
    import os
    import stat

    from mobilegen.targets.android_files import GRADLE_WRAPPER_JAR_SHA256

    out = tmp_path / "p"
    assert _generate(small_model, out).exit_code == 0
    for rel in ("gradlew", "gradlew.bat", "gradle/wrapper/gradle-wrapper.jar", "gradle/wrapper/gradle-wrapper.properties",
                "gradle/wrapper/LICENSE", "gradle/wrapper/NOTICE"):
        assert (out / rel).is_file(), rel
    assert os.stat(out / "gradlew").st_mode & stat.S_IXUSR
    assert hashlib.sha256((out / "gradle/wrapper/gradle-wrapper.jar").read_bytes()).hexdigest() == GRADLE_WRAPPER_JAR_SHA256
    assert b"\r\n" in (out / "gradlew.bat").read_bytes()
    # A re-run finds everything identical and keeps the executable bit.
    r = _generate(small_model, out)
    assert r.exit_code == 0 and "updated" not in r.output
    assert os.stat(out / "gradlew").st_mode & stat.S_IXUSR
    # The committed sample is executable in git, too.
    ls = __import__("subprocess").run(["git", "ls-files", "-s", "android_sample/gradlew"], cwd=REPO,
                                      capture_output=True, text=True).stdout
    assert ls == "" or ls.startswith("100755 "), ls


def test_two_projects_share_no_app_paths(small_model: Path, tmp_path: Path):
    """Two SDKs generated from one model with different packages (one with --name): the paths an
    app merges from each SDK (assets, Java classes, the native library target) are disjoint."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert _generate(small_model, a, "--package", "com.example.flowers").exit_code == 0
    assert _generate(small_model, b, "--package", "org.acme.birds", "--name", "birds").exit_code == 0
    merged: dict[str, str] = {}
    for out, name in ((a, "com_example_flowers"), (b, "birds")):
        prov = json.loads((out / "mobilegen.json").read_text())
        assert prov["options"]["name"] == name
        tree = _tree(out)
        assets = sorted(p for p in tree if p.startswith("sdk/src/main/assets/"))
        assert assets and all(p.startswith(f"sdk/src/main/assets/{name}/") for p in assets), assets
        java = [p for p in tree if p.startswith("sdk/src/main/java/")]
        cmake = tree["sdk/src/main/cpp/jni/CMakeLists.txt"].decode()
        assert f"add_library({name} SHARED" in cmake
        for key in [p.replace("sdk/src/main/", "") for p in assets + java] + [f"lib{name}.so"]:
            assert key not in merged, f"{key} comes from both SDKs"
            merged[key] = name
