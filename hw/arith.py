"""Fixed-point arithmetic blocks: odd-polynomial units (sigmoid, Gaussian correction),
sigma ROM, reparameterization.

Every rounding, clamp and saturation below is a call to the function of
:mod:`model.fixed` that the golden model runs: :class:`Ranged` gives Amaranth
expressions the operators those functions use (``+ - * << >>`` and
``.clip``), tracking the span of values each expression can take, so the
spec's own code builds the logic and every register is sized to exactly the
values it can hold (Amaranth's own width growth would size Horner's rule by
its worst case per stage).

Each block is described by a *plan* -- a plain object computed from the spec
alone, listing every register, memory and multiplier -- that the component
elaborates from and that reports the block's :class:`hw.cost.Cost`, so the
estimate never builds hardware to learn a figure.

Odd polynomials run either *pipelined* (one result per clock: two stages per
Horner step, products split into multiplier-block limbs whose partial
products are registered before they are summed) or *serial* (one multiplier
block computes every limb product of every step in turn: one result every
``ii`` clocks, for parts with few multipliers such as the iCE40UP5K).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from model.fixed import (
    Fmt, OddPoly, PolyStep, ReparamSpec, SigmaRomSpec, SigmoidSpec, Span, odd_poly_spans,
    odd_poly_steps, shift_add, sigma_rom_contents, sigma_rom_index,
)

from .cost import Cost, MemoryUse, counter, counter_bits, memory_attrs
from .mult import MULT_WIDTHS, ProductPlan, product_plan
from .streamutil import Pipeline, RegisterSlice

__all__ = [
    "Ranged", "span_shape", "fmt_shape", "staged", "partial_products", "sum_products",
    "SerialRow", "PolyPlan", "poly_plan", "OddPolyUnit", "sigmoid_plan", "TaylorSigmoid",
    "sigma_rom_cost", "SigmaRom", "sigma_rom_stages", "reparam_layout", "reparam_product",
    "Reparam", "reparam_stages",
]

DEFAULT_MULT_WIDTH = MULT_WIDTHS["ecp5"]


def span_shape(span: Span) -> Shape:
    """The narrowest shape holding ``span``: unsigned when it cannot go negative."""
    return signed(span.width) if span.signed else unsigned(span.width)


def fmt_shape(fmt: Fmt) -> Shape:
    """The port shape of a ``model.fixed.Fmt`` value: ``signed(width)``."""
    return signed(fmt.width)


def _fit(value: Value, span: Span) -> Value:
    """``value`` cut to the width its span needs (exact: the span bounds every value)."""
    width = span.width
    if value.shape().width > width:
        value = value[:width]
        return value.as_signed() if span.signed else value
    return value


class Ranged:
    """An Amaranth expression together with the :class:`Span` of values it takes.

    Implements exactly the operators :mod:`model.fixed` writes its rules
    with; each result is cut to the width its span needs, and ``clip`` emits
    a comparator only for a bound the span can cross.
    """

    def __init__(self, value, span: Span):
        self.span = span
        self.value = _fit(Value.cast(value), span)

    @property
    def shape(self) -> Shape:
        return span_shape(self.span)

    def __add__(self, other):
        if isinstance(other, int):
            return Ranged(self.value + other, self.span + other)
        return Ranged(self.value + other.value, self.span + other.span)

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, int):
            return self + (-other)
        return Ranged(self.value - other.value, self.span - other.span)

    def __mul__(self, other):
        if isinstance(other, int):
            return Ranged(self.value * other, self.span * Span.point(other))
        span = self.span.square() if other is self else self.span * other.span
        return Ranged(self.value * other.value, span)

    def __lshift__(self, shift: int):
        return Ranged(self.value << shift, self.span << shift)

    def __rshift__(self, shift: int):
        return Ranged(self.value >> shift, self.span >> shift)

    def clip(self, lo: int, hi: int) -> "Ranged":
        """``min(max(x, lo), hi)``.  When ``[lo, hi]`` is the range of a narrower word
        (saturation, saturation with ReLU) the test is on the bits above that word, a
        LUT tree; otherwise a comparator (a carry chain) per bound the span crosses."""
        span = self.span.clip(lo, hi)
        high, low = self.span.hi > hi, self.span.lo < lo
        if not (high or low):
            return Ranged(self.value, span)
        value, width = self.value, self.value.shape().width
        negative = value[-1] if self.value.shape().signed else 0
        k = hi.bit_length()  # [lo, hi] is a k-bit word's range when hi = 2**k - 1 ...
        word = hi == (1 << k) - 1 and lo in (0, -(hi + 1)) and k < width
        if word and lo == 0:  # ... unsigned: a negative x is 0, any bit from k up is hi
            over = value[k:width - 1].any() if self.value.shape().signed else value[k:].any()
            return Ranged(Mux(negative, 0, Mux(over, hi, value[:k])), span)
        if word:  # ... signed: in range iff the bits from k up all equal the sign
            top = value[k:]
            fits = ~top.any() | top.all()
            return Ranged(Mux(fits, value[:k + 1].as_signed(), Mux(negative, lo, hi)), span)
        # both comparators look at x itself: side by side, not one after the other
        below, above = (value < lo) if low else None, (value > hi) if high else None
        if low:
            value = Mux(below, lo, value)
        if high:
            value = Mux(above, hi, value)
        return Ranged(value, span)

    def within(self, span: Span) -> "Ranged":
        """The same value with a tighter span known from elsewhere (e.g. the exact
        span of a product summed from partial products)."""
        if span not in self.span:
            raise ValueError(f"{span} is not inside {self.span}")
        return Ranged(self.value, span)


def _shape_span(shape: Shape) -> Span:
    if shape.signed:
        return Span(-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1)
    return Span(0, (1 << shape.width) - 1)


def staged(pipe: Pipeline, value: Ranged, name: str) -> Ranged:
    """``value`` registered in ``pipe``'s current stage."""
    return Ranged(pipe.reg(value.value, value.shape, name=name), value.span)


