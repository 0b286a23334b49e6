"""Fixed-point arithmetic blocks: odd-polynomial unit, sigmoid, sigma ROM, reparameterization.

Each block computes *exactly* the function of the same name in
:mod:`model.fixed` (the numerics spec): every rounding, clamp and saturation
below is one of ``round_shift`` / ``saturate`` / ``requantize`` there, and
every constant (coefficients, shifts, clamps, ROM image) is read from a
``model.fixed`` spec object, never re-derived.

Register widths come from a range analysis (:class:`Span`): each register is
sized to the exact interval of values its expression can take for *every*
input the block's port shape admits, so no intermediate can wrap and no
bit is wasted on a value that cannot occur (Amaranth's own width growth
would size Horner's rule by its worst case per stage and let the
accumulator grow ~10 bits per stage).  Products are formed at their full
Amaranth width from these registers, so every product is exact.

All blocks are stream pipelines built with :class:`hw.streamutil.Pipeline`
(one clock per stage, one result per clock, global stall on ``o.ready``).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Shape, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from model.fixed import (
    Fmt, OddPoly, SigmaRomSpec, SigmoidSpec, round_shift as _round_shift_int,
    sigma_rom_contents,
)

from .streamutil import Pipeline

__all__ = [
    "Span", "fmt_shape", "round_shift", "clamp", "odd_poly_stages", "odd_poly_latency",
    "OddPolyUnit", "TaylorSigmoid", "SigmaRom", "reparam_layout", "Reparam",
]


# --------------------------------------------------------------------------
# Range analysis and the primitive operations as Amaranth expressions


@dataclass(frozen=True)
class Span:
    """The closed integer interval ``[lo, hi]`` a signal can take."""

    lo: int
    hi: int

    def __post_init__(self):
        if self.lo > self.hi:
            raise ValueError(f"empty span [{self.lo}, {self.hi}]")

    @classmethod
    def of_shape(cls, shape) -> "Span":
        shape = Shape.cast(shape)
        if shape.signed:
            return cls(-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1)
        return cls(0, (1 << shape.width) - 1)

    @classmethod
    def of_fmt(cls, fmt: Fmt) -> "Span":
        return cls(fmt.min_int, fmt.max_int)

    def shape(self) -> Shape:
        """Narrowest shape holding the span: unsigned when it cannot go negative."""
        if self.lo >= 0:
            return unsigned(max(self.hi.bit_length(), 1))
        width = 1
        while not (-(1 << (width - 1)) <= self.lo and self.hi <= (1 << (width - 1)) - 1):
            width += 1
        return signed(width)

    def square(self) -> "Span":  # tighter than self * self: a square is never negative
        lo = 0 if self.lo <= 0 <= self.hi else min(self.lo ** 2, self.hi ** 2)
        return Span(lo, max(self.lo ** 2, self.hi ** 2))

    def __mul__(self, other: "Span") -> "Span":
        corners = [a * b for a in (self.lo, self.hi) for b in (other.lo, other.hi)]
        return Span(min(corners), max(corners))

    def __add__(self, other) -> "Span":
        if isinstance(other, int):
            return Span(self.lo + other, self.hi + other)
        return Span(self.lo + other.lo, self.hi + other.hi)

    def round_shift(self, shift: int) -> "Span":  # monotone, so the ends map to the ends
        return Span(_round_shift_int(self.lo, shift), _round_shift_int(self.hi, shift))

    def clamp(self, lo: int, hi: int) -> "Span":
        return Span(min(max(self.lo, lo), hi), max(min(self.hi, hi), lo))


def fmt_shape(fmt: Fmt) -> Shape:
    """The port shape of a ``model.fixed.Fmt`` value: ``signed(width)``."""
    return signed(fmt.width)


def round_shift(x, shift: int) -> Value:
    """``model.fixed.round_shift`` as an expression: add ``1 << (shift-1)``, arithmetic shift.

    ``>>`` on a signed value is arithmetic in Amaranth (floor), on an unsigned
    one logical (also floor); the add grows the width, so it cannot wrap.
    ``shift <= 0`` shifts left exactly.
    """
    x = Value.cast(x)
    if shift <= 0:
        return x << -shift
    return (x + (1 << (shift - 1))) >> shift


def clamp(x, span: Span, lo: int, hi: int) -> tuple[Value, Span]:
    """``clip(x, lo, hi)``; emits a comparator only for a bound ``span`` can cross."""
    x = Value.cast(x)
    if span.hi > hi:
        x = Mux(x > hi, hi, x)
    if span.lo < lo:
        x = Mux(x < lo, lo, x)
    return x, span.clamp(lo, hi)


# --------------------------------------------------------------------------
# Odd polynomial (Horner on u = x*x)


def odd_poly_latency(poly: OddPoly) -> int:
    """Stages of :func:`odd_poly_stages`: u, one per Horner step, the final product."""
    n = len(poly.coeffs_int)
    return 1 if n == 1 else n + 1


def odd_poly_stages(pipe: Pipeline, x, x_span: Span, poly: OddPoly, *,
                    out_span: Span | None = None, name: str = "poly") -> tuple[Value, Span]:
    """Append ``model.fixed.odd_poly`` to ``pipe``, one step per stage.

    ``x`` is the (combinational) input value entering the first new stage and
    ``x_span`` every value it can take.  Stage 1: ``u = round_shift(x*x,
    2*v_frac - coef_frac)``; stage 1+k: Horner step k, ``acc = c +
    round_shift(u*acc, coef_frac)`` (the first step multiplies by the constant
    top coefficient); last stage: ``round_shift(x*acc, v_frac + coef_frac -
    out_frac)``, clamped to ``out_span`` if given (that is ``saturate``).
    ``x`` and ``u`` travel down the pipeline beside ``acc``.  Returns the last
    stage's register and its span.
    """
    coeffs = poly.coeffs_int
    cf = poly.coef_frac
    acc, acc_span = coeffs[-1], Span(coeffs[-1], coeffs[-1])
    if len(coeffs) > 1:
        pipe.stage()
        u_expr, u_span = round_shift(x * x, 2 * poly.v_frac - cf), x_span.square().round_shift(
            2 * poly.v_frac - cf)
        u = pipe.reg(u_expr, u_span.shape(), name=f"{name}_u")
        x = pipe.reg(x, x_span.shape(), name=f"{name}_x")
        for step, coeff in enumerate(reversed(coeffs[:-1])):
            pipe.stage()
            acc_span = (u_span * acc_span).round_shift(cf) + coeff
            acc = pipe.reg(coeff + round_shift(u * acc, cf), acc_span.shape(),
                           name=f"{name}_acc{step}")
            u = pipe.reg(u, u_span.shape(), name=f"{name}_u")
            x = pipe.reg(x, x_span.shape(), name=f"{name}_x")
    pipe.stage()
    shift = poly.v_frac + cf - poly.out_frac
    y, y_span = round_shift(x * acc, shift), (x_span * acc_span).round_shift(shift)
    if out_span is not None:
        y, y_span = clamp(y, y_span, out_span.lo, out_span.hi)
    return pipe.reg(y, y_span.shape(), name=f"{name}_y"), y_span


class OddPolyUnit(wiring.Component):
    """``o = saturate(model.fixed.odd_poly(i, poly), out_shape)``, fully pipelined.

    One result per clock; ``latency`` = 2 + number of Horner steps
    (``len(poly.coeffs_int) + 1``).  Pipeline stage k does exactly step k of
    ``odd_poly``, so the golden model and the hardware share every rounding.

    Parameters
    ----------
    poly : model.fixed.OddPoly
    in_shape : ShapeLike
        Input payload shape; every value of it is handled exactly.
    out_shape : ShapeLike or None
        Output payload shape; results outside it saturate.  ``None``: the
        narrowest shape holding every result (no saturation).

    Ports: ``i`` = ``In(stream.Signature(in_shape))``, ``o`` =
    ``Out(stream.Signature(out_shape))``.
    """

    def __init__(self, poly: OddPoly, in_shape, out_shape=None):
        self.poly = poly
        self.in_shape = Shape.cast(in_shape)
        in_span = Span.of_shape(self.in_shape)
        if out_shape is None:
            full = _odd_poly_span(poly, in_span)
            out_shape = full.shape()
        self.out_shape = Shape.cast(out_shape)
        super().__init__({
            "i": In(stream.Signature(self.in_shape)),
            "o": Out(stream.Signature(self.out_shape)),
        })

    @property
    def latency(self) -> int:
        return odd_poly_latency(self.poly)

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, self.i.valid, name="poly")
        y, _ = odd_poly_stages(pipe, self.i.payload, Span.of_shape(self.in_shape), self.poly,
                               out_span=Span.of_shape(self.out_shape))
        pipe.finish(self.o)
        assert pipe.latency == self.latency
        m.d.comb += [self.i.ready.eq(pipe.advance), self.o.payload.eq(y)]
        return m


def _odd_poly_span(poly: OddPoly, x_span: Span) -> Span:
    """The span of odd_poly's result over ``x_span`` as the pipeline bounds it."""
    cf = poly.coef_frac
    acc_span = Span(poly.coeffs_int[-1], poly.coeffs_int[-1])
    u_span = x_span.square().round_shift(2 * poly.v_frac - cf)
    for coeff in reversed(poly.coeffs_int[:-1]):
        acc_span = (u_span * acc_span).round_shift(cf) + coeff
    return (x_span * acc_span).round_shift(poly.v_frac + cf - poly.out_frac)


