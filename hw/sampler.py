"""Gaussian sampler: twelve LFSRs, an Irwin-Hall adder tree, optional Teichroew correction.

Bit-exact with :mod:`model.fixed`: the k-th payload transferred on ``o`` is
``eps_from_uniforms(sum_r u_r, spec)`` where ``u_r`` is the uniform of the
k-th :func:`model.fixed.lfsr_step` of register ``r`` of ``LFSR_BANK``,
started from ``spec.seeds``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import Out

from model.fixed import (
    IRWIN_HALL_FRAC, IRWIN_HALL_OFFSET, IRWIN_HALL_SPAN, LFSR_BANK, UNIFORM_BITS, Lfsr,
    SamplerSpec, Span, requantize, saturate,
)

from .arith import (
    DEFAULT_MULT_WIDTH, OddPolyUnit, PolyPlan, Ranged, fmt_shape, poly_plan, staged,
)
from .cost import Cost
from .streamutil import Pipeline, RegisterFifo, RegisterSlice

__all__ = ["lfsr_next", "tree_spans", "SamplerPlan", "sampler_plan", "GaussianSampler"]


def lfsr_next(state: Value, lfsr: Lfsr, nbits: int = UNIFORM_BITS) -> tuple[Value, Value]:
    """One :func:`model.fixed.lfsr_step` as logic: ``(uniform, next_state)``.

    New bit ``j`` is the XOR over taps ``k`` of state bit ``n - k + j``
    (every tap >= nbits, so all of them read the old state: one clock,
    one XOR of len(taps) inputs per bit).  The uniform has the first new
    bit as MSB; the next state drops the ``nbits`` oldest bits and appends
    the new ones at the top.
    """
    n = lfsr.length
    if nbits > min(lfsr.taps):
        raise ValueError(f"{nbits} bits a step need every tap >= {nbits}, taps are {lfsr.taps}")
    bits = []
    for j in range(nbits):
        bit = state[n - lfsr.taps[0] + j]
        for k in lfsr.taps[1:]:
            bit = bit ^ state[n - k + j]
        bits.append(bit)
    uniform = Cat(*reversed(bits))  # Cat is LSB first: bits[0] lands on the MSB
    return uniform, Cat(state[nbits:], *bits)


def tree_spans() -> list[list[Span]]:
    """The adder tree's registers, level by level: pairwise sums of the uniforms;
    the last level (one register) holds the centred sum ``S``."""
    level = [Span(0, (1 << UNIFORM_BITS) - 1)] * len(LFSR_BANK)
    levels = []
    while True:
        level = [level[k] + level[k + 1] for k in range(0, len(level) - 1, 2)] + \
            ([level[-1]] if len(level) % 2 else [])
        if len(level) == 1:
            levels.append([level[0] - IRWIN_HALL_OFFSET])
            return levels
        levels.append(level)


@dataclass(frozen=True)
class SamplerPlan:
    """The sampler's structure: the correction unit (``None``: ``'none'``) and
    the draw buffer a serial correction fills ahead of demand."""

    spec: SamplerSpec
    correction: PolyPlan | None
    buffer: int

    @property
    def tree_latency(self) -> int:
        return len(tree_spans())

    @property
    def none_is_identity(self) -> bool:
        """``'none'`` whose format holds ``S`` exactly needs no stage."""
        fmt = self.spec.eps_fmt
        return fmt.frac == IRWIN_HALL_FRAC and IRWIN_HALL_SPAN in Span.of_fmt(fmt)

    @property
    def ii(self) -> int:
        """Clocks between draws when the buffer is drained."""
        return self.correction.ii if self.correction is not None else 1

    @property
    def latency(self) -> int:
        """Clocks from reset to the first valid draw on ``o``."""
        if self.correction is not None:
            return (self.tree_latency + self.correction.latency
                    + (1 + RegisterSlice.latency if self.buffer else 0))
        return self.tree_latency + (0 if self.none_is_identity else 1)

    @property
    def primed(self) -> int:
        """Clocks from reset until the draw buffer is full (every request served at once)."""
        return self.latency + max(self.buffer - 1, 0) * self.ii

    def cost(self) -> Cost:
        lfsrs = sum(lfsr.length for lfsr in LFSR_BANK)
        tree = sum(s.width for level in tree_spans() for s in level) + self.tree_latency
        cost = Cost(registers=lfsrs + tree)
        if self.correction is not None:
            cost = cost + self.correction.cost()
        elif not self.none_is_identity:
            cost = cost.plus_registers(self.spec.eps_fmt.width + 1)
        if self.buffer:
            width = self.spec.eps_fmt.width
            cost = (cost + RegisterFifo.cost(self.buffer, width)).plus_registers(
                RegisterSlice.register_bits(width))
        return cost


def sampler_plan(spec: SamplerSpec, *, serial: bool = False, buffer: int = 1,
                 mult_width: int = DEFAULT_MULT_WIDTH) -> SamplerPlan:
    """``serial``: one multiplier runs the correction (``plan.ii`` clocks a draw) and a
    ``buffer``-deep register FIFO holds draws ahead of demand (``'none'`` has no
    multiplier and makes a draw every clock, so it needs neither)."""
    if serial and buffer < 1:
        raise ValueError(f"a serial sampler needs a draw buffer of at least 1, not {buffer}")
    correction = None
    if spec.poly is not None:
        correction = poly_plan(spec.poly, IRWIN_HALL_SPAN, lambda y: saturate(y, spec.eps_fmt),
                               serial=serial, mult_width=mult_width)
    return SamplerPlan(spec, correction, buffer if serial and correction is not None else 0)


class GaussianSampler(wiring.Component):
    """A free-running stream of eps in ``spec.eps_fmt``.

    Draw path: on every advance of the tree pipeline each of the 12 LFSRs
    makes one :func:`lfsr_step` (12 fresh bits) and the 12 uniforms enter the
    adder tree (one register level per pairwise-add level; the last level
    also subtracts ``IRWIN_HALL_OFFSET``); then the correction: ``'none'``
    requantizes ``S`` to ``eps_fmt`` (wiring only when that is the identity),
    ``'teichroew'`` runs the odd polynomial (:class:`hw.arith.OddPolyUnit`,
    pipelined at one draw per clock or serial on one multiplier) and
    saturates.  A serial sampler fills a :class:`hw.streamutil.RegisterFifo` ahead of demand.

    The LFSRs step exactly when a new draw enters the tree, every stage holds
    while the next one cannot take its value, and the buffer is a FIFO: the
    sequence *transferred* on ``o`` is the golden sequence, whatever the
    ready pattern.

    ``lfsr_states`` lists the 12 state registers (bit i = s[T - n + i], the
    layout of ``model.fixed.Lfsr``) for tests and debug.

    Ports: ``o`` = ``Out(stream.Signature(signed(eps_fmt.width)))``.
    """

    def __init__(self, plan: SamplerPlan):
        spec = plan.spec
        if len(spec.seeds) != len(LFSR_BANK):
            raise ValueError(f"need {len(LFSR_BANK)} seeds, got {len(spec.seeds)}")
        for lfsr, seed in zip(LFSR_BANK, spec.seeds):
            if not 0 < seed < (1 << lfsr.length):
                raise ValueError(f"seed {seed:#x} is not a nonzero {lfsr.length}-bit state")
        self.plan = plan
        self.spec = spec
        super().__init__({"o": Out(stream.Signature(fmt_shape(spec.eps_fmt)))})
        self.lfsr_states = [Signal(lfsr.length, init=seed, name=f"lfsr{lfsr.length}")
                            for lfsr, seed in zip(LFSR_BANK, spec.seeds)]

    @property
    def latency(self) -> int:
        return self.plan.latency

    def elaborate(self, platform):
        plan, spec = self.plan, self.spec
        m = Module()
        pipe = Pipeline(m, Const(1), name="smp")

        uniforms = []
        for lfsr, state in zip(LFSR_BANK, self.lfsr_states):
            uniform, nxt = lfsr_next(state, lfsr)
            uniforms.append(Ranged(uniform, Span(0, (1 << UNIFORM_BITS) - 1)))
            with m.If(pipe.advance):  # a draw enters the pipeline exactly now
                m.d.sync += state.eq(nxt)

        vals = uniforms
        for level, spans in enumerate(tree_spans()):
            pipe.stage()
            sums = [vals[k] + vals[k + 1] for k in range(0, len(vals) - 1, 2)]
            sums += [vals[-1]] if len(vals) % 2 else []
            if len(spans) == 1:
                sums = [sums[0] - IRWIN_HALL_OFFSET]
            vals = [staged(pipe, v, f"sum{level}_{k}") for k, v in enumerate(sums)]
            assert [v.span for v in vals] == spans
        s = vals[0]

        if plan.correction is not None:
            unit = OddPolyUnit(plan.correction, s.shape, fmt_shape(spec.eps_fmt),
                               post=lambda y: saturate(y, spec.eps_fmt), in_span=s.span)
            m.submodules.correction = unit
            pipe.finish(unit.i)
            m.d.comb += unit.i.payload.eq(s.value)
            source = unit.o
            if plan.buffer:
                # the buffer's head leaves through a register slice: the consumer's ready
                # stops there instead of running into the buffer's pointers
                m.submodules.buffer = buffer = RegisterFifo(plan.buffer, fmt_shape(spec.eps_fmt))
                m.submodules.out_slice = out_slice = RegisterSlice(fmt_shape(spec.eps_fmt))
                wiring.connect(m, unit.o, buffer.i)
                wiring.connect(m, buffer.o, out_slice.i)
                source = out_slice.o
            wiring.connect(m, wiring.flipped(self.o), source)
            return m

        if not plan.none_is_identity:
            pipe.stage()
            s = staged(pipe, requantize(s, IRWIN_HALL_FRAC, spec.eps_fmt), "eps")
        pipe.finish(self.o)
        m.d.comb += self.o.payload.eq(s.value)
        return m