# --------------------------------------------------------------------------
# Products split into multiplier blocks


def _extended(value: Value, width: int) -> Value:
    """``value`` sign- or zero-extended (by its own signedness) to at least ``width`` bits."""
    if len(value) >= width:
        return value
    if value.shape().signed:
        return Cat(value, value[-1].replicate(width - len(value)))
    return Cat(value, Const(0, width - len(value)))


def partial_products(plan: ProductPlan, a: Ranged, b: Ranged | int) -> list[Ranged]:
    """One expression per limb pair of ``plan`` (``b`` an int: the plan's constant).

    The operands may be narrower than the plan's (a tighter span): they are
    extended first.  A limb pair whose constant limb is a power of two is a
    shift, not a multiplier.
    """
    out = []
    a_bits = _extended(a.value, sum(limb.width for limb in plan.a_limbs))
    b_bits = None if isinstance(b, int) else _extended(b.value, sum(limb.width
                                                                    for limb in plan.b_limbs))
    for (i, j), span in zip(plan.pairs, plan.pp_spans):
        la, lb = plan.a_limbs[i], plan.b_limbs[j]
        limb_a = a_bits[la.lo: la.lo + la.width]
        if la.signed:
            limb_a = limb_a.as_signed()
        if isinstance(b, int):
            value = b >> lb.lo if lb.signed else (b >> lb.lo) & ((1 << lb.width) - 1)
            if plan.needs_multiplier((i, j)):
                product = limb_a * value
            else:
                product = limb_a << (abs(value).bit_length() - 1)
                product = -product if value < 0 else product
        else:
            limb_b = b_bits[lb.lo: lb.lo + lb.width]
            product = limb_a * (limb_b.as_signed() if lb.signed else limb_b)
        out.append(Ranged(product, span))
    return out


def sum_products(plan: ProductPlan, products: list[Ranged], dropped: int = 0) -> Ranged:
    """``a * b`` from the partial products: ``sum pp << shift``, with the product's exact
    span; ``(a * b) >> dropped`` when the lowest partial product comes without its
    ``dropped`` low bits (every other one has zeros there, so the floor is exact)."""
    total = None
    for pair, pp in zip(plan.pairs, products):
        term = pp if pair == (0, 0) else pp << (plan.shift(pair) - dropped)
        total = term if total is None else total + term
    return total.within(plan.span >> dropped)


# --------------------------------------------------------------------------
# Odd polynomial units


@dataclass(frozen=True)
class SerialRow:
    """One clock of the serial unit's program.

    ``issue``: limb pair ``pair`` of step ``step`` goes to the operand
    registers; the multiplier's product is registered one clock later, and
    one clock after that the sum register takes it afresh (``first``), adds
    it (same limb diagonal), or -- on the next diagonal (``delta``) -- shifts
    its lowest limb, now final, into the low-bits register and adds the
    product to the rest (``sum_span``: the sum register's span then).
    ``wait``: the last product is on its way.  ``finish``: the product (low
    bits and sum) shifted and the step's constant go to the finish registers
    (:func:`model.fixed.shift_add`); ``add``: their sum to the result
    register; ``write``: the result, shifted, to the step's register (the
    last step's to ``o``).  One carry chain a clock.
    """

    kind: str
    step: int
    pair: tuple[int, int] | None = None
    first: bool = False
    delta: bool = False
    sum_span: Span | None = None