# --------------------------------------------------------------------------
# Output sigmoid


class TaylorSigmoid(wiring.Component):
    """``o = model.fixed.sigmoid(i, spec)`` for either kind ('taylor5', 'minimax5').

    Stage 1 clamps the input to ``[-clamp_int, clamp_int]`` (so Horner only
    ever sees the interval the polynomial was scaled for, and the
    registers are sized for it); then :func:`odd_poly_stages`; the last stage
    adds ``half_int`` and saturates to ``[0, one_int]``.  The adds are kept
    out of the multiplier stages to keep each stage one multiply deep.

    Ports: ``i`` = ``In(stream.Signature(signed(in_fmt.width)))`` (logit),
    ``o`` = ``Out(stream.Signature(signed(out_fmt.width)))`` (probability in
    ``out_fmt``).  ``latency`` = poly latency + 2 (6 for the quintics).
    """

    def __init__(self, spec: SigmoidSpec):
        if spec.one_int > spec.out_fmt.max_int:
            raise ValueError(f"sigmoid output {spec.out_fmt} cannot hold {spec.one_int}")
        self.spec = spec
        super().__init__({
            "i": In(stream.Signature(fmt_shape(spec.in_fmt))),
            "o": Out(stream.Signature(fmt_shape(spec.out_fmt))),
        })

    @property
    def latency(self) -> int:
        return odd_poly_latency(self.spec.poly) + 2

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        pipe = Pipeline(m, self.i.valid, name="sig")

        pipe.stage()
        xc, xc_span = clamp(self.i.payload, Span.of_fmt(spec.in_fmt), -spec.clamp_int, spec.clamp_int)
        xc = pipe.reg(xc, xc_span.shape(), name="xc")

        p, p_span = odd_poly_stages(pipe, xc, xc_span, spec.poly)

        pipe.stage()
        y, _ = clamp(p + spec.half_int, p_span + spec.half_int, 0, spec.one_int)
        y = pipe.reg(y, fmt_shape(spec.out_fmt), name="y")

        pipe.finish(self.o)
        assert pipe.latency == self.latency
        m.d.comb += [self.i.ready.eq(pipe.advance), self.o.payload.eq(y)]
        return m


