# Two commands on a fresh Debian/Ubuntu machine: `make demo` and `make test`.
# Each installs what it needs (idempotently) through `make setup`.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := demo_out
# Under CI=true (2 cores) and locally: one pytest worker per core.
JOBS   ?= auto

.PHONY: setup demo test test-fast bench clean

setup: $(STAMP)

# Debian packages the tests and `verify` need: a C++ toolchain and CMake for the generated engine,
# Mesa's EGL + GLES 3.1 (llvmpipe) to run it headless, glslang to validate shaders, a JDK and the
# Android NDK-style headers (log, asset manager, bitmap) to compile the Java and JNI sources.
APT_PACKAGES := python3-venv python3-pip g++ cmake libegl-dev libgles-dev libegl-mesa0 \
	libgl1-mesa-dri glslang-tools default-jdk-headless android-liblog-dev \
	android-platform-frameworks-native-headers

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

demo: setup
	$(PY) -m mobilegen.convert.demo --out $(DEMO)
	$(VENV)/bin/mobilegen inspect $(DEMO)/model.tflite
	$(VENV)/bin/mobilegen simulate $(DEMO)/model.tflite --input $(DEMO)/sample.png \
		--labels $(DEMO)/labels.txt --top 5 --output $(DEMO)/sim_output.npy --dump-dir $(DEMO)/sim
	$(VENV)/bin/mobilegen compare $(DEMO)/sim $(DEMO)/reference

test: setup
	$(PY) -m pytest -n $(JOBS) -q

test-fast: setup
	$(PY) -m pytest -n $(JOBS) -q -m "not slow"

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(DEMO) tests/.model_cache .pytest_cache