def _serial_rows(products) -> tuple[SerialRow, ...]:
    rows = []
    for k, plan in enumerate(products):
        limb = plan.mult_width - 1
        total = None
        prev_diag = None
        # lowest limb diagonal first: each finished diagonal leaves a final limb behind
        for pair in sorted(plan.pairs, key=lambda p: p[0] + p[1]):
            pp = plan.pp_spans[plan.pairs.index(pair)]
            diag = pair[0] + pair[1]
            if prev_diag is None:
                total = pp
            elif diag == prev_diag + 1:
                total = (total >> limb) + pp
            elif diag == prev_diag:
                total = total + pp
            else:
                raise ValueError(f"serial product skips limb diagonal {prev_diag + 1}")
            rows.append(SerialRow("issue", k, pair, first=prev_diag is None,
                                  delta=prev_diag is not None and diag > prev_diag,
                                  sum_span=total))
            prev_diag = diag
        if prev_diag is None or rows[-len(plan.pairs)].pair != (0, 0):
            raise ValueError("a serial product needs its limb diagonal 0")
        rows += [SerialRow("wait", k), SerialRow("wait", k), SerialRow("finish", k),
                 SerialRow("add", k), SerialRow("write", k)]
    return tuple(rows)


def _union(spans) -> Span:
    spans = list(spans)
    return Span(min(s.lo for s in spans), max(s.hi for s in spans))


@dataclass(frozen=True)
class PolyPlan:
    """How a unit runs the program :func:`model.fixed.odd_poly_steps`, and what it costs.

    ``x_span`` bounds the polynomial's input (after the unit's ``pre``
    function, if ``has_pre``), ``out_span`` its output (after ``post``);
    ``spans[k]`` are the register spans step ``k`` reads and ``products[k]``
    step ``k``'s :class:`hw.mult.ProductPlan`.

    Pipelined: an optional input stage (``pre``), then per step a product
    stage (the limb products, registered) and a finish stage (their sum
    plus the step's rounding addend, shifted: ``PolyStep.finish``).  In the
    pipelined unit ``acc`` is a constant until the first Horner step writes
    it.  Serial: registers ``x``, ``u``, ``acc``, one multiplier, a product
    register, a sum register and the program ``rows``.
    """

    poly: OddPoly
    offset: int
    x_span: Span
    out_span: Span
    serial: bool
    mult_width: int
    has_pre: bool
    steps: tuple[PolyStep, ...]
    spans: tuple[dict, ...]
    products: tuple[ProductPlan, ...]
    rows: tuple[SerialRow, ...]

    def dropped_bits(self, k: int) -> int:
        """Low bits of step ``k``'s lowest partial product no result bit depends on: below
        the step's shift-in, and below every other partial product (so no carry comes
        from them).  The pipelined unit does not register them."""
        product = self.products[k]
        others = [product.shift(pair) for pair in product.pairs if pair != (0, 0)]
        pre = shift_add(self.steps[k].shift, self.steps[k].addend).pre
        if (0, 0) not in product.pairs or pre <= 0:
            return 0
        return min([pre, *others])

    def registered_pp_spans(self, k: int) -> list[Span]:
        """What the pipelined unit's product stage registers for step ``k``."""
        drop = self.dropped_bits(k)
        return [span >> drop if pair == (0, 0) else span
                for pair, span in zip(self.products[k].pairs, self.products[k].pp_spans)]

    def constant_acc(self, k: int) -> bool:
        """Step ``k`` reads ``acc`` while it is still the top coefficient (pipelined only)."""
        return not self.serial and all(step.dest != "acc" for step in self.steps[:k])

    def carried(self, k: int) -> list[str]:
        """Registers the two stages of step ``k`` carry for later steps."""
        names = []
        for j in range(k + 1, len(self.steps)):
            for name in (self.steps[j].a, self.steps[j].b):
                written = any(self.steps[m].dest == name for m in range(k, j))
                constant = name == "acc" and self.constant_acc(j)
                if not (written or constant or name in names):
                    names.append(name)
        return names

    def register_span(self, name: str) -> Span:
        """Serial unit: the span of register ``name`` over the whole program."""
        return _union(s[name] for s in self.spans if name in s)

    @property
    def serial_registers(self) -> list[str]:
        return [n for n in ("x", "u", "acc") if any(n in (s.a, s.b) for s in self.steps)]

    @property
    def pp_span(self) -> Span:
        return _union(s for p in self.products for s in p.pp_spans)

    @property
    def sum_span(self) -> Span:
        return _union(row.sum_span for row in self.rows if row.kind == "issue")

    def diagonals(self, k: int) -> int:
        """The highest limb diagonal of step ``k``'s product."""
        return max(i + j for i, j in self.products[k].pairs)

    @property
    def low_width(self) -> int:
        """Bits of the low-bits register: one limb per diagonal shifted out."""
        return (self.mult_width - 1) * max(self.diagonals(k) for k in range(len(self.steps)))

    def shift_adds(self):
        """Each step's :func:`model.fixed.shift_add` (one shared adder runs them all)."""
        return [shift_add(step.shift, step.addend) for step in self.steps]

    def finish_spans(self) -> tuple[Span, Span, Span]:
        """Spans of the finish registers over every step: the product shifted in, the
        constant, and their sum (the write row shifts it out)."""
        pairs = [(sa.shift_in(p.span), Span.point(sa.constant))
                 for sa, p in zip(self.shift_adds(), self.products)]
        return (_union(a for a, _ in pairs), _union(b for _, b in pairs),
                _union(a + b for a, b in pairs))

    @property
    def latency(self) -> int:
        """Clocks from an input's transfer to its result being valid on ``o`` (the
        datapath, then the output's register slice)."""
        if self.serial:
            return len(self.rows) + 1 + RegisterSlice.latency
        return int(self.has_pre) + 2 * len(self.steps) + RegisterSlice.latency

    @property
    def ii(self) -> int:
        """Clocks between accepted inputs at full rate (``o`` always ready): a serial
        unit takes the next input once its result has left the output register."""
        return len(self.rows) + 2 if self.serial else 1

    def cost(self) -> Cost:
        if self.serial:
            regs = sum(self.register_span(n).width for n in self.serial_registers)
            shifted, constant, summed = self.finish_spans()
            word = _control_layout(self, _control_words(self)[1]).size
            # busy, o.valid, the row counter, the control word, (sum enable, first, delta)
            # twice
            control = 2 + counter_bits(len(self.rows)) + word + 2 * 3
            program = MemoryUse("program", len(self.rows), word, sync_read=True,
                                writable=False)
            return Cost(multipliers=[f"{self.mult_width}x{self.mult_width}"],
                        memories=[program],
                        registers=regs + 2 * self.mult_width + self.pp_span.width
                        + self.sum_span.width + self.low_width + shifted.width
                        + constant.width + summed.width + self.out_span.width + control
                        + RegisterSlice.register_bits(self.out_span.width))
        bits = self.x_span.width if self.has_pre else 0
        for k, step in enumerate(self.steps):
            carried = sum(self.spans[k + 1][n].width for n in self.carried(k))
            dest = self.out_span if step.dest == "y" else self.spans[k + 1][step.dest]
            bits += sum(s.width for s in self.registered_pp_spans(k)) + dest.width + 2 * carried
        stages = self.latency - RegisterSlice.latency   # one valid bit each
        return Cost(multipliers=[w for p in self.products for w in p.operand_widths],
                    registers=bits + stages + RegisterSlice.register_bits(self.out_span.width))