# --------------------------------------------------------------------------
# sigma = exp(logvar / 2) from a ROM


class SigmaRom(wiring.Component):
    """``o = sigma_rom_contents(spec)[sigma_rom_index(i, spec)]``: logvar in, sigma out.

    The index (clamp to ``[lo_int, hi_int]``, ``round_shift`` to
    ``index_frac`` bits, minus ``lo_index``) is combinational on the input
    and addresses a synchronous read port of a :class:`Memory` whose ``init``
    is the ROM image from :mod:`model.fixed` -- the one function the golden
    model reads too, so the two tables cannot drift apart.  The read port's
    enable is the pipeline's ``advance``, so a stalled output holds its data.

    Ports: ``i`` = ``In(stream.Signature(signed(logvar_fmt.width)))``, ``o`` =
    ``Out(stream.Signature(signed(sigma_fmt.width)))``.  ``latency`` = 1.
    """

    def __init__(self, spec: SigmaRomSpec):
        self.spec = spec
        self.contents = [int(v) for v in sigma_rom_contents(spec)]
        super().__init__({
            "i": In(stream.Signature(fmt_shape(spec.logvar_fmt))),
            "o": Out(stream.Signature(fmt_shape(spec.sigma_fmt))),
        })

    @property
    def latency(self) -> int:
        return 1

    @property
    def depth(self) -> int:
        return self.spec.depth

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        m.submodules.rom = rom = Memory(shape=fmt_shape(spec.sigma_fmt), depth=spec.depth,
                                        init=self.contents)
        rd = rom.read_port(domain="sync")

        pipe = Pipeline(m, self.i.valid, name="rom")
        clamped, span = clamp(self.i.payload, Span.of_fmt(spec.logvar_fmt), spec.lo_int, spec.hi_int)
        shift = spec.logvar_fmt.frac - spec.index_frac
        index = round_shift(clamped, shift) - spec.lo_index
        index_span = span.round_shift(shift) + (-spec.lo_index)
        assert index_span == Span(0, spec.depth - 1), index_span
        pipe.stage()  # the read port's data register is this stage's register
        pipe.finish(self.o)
        m.d.comb += [
            rd.addr.eq(index),
            rd.en.eq(pipe.advance),
            self.i.ready.eq(pipe.advance),
            self.o.payload.eq(rd.data),
        ]
        return m


