"""Products sized for the FPGA's multiplier blocks.

A DSP block multiplies two ``mult_width``-bit signed operands (18 on the
ECP5's MULT18X18D, 16 on the iCE40's SB_MAC16).  A wider product is split
here, in the generator, into *limbs*: every limb but the top one holds
``mult_width - 1`` unsigned bits (zero-extended, it is a non-negative
``mult_width``-bit signed operand), the top limb the remaining bits with the
operand's sign.  Each pair of limbs is one DSP; the partial products are
registered before they are summed.  Doing the split ourselves, rather than
letting Yosys do it inside one ``$mul``, has two reasons: the number of DSPs
is known before synthesis (:func:`product_plan` counts them, and the
estimate and the board report read that count), and no DSP output feeds a
carry chain in the same clock (the critical path the first board builds
showed).

Everything here works on :class:`model.fixed.Span` ranges, so the plan of a
product is computed without building any hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.fixed import Span

__all__ = ["MULT_WIDTHS", "Limb", "operand_limbs", "ProductPlan", "product_plan"]

#: Signed operand width of one multiplier block, per FPGA family.
MULT_WIDTHS: dict[str, int] = {"ecp5": 18, "ice40": 16}


@dataclass(frozen=True)
class Limb:
    """Bits ``[lo, lo + width)`` of an operand, read signed (the top limb of a
    signed operand) or unsigned."""

    lo: int
    width: int
    signed: bool

    def span(self, operand: Span) -> Span:
        """Every value this limb takes over ``operand``."""
        if self.signed or self.lo + self.width >= operand.width:
            return operand >> self.lo  # the top limb: the operand, floor-shifted
        return Span(0, (1 << self.width) - 1)


def operand_limbs(span: Span, mult_width: int) -> tuple[Limb, ...]:
    """Split an operand over ``span`` into limbs that fit a ``mult_width``-bit signed port."""
    if mult_width < 2:
        raise ValueError(f"mult_width must be at least 2, not {mult_width}")
    step = mult_width - 1
    top = mult_width if span.signed else mult_width - 1  # bits the top limb may hold
    width = span.width
    limbs = []
    lo = 0
    while width - lo > top:
        limbs.append(Limb(lo, step, False))
        lo += step
    limbs.append(Limb(lo, width - lo, span.signed))
    return tuple(limbs)


def _constant_limb_value(value: int, limb: Limb) -> int:
    if limb.signed:
        return value >> limb.lo
    return (value >> limb.lo) & ((1 << limb.width) - 1)


@dataclass(frozen=True)
class ProductPlan:
    """How ``a * b`` is built: the limb pairs that need a multiplier block.

    ``pairs`` lists ``(i, j)`` limb indices of ``a`` and ``b``; ``b`` may be
    a constant, whose zero limbs need nothing and whose power-of-two limbs a
    shift (``b_const``).  ``pp_spans[k]`` is the span of pair ``k``'s product
    and ``span`` the exact span of the whole product.
    """

    a_limbs: tuple[Limb, ...]
    b_limbs: tuple[Limb, ...]
    pairs: tuple[tuple[int, int], ...]
    pp_spans: tuple[Span, ...]
    span: Span
    b_const: int | None
    mult_width: int

    def shift(self, pair: tuple[int, int]) -> int:
        i, j = pair
        return self.a_limbs[i].lo + self.b_limbs[j].lo

    def needs_multiplier(self, pair: tuple[int, int]) -> bool:
        if self.b_const is None:
            return True
        value = _constant_limb_value(self.b_const, self.b_limbs[pair[1]])
        return abs(value) & (abs(value) - 1) != 0  # not a power of two

    @property
    def multipliers(self) -> int:
        """Multiplier blocks this product uses."""
        return sum(self.needs_multiplier(pair) for pair in self.pairs)

    @property
    def operand_widths(self) -> list[str]:
        """``"AxB"`` (signed port widths actually used) of each multiplier block."""
        out = []
        for pair in self.pairs:
            if self.needs_multiplier(pair):
                a, b = self.a_limbs[pair[0]], self.b_limbs[pair[1]]
                out.append(f"{a.width + (not a.signed)}x{b.width + (not b.signed)}")
        return out


def product_plan(a: Span, b: Span | int, mult_width: int, *, square: bool = False) -> ProductPlan:
    """The limb pairs of ``a * b``; ``b`` an int is a constant, ``square`` says ``b is a``."""
    b_const = b if isinstance(b, int) else None
    b_span = Span.point(b) if b_const is not None else b
    a_limbs = operand_limbs(a, mult_width)
    b_limbs = operand_limbs(b_span, mult_width)
    pairs, pp_spans = [], []
    for i, la in enumerate(a_limbs):
        for j, lb in enumerate(b_limbs):
            if b_const is not None and _constant_limb_value(b_const, lb) == 0:
                continue
            sa = la.span(a)
            sb = lb.span(b_span) if b_const is None else Span.point(
                _constant_limb_value(b_const, lb))
            pp_spans.append(sa.square() if square and i == j else sa * sb)
            pairs.append((i, j))
    span = a.square() if square else a * b_span
    return ProductPlan(a_limbs, b_limbs, tuple(pairs), tuple(pp_spans), span, b_const, mult_width)