def poly_plan(poly: OddPoly, x_span: Span, post: Callable = lambda y: y, *, offset: int = 0,
              serial: bool = False, mult_width: int = DEFAULT_MULT_WIDTH,
              has_pre: bool = False) -> PolyPlan:
    """The plan of a unit computing ``post(odd_poly(x, poly, offset))`` for ``x`` over ``x_span``.

    ``post`` is a :mod:`model.fixed` rule (e.g. a saturation); it is applied to
    the result's span here and to the result's expression in the unit.
    """
    steps = odd_poly_steps(poly, offset)
    spans = tuple(odd_poly_spans(poly, x_span, offset))
    serial_acc = serial

    def operand(k: int, name: str):
        if name == "acc" and not serial_acc and all(s.dest != "acc" for s in steps[:k]):
            return poly.coeffs_int[-1]          # a constant in the pipelined unit
        return spans[k][name]

    products = tuple(product_plan(spans[k][step.a], operand(k, step.b), mult_width,
                                  square=step.a == step.b) for k, step in enumerate(steps))
    rows = _serial_rows(products) if serial else ()
    return PolyPlan(poly, offset, x_span, post(spans[-1]["y"]), serial, mult_width, has_pre,
                    steps, spans, products, rows)


class OddPolyUnit(wiring.Component):
    """``o = post(odd_poly(pre(i), poly, offset))`` as planned by :func:`poly_plan`.

    Pipelined (one result per clock, ``plan.latency`` stages, global stall
    on ``o.ready``) or serial (one multiplier; takes an input when idle and
    offers the result ``plan.latency`` clocks later; ``plan.ii`` clocks per
    result).  ``pre`` and ``post`` are :mod:`model.fixed` rules, applied to
    :class:`Ranged` expressions.  ``in_span`` (default: every value of
    ``in_shape``) is what the producer guarantees the input takes.

    Ports: ``i`` = ``In(stream.Signature(in_shape))``, ``o`` =
    ``Out(stream.Signature(out_shape))``.
    """

    def __init__(self, plan: PolyPlan, in_shape, out_shape, *, pre: Callable | None = None,
                 post: Callable = lambda y: y, in_span: Span | None = None):
        in_span = _shape_span(Shape.cast(in_shape)) if in_span is None else in_span
        if (pre is not None) != plan.has_pre:
            raise ValueError("give pre exactly when the plan has an input stage")
        if (pre(in_span) if pre else in_span) not in plan.x_span:
            raise ValueError(f"inputs over {in_span} exceed the plan's {plan.x_span}")
        if plan.out_span not in _shape_span(Shape.cast(out_shape)):
            raise ValueError(f"results over {plan.out_span} do not fit {Shape.cast(out_shape)}")
        self.plan, self.pre, self.post = plan, pre, post
        self.in_span = in_span
        super().__init__({"i": In(stream.Signature(in_shape)),
                          "o": Out(stream.Signature(out_shape))})

    @property
    def latency(self) -> int:
        return self.plan.latency

    def elaborate(self, platform):
        m = Module()
        x = Ranged(self.i.payload, self.in_span)
        # the consumer's ready stops at a register: it never reaches the unit's enables
        m.submodules.out_slice = out = RegisterSlice(span_shape(self.plan.out_span))
        m.d.comb += [self.o.valid.eq(out.o.valid), self.o.payload.eq(out.o.payload),
                     out.o.ready.eq(self.o.ready)]
        if self.plan.serial:
            self._serial(m, x, out.i)
        else:
            self._pipelined(m, x, out.i)
        return m

    def _pipelined(self, m, x: Ranged, o):
        plan = self.plan
        pipe = Pipeline(m, self.i.valid, name="poly")
        if self.pre is not None:
            pipe.stage()
            x = staged(pipe, self.pre(x), "x")
        env = {"x": x}
        for k, step in enumerate(plan.steps):
            product = plan.products[k]
            b = plan.poly.coeffs_int[-1] if step.b == "acc" and plan.constant_acc(k) \
                else env[step.b]
            drop = plan.dropped_bits(k)
            pps = [pp >> drop if pair == (0, 0) else pp
                   for pair, pp in zip(product.pairs, partial_products(product, env[step.a], b))]
            carried = plan.carried(k)
            pipe.stage()
            pps = [staged(pipe, pp, f"pp{k}_{n}") for n, pp in enumerate(pps)]
            env.update({n: staged(pipe, env[n], n) for n in carried})
            pipe.stage()
            sa = shift_add(step.shift, step.addend).after_shift(drop)
            value = sa(sum_products(product, pps, drop))
            if step.dest == "y":
                value = self.post(value)
            result = staged(pipe, value, step.dest)
            env.update({n: staged(pipe, env[n], n) for n in carried})
            env[step.dest] = result
        pipe.finish(o)
        assert pipe.latency + RegisterSlice.latency == plan.latency
        m.d.comb += [self.i.ready.eq(pipe.advance), o.payload.eq(env["y"].value)]

    def _serial(self, m, x_in: Ranged, o):
        """A control word per row, read two clocks ahead (the ROM, then a register: no
        row decoder in front of the datapath), then: operand registers (the row's limbs), the
        multiplier's product, the sum and the low bits, the finish registers and the
        adder that writes the step's result."""
        plan, width = self.plan, self.plan.mult_width
        limb = width - 1
        regs = {n: Ranged(Signal(span_shape(plan.register_span(n)), name=n),
                          plan.register_span(n)) for n in plan.serial_registers}
        words, sources = _control_words(plan)
        control = _control_layout(plan, sources)
        busy = Signal()
        row = counter(len(plan.rows))
        # the program in a ROM, read two rows ahead: the block RAM's read register, then
        # the current row's control word in a register (a block RAM's clock-to-out into
        # the finish logic was the ECP5's critical path); row 0's word waits while idle
        m.submodules.program = program = Memory(shape=control, depth=len(words), init=words,
                                                attrs=memory_attrs(sync_read=True))
        read = program.read_port(domain="sync")
        cw = Signal(control, init=words[0])
        a_reg, b_reg = Signal(signed(width)), Signal(signed(width))
        pp = Signal(span_shape(plan.pp_span))  # the one multiplier block, registered
        m.d.sync += pp.eq(Ranged(a_reg * b_reg, plan.pp_span).value)
        total = Signal(span_shape(plan.sum_span))
        low = Signal(max(plan.low_width, 1))
        ctl = [[Signal(name=f"{n}{k}") for n in ("sum_en", "sum_first", "sum_delta")]
               for k in (1, 2)]
        m.d.sync += [a.eq(b) for a, b in zip(ctl[1], ctl[0])] + [c.eq(0) for c in ctl[0]]
        shifted_span, constant_span, summed_span = plan.finish_spans()
        shifted = Signal(span_shape(shifted_span))
        constant = Signal(span_shape(constant_span))
        summed = Signal(span_shape(summed_span))
        out = Signal(span_shape(plan.out_span))
        out_valid = Signal()

        # an input is taken only when the previous result has left: the result's write
        # then never waits, and no consumer's ready reaches the program's control
        accept = self.i.valid & ~busy & ~out_valid
        m.d.comb += self.i.ready.eq(~busy & ~out_valid)
        with m.If(accept):
            x = self.pre(x_in) if self.pre is not None else x_in
            m.d.sync += [busy.eq(1), row.eq(0), regs["x"].value.eq(x.value)]
            if "acc" in regs:
                m.d.sync += regs["acc"].value.eq(plan.poly.coeffs_int[-1])

        # two clocks behind an issue row the sum register takes its product; on a new limb
        # diagonal its lowest limb is final and moves into the low bits (exact modulo
        # 2**len(total), and the true sum fits: truncation loses nothing)
        sum_en, sum_first, sum_delta = ctl[1]
        with m.If(sum_en):
            kept = Mux(sum_delta, total >> limb, total)
            m.d.sync += total.eq(Mux(sum_first, 0, kept) + pp)
            if plan.low_width:
                with m.If(sum_delta):
                    m.d.sync += low.eq(Cat(low[limb:], total[:limb]))

        m.d.comb += [o.valid.eq(out_valid), o.payload.eq(out)]
        with m.If(o.valid & o.ready):
            m.d.sync += out_valid.eq(0)
        m.d.comb += read.addr.eq(Mux(busy, row + 2, 1))
        m.d.sync += cw.eq(Mux(busy, read.data, control.const(words[0])))
        with m.If(busy):
            m.d.sync += row.eq(row + 1)

        with m.If(busy & cw.issue):
            for reg, options in ((a_reg, sources["a"]), (b_reg, sources["b"])):
                with m.Switch(cw.a if reg is a_reg else cw.b):
                    for code, (name, lo, bits, is_signed) in enumerate(options):
                        with m.Case(code):
                            field = regs[name].value[lo: lo + bits]
                            m.d.sync += reg.eq(field.as_signed() if is_signed else field)
            m.d.sync += [ctl[0][0].eq(1), ctl[0][1].eq(cw.first), ctl[0][2].eq(cw.delta)]
        with m.If(busy & cw.finish):
            with m.Switch(cw.step):
                for k, sa in enumerate(plan.shift_adds()):
                    with m.Case(k):
                        low_bits = limb * plan.diagonals(k)
                        whole = Cat(low[len(low) - low_bits:], total) if low_bits else total
                        if plan.sum_span.signed:
                            whole = whole.as_signed()
                        product = Ranged(whole, _shape_span(whole.shape())).within(
                            plan.products[k].span)
                        m.d.sync += [shifted.eq(sa.shift_in(product).value),
                                     constant.eq(sa.constant)]
        with m.If(busy & cw.add):  # the one adder of every step's shift_add
            m.d.sync += summed.eq((Ranged(shifted, shifted_span)
                                   + Ranged(constant, constant_span)).value)
        # the write: the sum shifted out (by a step's post, one of at most two: a bit of
        # the control word picks), into the register the word names (one bit each)
        outs = {}
        for sa in plan.shift_adds():
            outs.setdefault(sa.post, sa.shift_out(Ranged(summed, summed_span)))
        value = outs[max(outs)]
        if len(outs) > 1:
            low_post = outs[min(outs)]
            value = Ranged(Mux(cw.post, outs[max(outs)].value, low_post.value),
                           _union([o.span for o in outs.values()]))
        for name in regs:
            if name != "x" and f"write_{name}" in control.members:
                with m.If(busy & cw[f"write_{name}"]):
                    m.d.sync += regs[name].value.eq(value.value)
        with m.If(busy & cw.write_y):
            m.d.sync += [out.eq(self.post(value).value), out_valid.eq(1), busy.eq(0)]


