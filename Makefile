# Every target sets itself up: a virtual environment in .venv with torch and the
# project's extras.  TORCH_SPEC (one or more pip requirements) is installed first; pip
# keeps it when it installs the project (pyproject asks for torch>=2.2).
#
# The spec in force is recorded in $(VENV)/.torch-spec.  Giving TORCH_SPEC (on the
# command line or in the environment) that differs from the record reinstalls it, e.g.
# `make setup TORCH_SPEC="torch==2.14.1"`; later targets without TORCH_SPEC keep the
# recorded one (so `make test` does not undo it); back to the default:
# `make setup TORCH_SPEC="torch==2.13.0"`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC_DEFAULT := torch==2.13.0
# torchvision is built against one torch release: 0.29.1 needs torch 2.14.1 (PyPI's CUDA
# build; the CPU torch 2.13.0 above cannot load PyPI's torchvision).  `make setup-vision`
# installs the pair: 21 wheels, 3 GB (torch with its CUDA libraries, measured here).
VISION_SPEC ?= torch==2.14.1 torchvision==0.29.1
EXTRAS ?= dev,data
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SPEC_FILE := $(VENV)/.torch-spec
ifeq ($(origin TORCH_SPEC),undefined)
TORCH_SPEC := $(or $(shell cat $(SPEC_FILE) 2>/dev/null),$(TORCH_SPEC_DEFAULT))
endif
# each requirement quoted for the shell (a spec such as torch>=2.2 holds a '>')
QUOTED_SPEC := $(foreach r,$(TORCH_SPEC),'$(r)')

.PHONY: setup setup-vision test test-wheel demo bench lint format clean FORCE

# Rewritten only when the spec changes, so that the stamp below is out of date exactly then.
$(SPEC_FILE): FORCE
	@mkdir -p $(VENV)
	@if [ "$$(cat $@ 2>/dev/null)" != "$(strip $(TORCH_SPEC))" ]; then \
	  echo "torch spec: $(strip $(TORCH_SPEC))"; echo "$(strip $(TORCH_SPEC))" > $@; fi

$(STAMP): pyproject.toml Makefile $(SPEC_FILE)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(QUOTED_SPEC)
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	@$(PY) -m pip check >/dev/null || { $(PY) -m pip check; echo "warning: the packages \
	above do not match the torch just installed ($(strip $(TORCH_SPEC))); for torchvision \
	run: make setup-vision"; }
	touch $(STAMP)

setup: $(STAMP)

setup-vision:  ## torch and torchvision as a matching pair (VISION_SPEC; a 3 GB download)
	$(MAKE) setup TORCH_SPEC="$(VISION_SPEC)"

test: $(STAMP)  ## the parity suite (hypothesis profile: TORCHREF_HYPOTHESIS_PROFILE=ci|dev|thorough)
	$(PY) -m pytest parity_tests

test-wheel: $(STAMP)  ## build the wheel, install it in a new venv, run a user project on it
	TORCHREF_WHEEL_TEST=1 $(PY) -m pytest parity_tests/test_wheel.py

demo: $(STAMP)  ## the side-by-side parity report and a short scratch-vs-torch training run
	$(PY) scripts/demo.py

bench: $(STAMP)  ## scratch vs torch timings (see BENCHMARKS.md); BENCH_ARGS=--quick for a short run
	$(PY) scripts/bench.py $(BENCH_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

format: $(STAMP)
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
