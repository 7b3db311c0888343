# Every target sets itself up: a virtual environment in .venv with torch and the
# project's extras.  TORCH_SPEC pins the torch build installed first; pip keeps it
# when it installs the project (pyproject asks for torch>=2.2).  Override it to
# use another build, e.g. `make test TORCH_SPEC="torch==2.14.1"`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,data
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test test-wheel demo bench lint format clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)  ## the parity suite (hypothesis profile: TORCHREF_HYPOTHESIS_PROFILE=ci|dev|thorough)
	$(PY) -m pytest parity_tests

test-wheel: $(STAMP)  ## build the wheel, install it in a new venv, run a user project on it
	TORCHREF_WHEEL_TEST=1 $(PY) -m pytest parity_tests/test_wheel.py

demo: $(STAMP)  ## the side-by-side parity report and a short scratch-vs-torch training run
	$(PY) scripts/demo.py

bench: $(STAMP)  ## scratch vs torch timings (see BENCHMARKS.md)
	$(PY) scripts/bench.py

lint: $(STAMP)
	$(PY) -m ruff check .

format: $(STAMP)
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
