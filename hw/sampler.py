"""Gaussian sampler: twelve LFSRs, an Irwin-Hall adder tree, optional Teichroew correction.

Bit-exact with :mod:`model.fixed`: the k-th payload transferred on ``o`` is
``eps_from_uniforms(sum_r u_r, spec)`` where ``u_r`` is the uniform of the
k-th :func:`model.fixed.lfsr_step` of register ``r`` of ``LFSR_BANK``,
started from ``spec.seeds``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import Out

from model.fixed import (
    IRWIN_HALL_FRAC, IRWIN_HALL_OFFSET, LFSR_BANK, UNIFORM_BITS, Lfsr, SamplerSpec,
)

from .arith import Span, clamp, fmt_shape, odd_poly_latency, odd_poly_stages, round_shift
from .streamutil import Pipeline

__all__ = ["lfsr_next", "GaussianSampler"]


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


class GaussianSampler(wiring.Component):
    """A free-running stream of eps in ``spec.eps_fmt``, one per clock.

    Draw path: on every pipeline ``advance`` each of the 12 LFSRs makes one
    :func:`lfsr_step` (12 fresh bits) and the 12 uniforms enter the adder
    tree (one register level per pairwise-add level; the last level also
    subtracts ``IRWIN_HALL_OFFSET``), then the correction: ``'none'``
    requantizes ``S`` to ``eps_fmt`` (wiring only when that is the identity),
    ``'teichroew'`` runs the same odd-polynomial stages as the sigmoid and
    saturates (no logic when the range analysis shows nothing can saturate).

    Valid/advance: the source is always valid, so ``advance = ~o.valid |
    o.ready``; the LFSRs step exactly on ``advance``, i.e. exactly when a new
    draw enters stage 1, and the draws in flight move with it.  After
    ``latency`` clocks from reset ``o.valid`` is high and stays high; a
    stall (``o.ready`` low) freezes LFSRs and pipeline together.  Hence the
    sequence *transferred* on ``o`` is the golden sequence, whatever the
    ready pattern.

    ``lfsr_states`` lists the 12 state registers (bit i = s[T - n + i],
    the layout of ``model.fixed.Lfsr``) for tests and debug.

    Ports: ``o`` = ``Out(stream.Signature(signed(eps_fmt.width)))``.
    """

    def __init__(self, spec: SamplerSpec):
        if len(spec.seeds) != len(LFSR_BANK):
            raise ValueError(f"need {len(LFSR_BANK)} seeds, got {len(spec.seeds)}")
        for lfsr, seed in zip(LFSR_BANK, spec.seeds):
            if not 0 < seed < (1 << lfsr.length):
                raise ValueError(f"seed {seed:#x} is not a nonzero {lfsr.length}-bit state")
        self.spec = spec
        super().__init__({"o": Out(stream.Signature(fmt_shape(spec.eps_fmt)))})
        self.lfsr_states = [Signal(lfsr.length, init=seed, name=f"lfsr{lfsr.length}")
                            for lfsr, seed in zip(LFSR_BANK, spec.seeds)]

    @property
    def tree_latency(self) -> int:
        levels, n = 0, len(LFSR_BANK)
        while n > 1:
            n, levels = (n + 1) // 2, levels + 1
        return max(levels, 1)

    @property
    def latency(self) -> int:
        """Clocks from reset to the first valid eps (pipeline depth)."""
        if self.spec.poly is not None:
            return self.tree_latency + odd_poly_latency(self.spec.poly)
        return self.tree_latency + (0 if self._none_is_identity else 1)

    @property
    def _none_is_identity(self) -> bool:
        fmt = self.spec.eps_fmt
        return fmt.frac == IRWIN_HALL_FRAC and Span.of_fmt(fmt).lo <= -IRWIN_HALL_OFFSET and \
            len(LFSR_BANK) * ((1 << UNIFORM_BITS) - 1) - IRWIN_HALL_OFFSET <= fmt.max_int

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        pipe = Pipeline(m, Const(1), name="smp")

        uniforms = []
        for lfsr, state in zip(LFSR_BANK, self.lfsr_states):
            uniform, nxt = lfsr_next(state, lfsr)
            uniforms.append(uniform)
            with m.If(pipe.advance):  # a draw enters the pipeline exactly now
                m.d.sync += state.eq(nxt)

        # Irwin-Hall adder tree, one register level per pairwise level.
        vals = [(u, Span(0, (1 << UNIFORM_BITS) - 1)) for u in uniforms]
        level = 0
        while True:
            pipe.stage()
            nxt = []
            for k in range(0, len(vals) - 1, 2):
                (a, sa), (b, sb) = vals[k], vals[k + 1]
                nxt.append((a + b, sa + sb))
            if len(vals) % 2:
                nxt.append(vals[-1])
            if len(nxt) == 1:  # last level: centre the sum as well
                total, span = nxt[0]
                total, span = total - IRWIN_HALL_OFFSET, span + (-IRWIN_HALL_OFFSET)
                s = pipe.reg(total, span.shape(), name="centred")
                break
            vals = [(pipe.reg(v, sp.shape(), name=f"sum{level}_{k}"), sp)
                    for k, (v, sp) in enumerate(nxt)]
            level += 1
        assert pipe.latency == self.tree_latency

        out_span = Span.of_fmt(spec.eps_fmt)
        if spec.poly is not None:
            eps, _ = odd_poly_stages(pipe, s, span, spec.poly, out_span=out_span, name="teich")
        elif self._none_is_identity:
            eps = s
        else:
            pipe.stage()
            shift = IRWIN_HALL_FRAC - spec.eps_fmt.frac
            eps, _ = clamp(round_shift(s, shift), span.round_shift(shift), out_span.lo, out_span.hi)
            eps = pipe.reg(eps, fmt_shape(spec.eps_fmt), name="eps")

        pipe.finish(self.o)
        assert pipe.latency == self.latency
        m.d.comb += self.o.payload.eq(eps)
        return m