def _control_words(plan: PolyPlan) -> tuple[list[dict], dict]:
    """The serial program as control words, and the operand codes they use:
    ``sources["a"]``/``["b"]`` list the ``(register, lowest bit, bits, signed)`` limbs
    the issue rows read.  A write row has one ``write_<register>`` bit set and ``post``
    says which of the steps' shift-outs it takes."""
    sources = {"a": [], "b": []}
    posts = sorted({sa.post for sa in plan.shift_adds()})
    words = []
    for r in plan.rows:
        step, product = plan.steps[r.step], plan.products[r.step]
        word = {"issue": r.kind == "issue", "finish": r.kind == "finish", "add": r.kind == "add",
                "first": r.first, "delta": r.delta, "step": r.step, "a": 0, "b": 0,
                "post": plan.shift_adds()[r.step].post == posts[-1],
                **{f"write_{d}": r.kind == "write" and step.dest == d for d in _dests(plan)}}
        if r.kind == "issue":
            for port, name, lmb in (("a", step.a, product.a_limbs[r.pair[0]]),
                                    ("b", step.b, product.b_limbs[r.pair[1]])):
                limb_key = (name, lmb.lo, lmb.width, lmb.signed)
                if limb_key not in sources[port]:
                    sources[port].append(limb_key)
                word[port] = sources[port].index(limb_key)
        words.append(word)
    return words, sources