# --------------------------------------------------------------------------
# Reparameterization


def reparam_layout(mu_fmt: Fmt, sigma_fmt: Fmt, eps_fmt: Fmt) -> data.StructLayout:
    """Input payload of :class:`Reparam`: ``{mu, sigma, eps}``, each ``signed(fmt.width)``."""
    return data.StructLayout({
        "mu": fmt_shape(mu_fmt),
        "sigma": fmt_shape(sigma_fmt),
        "eps": fmt_shape(eps_fmt),
    })


class Reparam(wiring.Component):
    """``z = model.fixed.reparam(mu, sigma, eps)``: exact ``mu + sigma*eps``, one requantize.

    Stage 1 forms the exact product ``sigma*eps`` (fraction ``sigma.frac +
    eps.frac``) and carries ``mu``; stage 2 aligns both to ``acc_frac =
    max(prod_frac, mu.frac)``, adds, rounds half up to ``z.frac`` and
    saturates to ``z_fmt``.  With ``eps = 0`` this is ``mu`` requantized: the
    deterministic mode uses the same datapath.

    Ports: ``i`` = ``In(stream.Signature(reparam_layout(mu, sigma, eps)))``,
    ``o`` = ``Out(stream.Signature(signed(z_fmt.width)))``.  ``latency`` = 2.
    """

    def __init__(self, mu_fmt: Fmt, sigma_fmt: Fmt, eps_fmt: Fmt, z_fmt: Fmt):
        self.mu_fmt, self.sigma_fmt, self.eps_fmt, self.z_fmt = mu_fmt, sigma_fmt, eps_fmt, z_fmt
        self.i_layout = reparam_layout(mu_fmt, sigma_fmt, eps_fmt)
        super().__init__({
            "i": In(stream.Signature(self.i_layout)),
            "o": Out(stream.Signature(fmt_shape(z_fmt))),
        })

    @property
    def latency(self) -> int:
        return 2

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, self.i.valid, name="rep")
        p = self.i.payload
        mu_span, sigma_span, eps_span = map(Span.of_fmt, (self.mu_fmt, self.sigma_fmt, self.eps_fmt))

        pipe.stage()
        prod_span = sigma_span * eps_span
        prod = pipe.reg(p.sigma * p.eps, prod_span.shape(), name="prod")
        mu = pipe.reg(p.mu, mu_span.shape(), name="mu")

        pipe.stage()
        prod_frac = self.sigma_fmt.frac + self.eps_fmt.frac
        acc_frac = max(prod_frac, self.mu_fmt.frac)
        a_mu, a_prod = acc_frac - self.mu_fmt.frac, acc_frac - prod_frac
        acc = (mu << a_mu) + (prod << a_prod)
        acc_span = Span(mu_span.lo << a_mu, mu_span.hi << a_mu) + Span(prod_span.lo << a_prod,
                                                                        prod_span.hi << a_prod)
        shift = acc_frac - self.z_fmt.frac
        z, _ = clamp(round_shift(acc, shift), acc_span.round_shift(shift),
                     self.z_fmt.min_int, self.z_fmt.max_int)
        z = pipe.reg(z, fmt_shape(self.z_fmt), name="z")

        pipe.finish(self.o)
        m.d.comb += [self.i.ready.eq(pipe.advance), self.o.payload.eq(z)]
        return m
