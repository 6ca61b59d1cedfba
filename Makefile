# Two commands on a fresh Debian/Ubuntu machine: `make demo` and `make test`.
# Each installs what it needs (idempotently) through `make setup`.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := demo_out
SAMPLE_PACKAGE := com.example.mobilegen.demo
SAMPLE_APP := Mobilegen Demo
# Under CI=true (2 cores) and locally: one pytest worker per core.
JOBS   ?= auto

.PHONY: setup demo test test-fast bench clean android-sample ios-sample demo-model

setup: $(STAMP)

# Debian packages the tests and `verify` need: a C++ toolchain and CMake for the generated engine,
# Mesa's EGL + GLES 3.1 (llvmpipe) to run it headless, glslang to validate shaders, a JDK and the
# Android NDK-style headers (log, asset manager, bitmap) to compile the Java and JNI sources, and
# the aarch64 / armv7 cross g++ and qemu-user to build the engine for Arm Linux and run it
# (`verify --arch`, tests/test_arm.py); for the iOS target, clang-19 to compile the generated Metal
# kernels as C++ against the project's shim (`verify` of an iOS project) and GNUstep's Foundation to
# syntax-check the Objective-C sources (gnustep-base-runtime: plget, to read back pbxproj strings); chromium, headless, to render the
# verification report (tests/test_report.py).
APT_PACKAGES := python3-venv python3-pip g++ cmake libegl-dev libgles-dev libegl-mesa0 \
	libgl1-mesa-dri glslang-tools default-jdk-headless android-liblog-dev \
	android-platform-frameworks-native-headers \
	g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user \
	clang-19 libgnustep-base-dev gnustep-make libblocksruntime-dev gnustep-base-runtime \
	chromium

# System packages only when missing (apt-get needs root, as on CI and the dev machines).
$(STAMP): pyproject.toml
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,verify,test]'
	@touch $(STAMP)

# The main job end to end: `mobilegen build` on the built-in dataset (examples/builtin/mobilegen.toml):
# train MobileNet V1 0.25 / 128 from scratch, convert to float32 and int8, evaluate both on the
# validation split, generate the Android and iOS projects, verify their engines here (CPU fallback,
# Mesa's GLES 3.1, the Metal kernels on the host executor) against the simulator, and print a summary.
demo: setup
	$(VENV)/bin/mobilegen build examples/builtin/mobilegen.toml --out $(DEMO)

# android_sample/ is the project generated for the demo model (examples/demo/, committed so the
# sample does not depend on TensorFlow's build of the model); tests regenerate it and diff.
android-sample: setup
	$(VENV)/bin/mobilegen generate examples/demo/model.tflite --target android --out android_sample \
		--labels examples/demo/labels.txt --package $(SAMPLE_PACKAGE) --app-name "$(SAMPLE_APP)" --force

# ios_sample/ is the iOS project generated for the same demo model (same app name, the package as
# bundle id); tests/test_ios_project.py regenerates it and diffs.
ios-sample: setup
	$(VENV)/bin/mobilegen generate examples/demo/model.tflite --target ios --out ios_sample \
		--labels examples/demo/labels.txt --bundle-id $(SAMPLE_PACKAGE) --app-name "$(SAMPLE_APP)" --force

# Rebuild examples/demo/ from scratch with TensorFlow (then run `make android-sample`).
demo-model: setup
	$(PY) -m mobilegen.convert.demo --out examples/demo
	rm -rf examples/demo/reference examples/demo/input.npy

test: setup
	$(PY) -m pytest -n $(JOBS) -q

test-fast: setup
	$(PY) -m pytest -n $(JOBS) -q -m "not slow"

bench: setup
	$(PY) benchmarks/run.py
	$(PY) benchmarks/engine.py
	$(PY) benchmarks/ios.py
	$(PY) benchmarks/train.py
	$(PY) benchmarks/evaluate.py
	$(PY) benchmarks/demo.py
	$(PY) benchmarks/dataset.py

clean:
	rm -rf $(DEMO) tests/.model_cache .pytest_cache