def _dests(plan: PolyPlan) -> list[str]:
    """Registers the program writes, ``y`` (the output) last."""
    return [n for n in ("u", "acc") if any(s.dest == n for s in plan.steps)] + ["y"]


def _control_layout(plan: PolyPlan, sources: dict) -> data.StructLayout:
    return data.StructLayout({
        "issue": 1, "finish": 1, "add": 1, "first": 1, "delta": 1, "post": 1,
        **{f"write_{d}": 1 for d in _dests(plan)},
        "step": range(max(len(plan.steps), 2)),
        "a": range(max(len(sources["a"]), 2)), "b": range(max(len(sources["b"]), 2)),
    })

def sigmoid_plan(spec: SigmoidSpec, *, serial: bool = False,
                 mult_width: int = DEFAULT_MULT_WIDTH) -> PolyPlan:
    """:func:`poly_plan` of the sigmoid unit: clamp stage, the quintic with 1/2 as
    its offset, saturation to ``[0, 1]``."""
    return poly_plan(spec.poly, spec.clamp_input(Span.of_fmt(spec.in_fmt)), spec.saturate_output,
                     offset=spec.half_int, serial=serial, mult_width=mult_width, has_pre=True)


class TaylorSigmoid(OddPolyUnit):
    """``o = model.fixed.sigmoid(i, spec)`` for either kind ('taylor5', 'minimax5').

    The input is clamped to ``[-clamp_int, clamp_int]`` (so Horner only ever
    sees the interval the polynomial was scaled for, and the registers are
    sized for it), the odd quintic runs with ``half_int`` as its offset, and
    the result saturates to ``[0, one_int]``.  ``serial`` trades throughput
    for multipliers (see :class:`OddPolyUnit`).

    Ports: ``i`` = ``In(stream.Signature(signed(in_fmt.width)))`` (logit),
    ``o`` = ``Out(stream.Signature(signed(out_fmt.width)))`` (probability in
    ``out_fmt``).
    """

    def __init__(self, spec: SigmoidSpec, *, serial: bool = False,
                 mult_width: int = DEFAULT_MULT_WIDTH):
        if spec.one_int > spec.out_fmt.max_int:
            raise ValueError(f"sigmoid output {spec.out_fmt} cannot hold {spec.one_int}")
        self.spec = spec
        super().__init__(sigmoid_plan(spec, serial=serial, mult_width=mult_width),
                         fmt_shape(spec.in_fmt), fmt_shape(spec.out_fmt),
                         pre=spec.clamp_input, post=spec.saturate_output)


