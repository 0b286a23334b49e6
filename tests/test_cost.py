"""Every block's declared cost equals what Amaranth elaborates: the flip-flops it emits, the
memories it instantiates, the multipliers its RTLIL holds.  (Yosys's view: test_synth.py.)"""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.back import rtlil

from hw.arith import Reparam, SigmaRom, TaylorSigmoid
from hw.core import VAECore
from hw.cost import BLOCK_RAMS, BlockRam
from hw.dense import Dense, dense_plan
from hw.plan import core_plan
from model.random_artifact import random_artifact
from hw.sampler import GaussianSampler, sampler_plan
from hw.streamutil import RegisterFifo
from model.artifact import DenseSpec
from model.fixed import Fmt, ReparamSpec, sampler_spec, sigma_rom_spec, sigmoid_spec


def elaborated(component) -> dict:
    """Flip-flop bits, memory bits and ``$mul`` cells in ``component``'s RTLIL."""
    text = rtlil.convert(component)
    ffs = sum(int(w) for w in re.findall(r"cell \$dff \S+\n\s+parameter \\WIDTH (\d+)", text))
    memories = sum(int(w) * int(d) for w, d in re.findall(r"memory width (\d+) size (\d+)", text))
    return {"registers": ffs, "memory_bits": memories,
            "multiplies": len(re.findall(r"cell \$mul ", text))}


SIGMOID = sigmoid_spec("taylor5", Fmt(16, 13), Fmt(16, 14))
REPARAM = ReparamSpec(Fmt(16, 10), Fmt(16, 12), Fmt(16, 11), Fmt(16, 10))


@pytest.mark.parametrize("serial,mult_width", [(False, 18), (False, 16), (False, 9), (True, 18),
                                               (True, 9)])
def test_sigmoid(serial, mult_width):
    unit = TaylorSigmoid(SIGMOID, serial=serial, mult_width=mult_width)
    got = elaborated(unit)
    cost = unit.plan.cost()
    assert got["registers"] == cost.registers
    assert got["multiplies"] >= cost.multiplier_blocks  # constant limbs may be shifts
    if serial:
        assert got["multiplies"] == cost.multiplier_blocks == 1


@pytest.mark.parametrize("correction,serial", [("teichroew", False), ("teichroew", True),
                                               ("none", False)])
def test_sampler(correction, serial):
    plan = sampler_plan(sampler_spec(correction), serial=serial, buffer=3, mult_width=16)
    got = elaborated(GaussianSampler(plan))
    assert got["registers"] == plan.cost().registers
    assert got["multiplies"] == plan.cost().multiplier_blocks


@pytest.mark.parametrize("mult_width", [18, 9])
def test_reparam_and_sigma_rom(mult_width):
    assert elaborated(Reparam(REPARAM, mult_width=mult_width))["registers"] == \
        Reparam.cost(REPARAM, mult_width).registers
    rom = sigma_rom_spec(Fmt(16, 10), Fmt(16, 12))
    got = elaborated(SigmaRom(rom))
    assert got["registers"] == SigmaRom.cost(rom).registers
    assert got["memory_bits"] == SigmaRom.cost(rom).memory_bits()


def test_register_fifo():
    assert elaborated(RegisterFifo(5, 16))["registers"] == RegisterFifo.cost(5, 16).registers


@pytest.mark.parametrize("n_in,n_out,lanes,mult_width,block_ram,simd", [
    (5, 7, 3, 18, None, 1), (4, 16, 1, 16, None, 1), (16, 4, 4, 18, None, 1),
    (3, 2, 5, 6, None, 1), (5, 7, 3, 18, BlockRam("tiny", ((8, 8), (2, 32))), 1),
    (40, 16, 1, 16, BLOCK_RAMS["ice40"], 1), (7, 5, 2, 18, None, 3), (6, 4, 4, 9, None, 2),
    (40, 16, 3, 16, BLOCK_RAMS["ice40"], 4)])
def test_dense(n_in, n_out, lanes, mult_width, block_ram, simd):
    spec = DenseSpec("t", n_in, n_out, Fmt(16, 10), Fmt(8, 6), Fmt(16, 10), "relu")
    rng = np.random.default_rng(0)
    plan = dense_plan(spec, lanes, mult_width, block_ram, simd=simd)
    unit = Dense(plan, rng.integers(-128, 128, size=(n_out, n_in)),
                 rng.integers(-100, 100, size=n_out))
    got = elaborated(unit)
    assert got["registers"] == plan.cost().registers
    assert got["memory_bits"] == plan.cost().memory_bits()
    assert got["multiplies"] == plan.cost().multiplier_blocks


@pytest.mark.parametrize("options", [{}, {"serial_sigmoid": True, "serial_sampler": True,
                                          "mult_width": 16}, {"simd": [2, 1, 3, 4]}])
def test_core_adds_up(options):
    plan = core_plan(random_artifact("iris"), [1, 2, 3, 4], **options)
    got = elaborated(VAECore(plan))
    assert got["registers"] == plan.cost().registers
    assert got["memory_bits"] == plan.cost().memory_bits()
