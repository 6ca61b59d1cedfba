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

# System packages only when missing (apt-get needs root, as on CI and the dev machines).
$(STAMP): pyproject.toml
	@if ! $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1; then \
		echo "installing python3-venv"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip; \
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
