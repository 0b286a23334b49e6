"""hw.arith / hw.sampler blocks against model.fixed, bit for bit, in Amaranth's simulator.

Every stream test drives random valid gaps and ready stalls and compares the
whole transferred sequence (so a lost, duplicated or reordered payload fails
as surely as a wrong bit).
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator

from hw.arith import OddPolyUnit, Reparam, SigmaRom, Span, TaylorSigmoid
from hw.sampler import GaussianSampler
from hw.verilog import convert as to_verilog
from model.fixed import (
    LFSR_BANK, Fmt, eps_from_uniforms, lfsr_step, odd_poly, reparam, sampler_spec, saturate,
    sigma_rom_contents, sigma_rom_index, sigma_rom_spec, sigmoid, sigmoid_spec,
)
from model.golden import Sampler
from sim.pysim import run_stream

KINDS = ("taylor5", "minimax5")


def ints(a) -> list[int]:
    return [int(v) for v in np.asarray(a).ravel()]


def fmt_edges(fmt: Fmt) -> list[int]:
    return [fmt.min_int, fmt.min_int + 1, -1, 0, 1, fmt.max_int - 1, fmt.max_int]


def measure_latency(dut, payload) -> int:
    """Clock edges from the transfer of one input to the edge where ``o.valid`` is first seen."""
    result = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.payload, payload)
        ctx.set(dut.i.valid, 1)
        await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)
        for cycles in range(1, 50):
            if ctx.get(dut.o.valid):
                result.append(cycles)
                return
            await ctx.tick()
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return result[0]


# --------------------------------------------------------------------------
# Sigmoid


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("in_fmt,out_fmt", [(Fmt(8, 4), Fmt(8, 6)), (Fmt(8, 5), Fmt(9, 7))])
def test_sigmoid_exhaustive_small(kind, in_fmt, out_fmt):
    spec = sigmoid_spec(kind, in_fmt, out_fmt)
    xs = list(range(in_fmt.min_int, in_fmt.max_int + 1))
    expected = ints(sigmoid(np.array(xs), spec))
    got = run_stream(TaylorSigmoid(spec), xs, rng=random.Random(1), p_gap=0.2, p_stall=0.2)
    assert got == expected
    # the input clamp is exercised: everything beyond +-clamp_int maps like +-clamp_int
    c = spec.clamp_int
    assert got[0] == got[xs.index(-c)] and got[-1] == got[xs.index(c)]
    assert 0 <= min(got) and max(got) <= spec.one_int


@pytest.mark.parametrize("kind", KINDS)
def test_sigmoid_16bit_random_and_edges(kind):
    in_fmt, out_fmt = Fmt(16, 10), Fmt(16, 14)
    spec = sigmoid_spec(kind, in_fmt, out_fmt)
    rng = random.Random(2)
    c = spec.clamp_int
    edges = fmt_edges(in_fmt) + [c - 1, c, c + 1, -c - 1, -c, -c + 1]
    # random over the full range and, denser, over the polynomial's own interval
    xs = edges + [rng.randint(in_fmt.min_int, in_fmt.max_int) for _ in range(1500)] \
        + [rng.randint(-c - 2, c + 2) for _ in range(2500)]
    expected = ints(sigmoid(np.array(xs), spec))
    got = run_stream(TaylorSigmoid(spec), xs, rng=rng, p_gap=0.25, p_stall=0.25)
    assert got == expected


@pytest.mark.parametrize("kind", KINDS)
def test_sigmoid_full_throughput(kind):
    """No gaps, no stalls: n results in n + latency cycles (one per clock)."""
    spec = sigmoid_spec(kind, Fmt(16, 10), Fmt(16, 14))
    dut = TaylorSigmoid(spec)
    assert measure_latency(dut, 0) == dut.latency == 6
    xs = list(range(-400, 400, 7))
    cycles = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        got = []
        for t in range(len(xs) + dut.latency):
            ctx.set(dut.i.valid, t < len(xs))
            ctx.set(dut.i.payload, xs[t] if t < len(xs) else 0)
            _, _, iready, ovalid, op = await ctx.tick().sample(dut.i.ready, dut.o.valid,
                                                               dut.o.payload)
            assert iready
            if ovalid:
                got.append(op)
        cycles.append(got)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert cycles[0] == ints(sigmoid(np.array(xs), spec))


# --------------------------------------------------------------------------
# Odd polynomial unit on its own (Teichroew's polynomial; inputs beyond its design range)


@pytest.mark.parametrize("out_shape", [None, signed(16), signed(12)])
def test_odd_poly_unit(out_shape):
    poly = sampler_spec("teichroew").poly
    dut = OddPolyUnit(poly, signed(16), out_shape)
    assert dut.latency == len(poly.coeffs_int) + 1
    out_span = Span.of_shape(dut.out_shape)
    rng = random.Random(3)
    xs = fmt_edges(Fmt(16, 0)) + [24570, -24570, 24571, -24571] \
        + [rng.randint(-32768, 32767) for _ in range(800)]
    expected = [min(max(odd_poly(x, poly), out_span.lo), out_span.hi) for x in xs]
    got = run_stream(dut, xs, rng=rng, p_gap=0.3, p_stall=0.3)
    assert got == expected
    if out_shape is None:  # the derived shape holds every result and is tight
        full = [odd_poly(x, poly) for x in (-32768, 32767)]
        assert out_span.lo <= min(full) and max(full) <= out_span.hi
        assert dut.out_shape.width == max(Span(min(full), max(full)).shape().width, 2)
    else:
        assert min(got) == out_span.lo and max(got) == out_span.hi  # saturation exercised


# --------------------------------------------------------------------------
# sigma ROM


@pytest.mark.parametrize("logvar_fmt,sigma_fmt", [
    (Fmt(8, 3), Fmt(8, 4)),      # index_frac > logvar frac: the index shifts left
    (Fmt(10, 7), Fmt(10, 6)),    # 1 bit of rounding
])
def test_sigma_rom_exhaustive(logvar_fmt, sigma_fmt):
    spec = sigma_rom_spec(logvar_fmt, sigma_fmt)
    rom = sigma_rom_contents(spec)
    xs = list(range(logvar_fmt.min_int, logvar_fmt.max_int + 1))
    expected = ints(rom[sigma_rom_index(np.array(xs), spec)])
    got = run_stream(SigmaRom(spec), xs, rng=random.Random(4), p_gap=0.2, p_stall=0.2)
    assert got == expected


def test_sigma_rom_16bit_edges_and_random():
    spec = sigma_rom_spec(Fmt(16, 10), Fmt(16, 12))
    rom = sigma_rom_contents(spec)
    one = 1 << spec.sigma_fmt.frac
    lo, hi = spec.lo_int, spec.hi_int
    edges = fmt_edges(spec.logvar_fmt) + [lo - 1, lo, lo + 1, hi - 1, hi, hi + 1]
    rng = random.Random(5)
    xs = edges + [rng.randint(-32768, 32767) for _ in range(300)] \
        + [rng.randint(lo - 50, hi + 50) for _ in range(900)]
    index = sigma_rom_index(np.array(xs), spec)
    expected = ints(rom[index])
    dut = SigmaRom(spec)
    assert measure_latency(dut, 0) == dut.latency == 1
    got = run_stream(dut, xs, rng=rng, p_gap=0.3, p_stall=0.3)
    assert got == expected
    # the clamp hits both ends of the table, and logvar = 0 gives exactly sigma = 1
    assert 0 in ints(index) and spec.depth - 1 in ints(index)
    assert got[xs.index(0)] == one
    assert got[xs.index(lo - 1)] == got[xs.index(lo)] == int(rom[0])
    assert got[xs.index(hi + 1)] == got[xs.index(hi)] == int(rom[-1])


# --------------------------------------------------------------------------
# Reparameterization

REPARAM_FMTS = [
    # mu, sigma, eps, z
    (Fmt(16, 10), Fmt(16, 12), Fmt(16, 11), Fmt(16, 10)),   # artifact-like: prod frac 23 > mu
    (Fmt(12, 10), Fmt(8, 4), Fmt(8, 3), Fmt(8, 2)),         # mu frac > prod frac, narrow z
    (Fmt(10, 4), Fmt(8, 3), Fmt(6, 2), Fmt(16, 9)),         # z frac > acc frac: shift left
]


@pytest.mark.parametrize("fmts", REPARAM_FMTS, ids=["artifact", "mu_finer", "z_finer"])
def test_reparam(fmts):
    mu_fmt, sigma_fmt, eps_fmt, z_fmt = fmts
    dut = Reparam(*fmts)
    rng = random.Random(6)
    edge_triples = list(itertools.product(fmt_edges(mu_fmt), fmt_edges(sigma_fmt),
                                          fmt_edges(eps_fmt)))
    rand_triples = [(rng.randint(mu_fmt.min_int, mu_fmt.max_int),
                     rng.randint(0, sigma_fmt.max_int),
                     rng.randint(eps_fmt.min_int, eps_fmt.max_int)) for _ in range(400)]
    triples = edge_triples[::3] + rand_triples
    payloads = [{"mu": m, "sigma": s, "eps": e} for m, s, e in triples]
    expected = [int(reparam(m, s, e, *fmts)) for m, s, e in triples]
    got = run_stream(dut, payloads, rng=rng, p_gap=0.3, p_stall=0.3)
    assert got == expected
    assert z_fmt.max_int in expected and z_fmt.min_int in expected  # saturation exercised
    assert measure_latency(dut, {"mu": 0, "sigma": 0, "eps": 0}) == dut.latency == 2


# --------------------------------------------------------------------------
# Gaussian sampler


def golden_draws(spec, n):
    """eps of the first n draws and the LFSR states after each draw (own reference)."""
    states = list(spec.seeds)
    eps, history = [], [tuple(states)]
    for _ in range(n):
        total = 0
        for r, lfsr in enumerate(LFSR_BANK):
            u, states[r] = lfsr_step(lfsr, states[r])
            total += u
        eps.append(int(eps_from_uniforms(total, spec)))
        history.append(tuple(states))
    return eps, history


@pytest.mark.parametrize("correction", ["none", "teichroew"])
def test_gaussian_sampler_sequence_and_state(correction):
    spec = sampler_spec(correction, seed=7)
    n = 1800
    dut = GaussianSampler(spec)
    eps_ref, states_ref = golden_draws(spec, n + dut.latency + 1)
    assert ints(Sampler(spec).draw(n)) == eps_ref[:n]

    rng = random.Random(8)
    got, checks = [], []

    async def tb(ctx):
        draws, seen_valid = 0, False
        assert tuple(ctx.get(s) for s in dut.lfsr_states) == states_ref[0]
        cycle = 0
        while len(got) < n:
            ready = rng.random() >= 0.35
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            cycle += 1
            if seen_valid:
                assert valid, "o.valid dropped after the pipeline filled"
            elif valid:
                assert cycle - 1 == dut.latency  # first seen at the edge after `latency` edges
                seen_valid = True
            if valid and ready:
                got.append(payload)
            draws += (not valid) or ready  # advance = ~o.valid | o.ready
            if cycle <= 100 or cycle % 97 == 0 or len(got) == n:
                state = tuple(ctx.get(s) for s in dut.lfsr_states)
                assert state == states_ref[draws], f"LFSR state after {draws} draws"
                checks.append(draws)
        assert draws == n + dut.latency
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert got == eps_ref[:n]
    assert len(checks) > 100
    fmt = spec.eps_fmt
    assert fmt.min_int < min(got) < 0 < max(got) < fmt.max_int


def test_lfsr_next_matches_lfsr_step():
    """The LFSR logic alone, 4 steps from several states, every register of the bank."""
    from amaranth.hdl import Module, Signal
    from hw.sampler import lfsr_next
    m = Module()
    regs = []
    rng = random.Random(9)
    for lfsr in LFSR_BANK:
        state = Signal(lfsr.length)
        uniform, nxt = lfsr_next(state, lfsr)
        regs.append((lfsr, state, uniform, nxt))

    async def tb(ctx):
        for _ in range(20):
            for lfsr, state, uniform, nxt in regs:
                s = rng.choice([1, (1 << lfsr.length) - 1, rng.getrandbits(lfsr.length) | 1])
                ctx.set(state, s)
                u_ref, s_ref = lfsr_step(lfsr, s)
                assert (ctx.get(uniform), ctx.get(nxt)) == (u_ref, s_ref)
    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()


# --------------------------------------------------------------------------
# Verilog


def _blocks():
    return {
        "sigmoid_taylor5": lambda: TaylorSigmoid(sigmoid_spec("taylor5", Fmt(16, 10), Fmt(16, 14))),
        "sigmoid_minimax5": lambda: TaylorSigmoid(sigmoid_spec("minimax5", Fmt(12, 6), Fmt(8, 6))),
        "odd_poly": lambda: OddPolyUnit(sampler_spec().poly, signed(16), signed(16)),
        "sigma_rom": lambda: SigmaRom(sigma_rom_spec(Fmt(16, 10), Fmt(16, 12))),
        "reparam": lambda: Reparam(*REPARAM_FMTS[0]),
        "sampler_none": lambda: GaussianSampler(sampler_spec("none")),
        "sampler_teichroew": lambda: GaussianSampler(sampler_spec("teichroew")),
    }


@pytest.mark.parametrize("name", list(_blocks()))
def test_converts_to_verilog(name):
    text = to_verilog(_blocks()[name](), name)
    assert f"module {name}(" in text.replace(" (", "(")
    for port in ("o__valid", "o__ready", "o__payload"):
        assert port in text


def test_span_shapes():
    assert Span(0, 255).shape() == unsigned(8)
    assert Span(-128, 127).shape() == signed(8)
    assert Span(-129, 0).shape() == signed(9)
    assert Span(-3, 5).square() == Span(0, 25)
    assert Span(2, 5).square() == Span(4, 25)
    assert Span(-3, 5) * Span(-2, 1) == Span(-10, 6)
    assert Span(-5, 5).round_shift(1) == Span(-2, 3)
    assert Span(-5, 5).clamp(-2, 9) == Span(-2, 5)
    assert saturate(300, Fmt(8, 0)) == 127
