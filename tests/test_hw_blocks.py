# amaranth: UnusedElaboratable=no
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

from hw.arith import (
    OddPolyUnit, Ranged, Reparam, SigmaRom, TaylorSigmoid, partial_products, poly_plan,
    span_shape, sum_products,
)
from hw.mult import product_plan
from hw.sampler import GaussianSampler, sampler_plan
from hw.streamutil import RegisterFifo
from hw.verilog import convert as to_verilog
from model.fixed import (
    LFSR_BANK, Fmt, ReparamSpec, Span, eps_from_uniforms, lfsr_step, odd_poly, reparam,
    round_shift, sampler_spec, saturate, sigma_rom_contents, sigma_rom_index, sigma_rom_spec,
    sigmoid, sigmoid_spec,
)
from model.golden import Sampler
from sim.pysim import run_stream, stream_get, stream_put

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


#: (serial, mult_width): the pipelined unit on ECP5-sized multipliers, and the serial one on
#: iCE40-sized ones and on 9-bit ones (every product split into several limbs)
UNITS = [(False, 18), (True, 16), (True, 9), (False, 9)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("in_fmt,out_fmt", [(Fmt(8, 4), Fmt(8, 6)), (Fmt(8, 5), Fmt(9, 7))])
@pytest.mark.parametrize("serial,mult_width", UNITS[:2])
def test_sigmoid_exhaustive_small(kind, in_fmt, out_fmt, serial, mult_width):
    spec = sigmoid_spec(kind, in_fmt, out_fmt)
    xs = list(range(in_fmt.min_int, in_fmt.max_int + 1))
    expected = ints(sigmoid(np.array(xs), spec))
    got = run_stream(TaylorSigmoid(spec, serial=serial, mult_width=mult_width), xs,
                     rng=random.Random(1), p_gap=0.2, p_stall=0.2)
    assert got == expected
    # the input clamp is exercised: everything beyond +-clamp_int maps like +-clamp_int
    c = spec.clamp_int
    assert got[0] == got[xs.index(-c)] and got[-1] == got[xs.index(c)]
    assert 0 <= min(got) and max(got) <= spec.one_int


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("serial,mult_width", UNITS)
def test_sigmoid_16bit_random_and_edges(kind, serial, mult_width):
    in_fmt, out_fmt = Fmt(16, 10), Fmt(16, 14)
    spec = sigmoid_spec(kind, in_fmt, out_fmt)
    rng = random.Random(2)
    c = spec.clamp_int
    edges = fmt_edges(in_fmt) + [c - 1, c, c + 1, -c - 1, -c, -c + 1]
    # random over the full range and, denser, over the polynomial's own interval
    n = 1000 if serial else 4000
    xs = edges + [rng.randint(in_fmt.min_int, in_fmt.max_int) for _ in range(n * 3 // 8)] \
        + [rng.randint(-c - 2, c + 2) for _ in range(n * 5 // 8)]
    expected = ints(sigmoid(np.array(xs), spec))
    dut = TaylorSigmoid(spec, serial=serial, mult_width=mult_width)
    got = run_stream(dut, xs, rng=rng, p_gap=0.25, p_stall=0.25)
    assert got == expected
    if serial:
        assert dut.plan.cost().multiplier_blocks == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("serial", [False, True])
def test_sigmoid_full_rate(kind, serial):
    """No gaps, no stalls: a pipelined unit takes an input every clock and a serial one
    every ``plan.ii``; each result appears ``plan.latency`` clocks after its input."""
    spec = sigmoid_spec(kind, Fmt(16, 10), Fmt(16, 14))
    dut = TaylorSigmoid(spec, serial=serial, mult_width=16)
    plan = dut.plan
    assert measure_latency(dut, 0) == plan.latency
    # clamp stage, two stages a Horner step (or one program row a clock), the output slice
    assert (plan.ii, plan.latency) == ((len(plan.rows) + 2, len(plan.rows) + 2) if serial
                                       else (1, 1 + 2 * len(plan.steps) + 1))
    xs = list(range(-400, 400, 7 if not serial else 61))
    taken, results = [], []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        k = 0
        for t in range(len(xs) * plan.ii + plan.latency + 1):
            ctx.set(dut.i.valid, k < len(xs))
            ctx.set(dut.i.payload, xs[k] if k < len(xs) else 0)
            _, _, iready, ovalid, op = await ctx.tick().sample(dut.i.ready, dut.o.valid,
                                                               dut.o.payload)
            if iready and k < len(xs):
                taken.append(t)
                k += 1
            if ovalid:
                results.append((t, op))
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert [op for _, op in results] == ints(sigmoid(np.array(xs), spec))
    assert np.diff(taken).tolist() == [plan.ii] * (len(xs) - 1)
    assert [t for t, _ in results] == [t + plan.latency for t in taken]


# --------------------------------------------------------------------------
# Odd polynomial unit on its own (Teichroew's polynomial; inputs beyond its design range)


@pytest.mark.parametrize("out_shape", [signed(16), signed(12)])
@pytest.mark.parametrize("serial,mult_width", UNITS)
def test_odd_poly_unit(out_shape, serial, mult_width):
    poly = sampler_spec("teichroew").poly
    out_span = Span(-(1 << (out_shape.width - 1)), (1 << (out_shape.width - 1)) - 1)

    def post(y):
        return y.clip(out_span.lo, out_span.hi)
    plan = poly_plan(poly, Span(-32768, 32767), post, serial=serial, mult_width=mult_width)
    dut = OddPolyUnit(plan, signed(16), out_shape, post=post)
    rng = random.Random(3)
    xs = fmt_edges(Fmt(16, 0)) + [24570, -24570, 24571, -24571] \
        + [rng.randint(-32768, 32767) for _ in range(300 if serial else 800)]
    expected = [min(max(odd_poly(x, poly), out_span.lo), out_span.hi) for x in xs]
    got = run_stream(dut, xs, rng=rng, p_gap=0.3, p_stall=0.3)
    assert got == expected
    assert min(got) == out_span.lo and max(got) == out_span.hi  # saturation exercised


def test_odd_poly_unit_rejects_inputs_beyond_its_plan():
    poly = sampler_spec("teichroew").poly
    plan = poly_plan(poly, Span(-1000, 1000))
    with pytest.raises(ValueError, match=r"inputs over Span\(lo=-32768, hi=32767\) exceed"):
        OddPolyUnit(plan, signed(16), signed(32))
    with pytest.raises(ValueError, match="do not fit"):
        OddPolyUnit(plan, signed(10), signed(4))


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
    assert measure_latency(dut, 0) == dut.latency == 3
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
    spec = ReparamSpec(*fmts)
    dut = Reparam(spec, mult_width=6)  # a 6-bit multiplier: every product in limbs
    rng = random.Random(6)
    edge_triples = list(itertools.product(fmt_edges(mu_fmt), fmt_edges(sigma_fmt),
                                          fmt_edges(eps_fmt)))
    rand_triples = [(rng.randint(mu_fmt.min_int, mu_fmt.max_int),
                     rng.randint(0, sigma_fmt.max_int),
                     rng.randint(eps_fmt.min_int, eps_fmt.max_int)) for _ in range(400)]
    triples = edge_triples[::3] + rand_triples
    payloads = [{"mu": m, "sigma": s, "eps": e} for m, s, e in triples]
    expected = [int(reparam(m, s, e, spec)) for m, s, e in triples]
    got = run_stream(dut, payloads, rng=rng, p_gap=0.3, p_stall=0.3)
    assert got == expected
    assert z_fmt.max_int in expected and z_fmt.min_int in expected  # saturation exercised
    assert measure_latency(dut, {"mu": 0, "sigma": 0, "eps": 0}) == dut.latency == 3


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
    dut = GaussianSampler(sampler_plan(spec))
    eps_ref, states_ref = golden_draws(spec, n + dut.latency + 3)
    assert ints(Sampler(spec).draw(n)) == eps_ref[:n]

    rng = random.Random(8)
    got, checks = [], []
    # draws the pipeline holds beyond those transferred: a stage each, the output slice's two
    ahead = dut.latency + 2
    position = {state: k for k, state in enumerate(states_ref)}

    async def tb(ctx):
        seen_valid = False
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
            if cycle <= 100 or cycle % 97 == 0 or len(got) == n:
                # the LFSRs are on the golden sequence, never further ahead than the
                # pipeline holds (a draw is made only when a stage can take it)
                state = tuple(ctx.get(s) for s in dut.lfsr_states)
                assert state in position, f"LFSR state off the sequence at cycle {cycle}"
                assert len(got) <= position[state] <= len(got) + ahead, (cycle, len(got))
                checks.append(position[state])
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
    art_like = ReparamSpec(*REPARAM_FMTS[0])
    return {
        "sigmoid_taylor5": lambda: TaylorSigmoid(sigmoid_spec("taylor5", Fmt(16, 10), Fmt(16, 14))),
        "sigmoid_minimax5": lambda: TaylorSigmoid(sigmoid_spec("minimax5", Fmt(12, 6), Fmt(8, 6))),
        "sigmoid_serial": lambda: TaylorSigmoid(sigmoid_spec("taylor5", Fmt(16, 10), Fmt(16, 14)),
                                                serial=True, mult_width=16),
        "sigma_rom": lambda: SigmaRom(sigma_rom_spec(Fmt(16, 10), Fmt(16, 12))),
        "reparam": lambda: Reparam(art_like),
        "sampler_none": lambda: GaussianSampler(sampler_plan(sampler_spec("none"))),
        "sampler_teichroew": lambda: GaussianSampler(sampler_plan(sampler_spec("teichroew"))),
        "sampler_serial": lambda: GaussianSampler(sampler_plan(sampler_spec("teichroew"),
                                                               serial=True, buffer=4)),
    }


@pytest.mark.parametrize("name", list(_blocks()))
def test_converts_to_verilog(name):
    text = to_verilog(_blocks()[name](), name)
    assert f"module {name}(" in text.replace(" (", "(")
    for port in ("o__valid", "o__ready", "o__payload"):
        assert port in text


def test_ranged_values_follow_their_spans():
    """Ranged expressions compute model.fixed's rules with registers no wider than needed."""
    from amaranth.hdl import Module, Signal
    a_sig, b_sig = Signal(signed(8)), Signal(unsigned(5))
    a, b = Ranged(a_sig, Span(-100, 100)), Ranged(b_sig, Span(0, 20))
    exprs = {
        "mul": (a * b, lambda x, y: x * y),
        "square": (a * a, lambda x, y: x * x),
        "add": (a + b - 7, lambda x, y: x + y - 7),
        "round_shift": (round_shift(a * b, 3), lambda x, y: int(round_shift(x * y, 3))),
        "saturate": (saturate(a * b, Fmt(9, 0)), lambda x, y: min(max(x * y, -256), 255)),
        "clip": ((a + b).clip(0, 50), lambda x, y: min(max(x + y, 0), 50)),
        "relu_saturate": ((a * b).clip(0, 127), lambda x, y: min(max(x * y, 0), 127)),
        "unsigned_saturate": ((b * b).clip(0, 255), lambda x, y: min(y * y, 255)),
    }
    assert exprs["square"][0].span == Span(0, 10000) and exprs["clip"][0].span == Span(0, 50)
    assert span_shape(Span(0, 255)) == unsigned(8) and span_shape(Span(-129, 0)) == signed(9)
    m = Module()
    outs = {}
    for name, (expr, _) in exprs.items():
        outs[name] = Signal(expr.shape, name=name)
        assert expr.value.shape().width <= expr.shape.width
        m.d.comb += outs[name].eq(expr.value)
    rng = random.Random(10)

    async def tb(ctx):
        for _ in range(200):
            x, y = rng.randint(-100, 100), rng.randint(0, 20)
            ctx.set(a_sig, x)
            ctx.set(b_sig, y)
            for name, (_, ref) in exprs.items():
                assert ctx.get(outs[name]) == ref(x, y), name
    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()


def test_limb_products_of_narrower_operands():
    """A plan made for wide spans, fed signals of tighter ones (the sigma ROM's unsigned
    words into a signed plan): the limbs are cut from the extended operands, and the sum
    without the lowest product's dropped bits is the floor of the shifted product."""
    from amaranth.hdl import Module, Signal
    plan = product_plan(Span(-40000, 40000), Span(-3000, 70000), 16)
    assert len(plan.pairs) == 4
    a_sig, b_sig = Signal(unsigned(15)), Signal(signed(13))
    a, b = Ranged(a_sig, Span(0, 30000)), Ranged(b_sig, Span(-3000, 3000))
    pps = partial_products(plan, a, b)
    exact, floored = Signal(signed(40)), Signal(signed(40))
    m = Module()
    m.d.comb += [exact.eq(sum_products(plan, pps).value),
                 floored.eq(sum_products(plan, [pps[0] >> 5, *pps[1:]], 5).value)]
    rng = random.Random(12)

    async def tb(ctx):
        for x, y in [(0, 0), (30000, -3000), (30000, 3000), (1, -1), (32767 // 2, 2999)] + \
                [(rng.randint(0, 30000), rng.randint(-3000, 3000)) for _ in range(300)]:
            ctx.set(a_sig, x)
            ctx.set(b_sig, y)
            assert ctx.get(exact) == x * y and ctx.get(floored) == (x * y) >> 5, (x, y)
    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("correction", ["teichroew", "none"])
def test_serial_sampler_sequence_with_stalls(correction):
    """One multiplier for Teichroew's polynomial and a draw buffer: the same sequence."""
    spec = sampler_spec(correction, seed=3)
    plan = sampler_plan(spec, serial=True, buffer=5, mult_width=16)
    assert plan.buffer == (5 if correction == "teichroew" else 0)
    dut = GaussianSampler(plan)
    n = 160
    got = []

    async def tb(ctx):
        got.extend(await stream_get(ctx, dut.o, n, random.Random(4), p_stall=0.5))
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert got == ints(Sampler(spec).draw(n))


def test_register_fifo_is_a_fifo():
    dut = RegisterFifo(3, signed(12))
    words = list(range(-60, 60, 3))
    got = []
    rng = random.Random(5)

    async def producer(ctx):
        await stream_put(ctx, dut.i, words, rng, p_gap=0.4)

    async def consumer(ctx):
        got.extend(await stream_get(ctx, dut.o, len(words), rng, p_stall=0.6))
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    assert got == words
    with pytest.raises(ValueError, match="at least 1"):
        RegisterFifo(0, signed(4))