# --------------------------------------------------------------------------
# sigma = exp(logvar / 2) from a ROM


def sigma_span(spec: SigmaRomSpec) -> Span:
    """Every sigma the ROM holds."""
    contents = sigma_rom_contents(spec)
    return Span(int(contents.min()), int(contents.max()))


def sigma_rom_cost(spec: SigmaRomSpec) -> Cost:
    """The index registered in the first stage, one synchronous ROM (its read register
    is the second), sigma registered in the third, a valid bit each."""
    return Cost(memories=[MemoryUse("sigma_rom", spec.depth, spec.sigma_fmt.width,
                                    sync_read=True, writable=False)],
                registers=SigmaRom.latency + Span(0, spec.depth - 1).width
                + sigma_span(spec).width)


class SigmaRom(wiring.Component):
    """``o = sigma_rom_contents(spec)[sigma_rom_index(i, spec)]``: logvar in, sigma out.

    The index is :func:`model.fixed.sigma_rom_index` itself, applied to the
    input expression (clamp, round, offset), and addresses a synchronous read
    port of a :class:`Memory` whose ``init`` is the ROM image from
    :mod:`model.fixed` -- the one function the golden model reads too.  The
    index is registered first: its clamp and offset carry chains straight
    into the block RAM's address were the iCE40 board's critical path.  The
    read port's enable is the pipeline's ``advance``, so a stalled output
    holds its data.  A third stage registers sigma: a block RAM's
    clock-to-out (5.6 ns on the ECP5) straight into a multiplier block was
    the latent unit's critical path.

    Ports: ``i`` = ``In(stream.Signature(signed(logvar_fmt.width)))``, ``o`` =
    ``Out(stream.Signature(signed(sigma_fmt.width)))``.  ``latency`` = 3.
    """

    latency = 3

    def __init__(self, spec: SigmaRomSpec):
        self.spec = spec
        super().__init__({
            "i": In(stream.Signature(fmt_shape(spec.logvar_fmt))),
            "o": Out(stream.Signature(fmt_shape(spec.sigma_fmt))),
        })

    @staticmethod
    def cost(spec: SigmaRomSpec) -> Cost:
        return sigma_rom_cost(spec)

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, self.i.valid, name="rom")
        sigma, = sigma_rom_stages(m, pipe, Ranged(self.i.payload,
                                                  Span.of_fmt(self.spec.logvar_fmt)), self.spec)
        pipe.finish(self.o)
        m.d.comb += [self.i.ready.eq(pipe.advance), self.o.payload.eq(sigma.value)]
        return m


def sigma_rom_stages(m: Module, pipe: Pipeline, logvar: Ranged, spec: SigmaRomSpec,
                     *riders: tuple[Ranged, str]) -> list[Ranged]:
    """Open the :attr:`SigmaRom.latency` stages of ``pipe`` that read sigma for ``logvar``
    (the index register, the ROM's read register enabled by the pipeline's advance,
    then a sigma register); ``riders`` (value, name) travel alongside.  Returns sigma,
    then the riders."""
    m.submodules.sigma_rom = rom = Memory(shape=fmt_shape(spec.sigma_fmt), depth=spec.depth,
                                          init=[int(v) for v in sigma_rom_contents(spec)],
                                          attrs=memory_attrs(sync_read=True))
    read = rom.read_port(domain="sync")
    index = sigma_rom_index(logvar, spec)
    assert index.span == Span(0, spec.depth - 1), index.span
    pipe.stage()
    index = staged(pipe, index, "sigma_index")
    riders = [(staged(pipe, value, f"{name}_index"), name) for value, name in riders]
    pipe.stage()
    m.d.comb += [read.addr.eq(index.value), read.en.eq(pipe.advance)]
    values = [Ranged(read.data, sigma_span(spec))]
    values += [staged(pipe, value, f"{name}_rom") for value, name in riders]
    pipe.stage()
    names = ["sigma", *(name for _, name in riders)]
    return [staged(pipe, value, name) for value, name in zip(values, names)]


# --------------------------------------------------------------------------
# Reparameterization


def reparam_layout(spec: ReparamSpec) -> data.StructLayout:
    """Input payload of :class:`Reparam`: ``{mu, sigma, eps}``, each ``signed(fmt.width)``."""
    return data.StructLayout({
        "mu": fmt_shape(spec.mu_fmt),
        "sigma": fmt_shape(spec.sigma_fmt),
        "eps": fmt_shape(spec.eps_fmt),
    })


def reparam_product(spec: ReparamSpec, mult_width: int) -> ProductPlan:
    return product_plan(Span.of_fmt(spec.sigma_fmt), Span.of_fmt(spec.eps_fmt), mult_width)


class Reparam(wiring.Component):
    """``z = model.fixed.reparam(mu, sigma, eps, spec)``: exact ``mu + sigma*eps``, one requantize.

    Stage 1 registers the limb products of ``sigma*eps`` and ``spec.mu_term(mu)``
    (mu aligned, with the rounding half); stage 2 their sum
    (``spec.halved_sum``); stage 3 ``spec.finish_halved`` (shift, saturate to
    ``z_fmt``).  One adder a stage.  With ``eps = 0`` this is ``mu``
    requantized: the deterministic mode uses the same datapath.

    Ports: ``i`` = ``In(stream.Signature(reparam_layout(spec)))``, ``o`` =
    ``Out(stream.Signature(signed(z_fmt.width)))``.  ``latency`` = 3.
    """

    latency = 3

    def __init__(self, spec: ReparamSpec, *, mult_width: int = DEFAULT_MULT_WIDTH):
        self.spec = spec
        self.product = reparam_product(spec, mult_width)
        super().__init__({
            "i": In(stream.Signature(reparam_layout(spec))),
            "o": Out(stream.Signature(fmt_shape(spec.z_fmt))),
        })

    @staticmethod
    def cost(spec: ReparamSpec, mult_width: int) -> Cost:
        product = reparam_product(spec, mult_width)
        mu_term = spec.mu_term(Span.of_fmt(spec.mu_fmt))
        return Cost(multipliers=product.operand_widths,
                    registers=sum(s.width for s in product.pp_spans) + mu_term.width
                    + (mu_term + (product.span << spec.prod_shift)).width
                    + spec.z_fmt.width + Reparam.latency)

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        pipe = Pipeline(m, self.i.valid, name="rep")
        p = self.i.payload
        z = reparam_stages(pipe, Ranged(p.mu, Span.of_fmt(spec.mu_fmt)),
                           Ranged(p.sigma, Span.of_fmt(spec.sigma_fmt)),
                           Ranged(p.eps, Span.of_fmt(spec.eps_fmt)), spec, self.product)
        pipe.finish(self.o)
        m.d.comb += [self.i.ready.eq(pipe.advance), self.o.payload.eq(z.value)]
        return m


def reparam_stages(pipe: Pipeline, mu: Ranged, sigma: Ranged, eps: Ranged, spec: ReparamSpec,
                   product: ProductPlan) -> Ranged:
    """Open :class:`Reparam`'s three stages in ``pipe`` (products and the mu term; their
    sum; the requantized z) and return z's register."""
    pps = partial_products(product, sigma, eps)
    pipe.stage()
    pps = [staged(pipe, pp, f"pp{n}") for n, pp in enumerate(pps)]
    mu_term = staged(pipe, spec.mu_term(mu), "mu_term")
    pipe.stage()
    halved = staged(pipe, mu_term + (sum_products(product, pps) << spec.prod_shift), "sum")
    pipe.stage()
    return staged(pipe, spec.finish_halved(halved), "z")
