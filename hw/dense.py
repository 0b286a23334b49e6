"""Time-multiplexed matrix-vector engine: one :class:`Dense` per layer.

The engine is the FINN "MVAU" / hls4ml "reuse factor" idea reduced to two
knobs: ``lanes`` (FINN's PE) share the layer's ``n_out`` rows over ``passes
= ceil(n_out / lanes)`` passes over the input vector, and each lane takes
``simd`` input words per clock (FINN's SIMD), so a pass takes ``groups =
ceil(n_in / simd)`` clocks and the layer has ``lanes * simd`` multipliers.
SIMD is what makes every added multiplier count where lanes alone are too
coarse (784 -> 128 at 64 lanes is 2 passes; 65 to 127 lanes still take 2).

Dataflow
--------
* With ``P == 1`` every input word is used once: it is issued *as it
  arrives* on ``i`` (one per accepted transfer), and there is no buffer.
* With ``P > 1`` or ``simd > 1`` the input buffer holds **two vectors** (FINN's
  double-buffered activations): ``i`` writes the next vector into one slot
  while the passes read the current one from the other, so consecutive
  images overlap across the layers and a layer's period is its own ``P *
  groups`` issue clocks, not its producer's.  Pass 0 follows the writer word
  by word (a word is issued the clock after it is written), so within an
  image the layer still overlaps with its producer; passes ``1 .. P-1``
  re-read the slot, one word per clock, with no gaps; after the last issue
  of the last pass the slot is released to the writer.  ``i.ready`` is low
  only while both slots hold vectors that are not yet released.  With SIMD
  the buffer is ``simd`` column memories (word ``g*simd + j`` in column
  ``j`` at group ``g``), all read at one address, and a group is issued the
  clock after its last word is written.
* In pass ``p`` lane ``k`` accumulates ``x[i] * W[p*lanes + k, i]`` for
  ``i = 0 .. n_in-1`` (with SIMD, ``simd`` of them per clock, summed in one
  more pipeline stage; padding columns have weight 0), starting from the
  bias ``b[p*lanes + k]`` (stored pre-aligned at ``acc_frac``, so adding it
  is exact, with the requantizer's rounding half added in).  The accumulator is sized from the span of every
  partial sum (:attr:`DensePlan.acc_span`), so it cannot overflow.
* At the end of a pass the raw lane sums are captured into the **output
  bank**, a ``lanes``-word shift register that serializes them onto ``o``
  while the next pass accumulates.  Each word is requantized (round half
  up, saturate: exactly :func:`model.fixed.requantize_halved`) and
  activated (ReLU is the clip's lower bound) *once*, by the one requantizer
  at the bank's head, as it
  moves into ``bank[0]`` (the ``o`` payload register); ``bank[1:]`` hold
  raw sums.  One requantizer instead of ``lanes``, and none of
  its logic sees the accumulators, which change every clock, so it does
  no work (in hardware or in an event-driven simulator) except once per
  output word.  The accumulators and the bank form the double buffer:
  serializing ``lanes`` words overlaps the next pass as long as
  ``lanes <= n_in``.  If the bank is still busy
  when the next pass finishes (``lanes >= n_in``, or ``o`` stalls), the whole
  MAC pipeline freezes until it drains.  The last pass emits only its
  ``n_out - (P-1)*lanes`` valid words (zero-padded rows never leave).

Pipeline (why five stages)
--------------------------
``S0`` issue (address the weight ROM and the buffer) -> ``S1`` synchronous
ROM / buffer read data (block-RAM friendly) -> ``S1b`` the read data in
registers the placer can put beside the block RAMs (their clock-to-out,
5.6 ns on the ECP5 without the output register Yosys leaves off, plus the
route to the lanes was the ECP5 MNIST build's critical path) -> ``S2``
operand registers beside the multipliers -> ``S3`` registered limb
products (:mod:`hw.mult`: one multiplier block each, usually one per lane)
-> ``S4`` accumulator.  One global
advance signal ``adv`` freezes every stage (ROM read ports use it as
enable), so stalls never lose or duplicate a word.  ``adv`` and the bank's
``capture`` reach every lane, so they are registers themselves (loaded
with their next-clock values), and ``o.valid``/``o.payload`` are registers: chained
layers have no combinational path between them (ready does not ripple
through the core), at the cost of one bubble cycle per pass when the bank is
the bottleneck.

Timing (exact, no stalls on ``o``; :mod:`hw.estimate` uses it)
-------------------------------------------------------------
A word transferred on ``i`` at cycle ``t`` is issued at ``t + input_delay``
at the earliest (1 when buffered, else 0).  An element issued at cycle ``t`` is in the accumulator at ``t + D``
(``D = PIPELINE_DEPTH = 5``); the last element of a pass issued at ``t`` is
captured into the bank at ``t + D`` (if the bank is free) and its words are
on ``o`` at ``t+D+1 .. t+D+cnt``; the bank is free again at ``t + D+1 + cnt``.  A capture that finds the bank busy
freezes the pipeline until then.

Weights
-------
One :class:`amaranth.lib.memory.Memory` ROM per layer, depth ``P * n_in``,
``lanes * w_width`` bits wide (:attr:`Dense.w_rom_words`): entry
``p*n_in + i`` holds ``W[p*lanes + k, i]`` in bits ``[k*w, (k+1)*w)`` for
every lane ``k`` (zero for the padding rows of the last pass).  All lanes
read the same address every clock, so one wide ROM with one read port
does what ``lanes`` narrow ones would (the same bits; one address decoder;
one read-data register to update per clock instead of ``lanes``).  For an
FPGA (``plan.block_ram``) the word is cut into columns, each a memory as
narrow as one block RAM of the ROM's depth takes (an ECP5 DP16KD holds
3,136 entries at 4 bits): left whole, Yosys cascades block RAMs in depth
and puts a multiplexer between their outputs and the operand register,
which was the first ECP5 MNIST build's critical path (63.7 MHz).  The
bias lives in a ``P``-entry ROM per lane in logic (a case statement), read
one stage ahead into a register.

Simulation cost (why the registers look the way they do)
--------------------------------------------------------
Icarus Verilog spends its time per *event*: every continuous assignment
whose input changes is re-evaluated (bit-serially, for arithmetic) and
every clocked process wakes on every clock edge.  The MAC lanes are the
only logic that changes every clock, so they are kept minimal: the
product, accumulator and bank registers have no reset (their contents are
never used before they are loaded: ``v3``/``first3``/``capture`` gate
them) and are written unconditionally with a ``Mux`` hold, which becomes one
continuous ``?:`` and one ``always @(posedge clk) q <= d`` in the Verilog
instead of an ``always @*`` process per register; the accumulator sum is
truncated to its span's width (exact: it cannot overflow) so the hold path
needs no sign extension.  None of this changes a bit or a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from model.artifact import DenseSpec
from model.fixed import Span, requantize_halved, rounding_half

from .arith import DEFAULT_MULT_WIDTH, Ranged, partial_products, span_shape, sum_products
from .cost import BlockRam, Cost, MemoryUse, counter, counter_bits, memory_attrs
from .mult import ProductPlan, product_plan

__all__ = ["Dense", "DensePlan", "dense_plan", "dense_rom_images", "weight_rom_words",
           "PIPELINE_DEPTH"]

#: Cycles from issuing an element to it being in the accumulator (S0 -> S4, S1b included)
#: with one input per lane; SIMD adds a stage that sums each lane's products.
PIPELINE_DEPTH = 5


def _check_lanes(lanes, what: str = "lanes") -> int:
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)):
        raise TypeError(f"{what} must be an int, not {lanes!r}")
    lanes = int(lanes)
    if lanes < 1:
        raise ValueError(f"{what} must be at least 1, not {lanes}")
    return lanes


@dataclass(frozen=True)
class DensePlan:
    """Shapes of one :class:`Dense`: lanes (outputs at a time, clamped to ``n_out``),
    SIMD (inputs at a time per lane, clamped to ``n_in``), passes, the lane product,
    and what it costs.  ``lanes * simd`` products per clock (FINN's PE x SIMD)."""

    spec: DenseSpec
    lanes: int
    mult_width: int
    block_ram: BlockRam | None = None
    bias_values: Span | None = None   # the layer's biases, when known (see dense_plan)
    simd: int = 1

    @property
    def passes(self) -> int:
        return -(-self.spec.n_out // self.lanes)

    @property
    def groups(self) -> int:
        """Issue clocks per pass: the input vector in groups of ``simd`` words."""
        return -(-self.spec.n_in // self.simd)

    @property
    def last_group_words(self) -> int:
        return self.spec.n_in - (self.groups - 1) * self.simd

    @property
    def pipeline_depth(self) -> int:
        """Clocks from an issue to the accumulator: :data:`PIPELINE_DEPTH`, and with
        SIMD one more, whose registers hold each lane's sum of ``simd`` products."""
        return PIPELINE_DEPTH + (self.simd > 1)

    @property
    def multipliers(self) -> int:
        """Products per clock (MAC units): ``lanes * simd``."""
        return self.lanes * self.simd

    @property
    def buffered(self) -> bool:
        """The layer reads its input more than once or in groups, so it keeps two vectors
        in a buffer (the one being computed and the next one arriving)."""
        return self.passes > 1 or self.simd > 1

    @property
    def buffer_depth(self) -> int:
        """Entries of each input buffer memory: two slots, each a power of two deep, so a
        slot's address is its bit above the group index (no adder in front of the RAM)."""
        return 2 << counter_bits(self.groups)

    @property
    def input_delay(self) -> int:
        """Clocks from an input word's transfer to its issue when the layer waits for
        it: a buffered layer reads it back from the buffer one clock after the write."""
        return 1 if self.buffered else 0

    @property
    def last_count(self) -> int:
        """Valid words of the last pass."""
        return self.spec.n_out - (self.passes - 1) * self.lanes

    @property
    def depth(self) -> int:
        """Weight ROM entries."""
        return self.passes * self.groups

    @property
    def rom_columns(self) -> list[tuple[int, int]]:
        """``(lo, width)`` bit slices of the weight ROM word, one memory each: as wide as
        one ``block_ram`` of the ROM's depth (the whole word without one)."""
        total = self.multipliers * self.spec.w_fmt.width
        step = total if self.block_ram is None else self.block_ram.column_width(self.depth)
        return [(lo, min(step, total - lo)) for lo in range(0, total, step)]

    @property
    def product(self) -> ProductPlan:
        return product_plan(Span.of_fmt(self.spec.in_fmt), Span.of_fmt(self.spec.w_fmt),
                            self.mult_width)

    @property
    def half(self) -> int:
        """The requantizer's rounding half, stored in the bias (``requantize_halved``)."""
        return rounding_half(self.spec.acc_frac, self.spec.out_fmt)

    @property
    def bias_span(self) -> Span:
        return Span.of_fmt(self.spec.bias_fmt) + self.half

    @property
    def bias_register_span(self) -> Span:
        """A lane's registered bias (``bias + half``, 0 in padding lanes): as wide as the
        layer's biases when the plan knows them, else as the bias format."""
        if self.bias_values is None:
            return self.bias_span
        shifted = self.bias_values + self.half
        return Span(min(shifted.lo, 0), max(shifted.hi, 0))

    @property
    def bank_shift(self) -> int:
        """Low accumulator bits the output bank drops: those the requantizer shifts out."""
        return max(self.spec.acc_frac - self.spec.out_fmt.frac, 0)

    @property
    def bank_span(self) -> Span:
        """An output bank word: an accumulator without its :attr:`bank_shift` low bits."""
        return self.acc_span >> self.bank_shift

    @property
    def lane_sum_span(self) -> Span:
        """A lane's sum of ``simd`` products (the SIMD stage's register)."""
        pp = self.product.span
        return Span(min(pp.lo, 0) * self.simd, max(pp.hi, 0) * self.simd)

    @property
    def acc_span(self) -> Span:
        """Every value the accumulator takes: the bias, then up to ``n_in`` products."""
        pp = self.product.span
        return self.bias_span + Span(min(pp.lo, 0) * self.spec.n_in, max(pp.hi, 0) * self.spec.n_in)

    @property
    def latency(self) -> int:
        """Cycles from the last pass's last issue to its first word on ``o``."""
        return self.pipeline_depth + 1

    def cost(self) -> Cost:
        spec, lanes, passes, simd, groups = (self.spec, self.lanes, self.passes, self.simd,
                                             self.groups)
        wx, ww, acc = spec.in_fmt.width, spec.w_fmt.width, self.acc_span.width
        memories = [MemoryUse(f"{spec.name}_w{c}", self.depth, width, sync_read=True,
                              writable=False) for c, (_, width) in enumerate(self.rom_columns)]
        buffer_registers = 0
        if self.buffered:
            memories += [MemoryUse(f"{spec.name}_buf{j}", self.buffer_depth, wx,
                                   sync_read=True, writable=True) for j in range(simd)]
            # groups written, column, write and read slots, vectors ahead, next group there
            buffer_registers = (counter_bits(groups) + (counter_bits(simd) if simd > 1 else 0)
                                + 2 + 2 + 1)
        pp_bits = sum(s.width for s in self.product.pp_spans)
        pass_bits = counter_bits(passes)
        macs = self.multipliers
        bias_bits = lanes * self.bias_register_span.width if passes > 1 else 0
        registers = (
            counter_bits(groups) + pass_bits + counter_bits(self.depth)      # S0 counters
            + 3                                               # adv, capture, bank_busy
            + buffer_registers
            + 3 + pass_bits + (0 if self.buffered else wx)  # S1: v first last, the input word
            + 3 + pass_bits + simd * wx + macs * ww                         # S1b: read data
            + 3 + pass_bits + simd * wx + macs * ww                         # S2: operands
            + 3 + pass_bits + macs * pp_bits                                # S3: products
            + (3 + pass_bits + lanes * self.lane_sum_span.width if simd > 1 else 0)  # sums
            + bias_bits                                       # the biases, beside S3 or the sums
            + 1 + pass_bits + lanes * acc                                   # S4: done, accumulators
            + spec.out_fmt.width + (lanes - 1) * self.bank_span.width       # output bank
            + counter_bits(lanes + 1))
        return Cost(multipliers=self.product.operand_widths * macs, memories=memories,
                    registers=registers)


def dense_plan(spec: DenseSpec, lanes, mult_width: int = DEFAULT_MULT_WIDTH,
               block_ram: BlockRam | None = None, bias=None, simd=1) -> DensePlan:
    """``lanes`` > ``n_out`` is clamped to ``n_out`` and ``simd`` > ``n_in`` to ``n_in``
    (the extra units could only idle); ``block_ram`` (:data:`hw.cost.BLOCK_RAMS`) cuts
    the weight ROM into columns; ``bias`` (the layer's bias ints) narrows the bias
    registers to what they hold."""
    if block_ram is not None and not isinstance(block_ram, BlockRam):
        raise TypeError(f"block_ram must be a hw.cost.BlockRam or None, not {block_ram!r}")
    values = None
    if bias is not None and np.size(bias):
        values = Span(int(np.min(bias)), int(np.max(bias)))
    return DensePlan(spec, min(_check_lanes(lanes), spec.n_out), mult_width, block_ram, values,
                     min(_check_lanes(simd, "simd"), spec.n_in))


def dense_rom_images(spec: DenseSpec, weight, bias, lanes: int,
                     simd: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The ROM contents of a :class:`Dense`: ``(weights (lanes*simd, P*G), bias (lanes, P))``
    with ``G = ceil(n_in / simd)`` groups per pass.

    ``W[p*lanes + k, g*simd + j]`` lands in slot ``k*simd + j`` (lane ``k``'s
    ``j``-th multiplier) at entry ``p*G + g``; rows past ``n_out`` and columns
    past ``n_in`` are zero (a zero weight makes the product exact whatever the
    input word).  The bias image holds ``bias + rounding_half``: the
    accumulator then ends on the rounded value and the requantizer is a shift
    and a clip.
    """
    lanes = _check_lanes(lanes)
    simd = _check_lanes(simd, "simd")
    weight = np.asarray(weight)
    bias = np.asarray(bias)
    if weight.shape != (spec.n_out, spec.n_in):
        raise ValueError(f"layer {spec.name!r}: weight must be {(spec.n_out, spec.n_in)}, "
                         f"not {weight.shape}")
    if bias.shape != (spec.n_out,):
        raise ValueError(f"layer {spec.name!r}: bias must be {(spec.n_out,)}, not {bias.shape}")
    if weight.size and (weight.min() < spec.w_fmt.min_int or weight.max() > spec.w_fmt.max_int):
        raise ValueError(f"layer {spec.name!r}: weights outside {spec.w_fmt}")
    bfmt = spec.bias_fmt  # what keeps the accumulator from overflowing
    if bias.size and (bias.min() < bfmt.min_int or bias.max() > bfmt.max_int):
        raise ValueError(f"layer {spec.name!r}: bias outside {bfmt} could overflow "
                         f"the {spec.acc_width}-bit accumulator")
    passes = -(-spec.n_out // lanes)
    groups = -(-spec.n_in // simd)
    padded_w = np.zeros((passes * lanes, groups * simd), dtype=np.int64)
    padded_w[:spec.n_out, :spec.n_in] = weight
    padded_b = np.zeros(passes * lanes, dtype=np.int64)
    padded_b[:spec.n_out] = bias + rounding_half(spec.acc_frac, spec.out_fmt)
    # (P, lanes, G, simd) -> (lanes, simd, P, G) -> (lanes*simd, P*G)
    w_img = (padded_w.reshape(passes, lanes, groups, simd).transpose(1, 3, 0, 2)
             .reshape(lanes * simd, passes * groups))
    b_img = padded_b.reshape(passes, lanes).T
    return w_img, b_img


def weight_rom_words(w_image: np.ndarray, w_width: int) -> list[int]:
    """The weight ROM: ``P * G`` words of ``lanes * simd * w_width`` bits, slot ``s``'s
    two's-complement weight (``w_image[s]``, see :func:`dense_rom_images`) in bits
    ``[s*w_width, (s+1)*w_width)``."""
    mask = (1 << w_width) - 1
    slots = w_image.shape[0]
    return [sum((int(w_image[s, a]) & mask) << (w_width * s) for s in range(slots))
            for a in range(w_image.shape[1])]


class Dense(wiring.Component):
    """One dense layer ``o = act(requantize(W @ i + b))`` with ``plan.lanes`` MAC lanes.

    Parameters
    ----------
    plan : :class:`DensePlan`
        Spec (shapes, formats, activation), lanes and multiplier width.
    weight : array of int, shape ``(n_out, n_in)``
        In ``spec.w_fmt``.
    bias : array of int, shape ``(n_out,)``
        At ``spec.acc_frac``.

    Members
    -------
    i : ``In(stream.Signature(signed(in_fmt.width)))``
        ``n_in`` words per vector.
    o : ``Out(stream.Signature(signed(out_fmt.width)))``
        ``n_out`` words per vector, in order.
    """

    def __init__(self, plan: DensePlan, weight, bias):
        if not isinstance(plan, DensePlan):
            raise TypeError(f"plan must be a DensePlan (see dense_plan), not {plan!r}")
        spec = plan.spec
        if spec.activation not in ("relu", "linear"):
            raise ValueError(f"activation must be 'relu' or 'linear', not {spec.activation!r}")
        self.plan = plan
        self.spec = spec
        self.w_image, self.b_image = dense_rom_images(spec, weight, bias, plan.lanes, plan.simd)
        held = plan.bias_register_span
        if self.b_image.size and not (held.lo <= self.b_image.min()
                                      and self.b_image.max() <= held.hi):
            raise ValueError(f"layer {spec.name!r}: biases outside the plan's {held} "
                             "(plan the layer with dense_plan(..., bias=these biases))")
        super().__init__({
            "i": In(stream.Signature(signed(spec.in_fmt.width))),
            "o": Out(stream.Signature(signed(spec.out_fmt.width))),
        })

    @property
    def lanes(self) -> int:
        return self.plan.lanes

    @property
    def passes(self) -> int:
        return self.plan.passes

    @property
    def w_rom_words(self) -> list[int]:
        return weight_rom_words(self.w_image, self.spec.w_fmt.width)

    def elaborate(self, platform):
        m = Module()
        spec, plan = self.spec, self.plan
        lanes, passes, simd, groups = plan.lanes, plan.passes, plan.simd, plan.groups
        acc_span = plan.acc_span
        acc_shape = span_shape(acc_span)
        x_shape = signed(spec.in_fmt.width)
        w_shape = signed(spec.w_fmt.width)

        def stage_flags(n, prev=None):
            """valid/first/last and the pass index of one stage, loaded on ``adv``."""
            flags = [Signal(name=f"{f}{n}") for f in ("v", "first", "last")]
            pidx = counter(passes, name=f"pass{n}")
            if prev is not None:
                with m.If(adv):
                    m.d.sync += [a.eq(b) for a, b in zip([*flags, pidx], prev)]
            return [*flags, pidx]

        def hold(signal, value):
            """``signal`` takes ``value`` on ``adv`` (a register without enable logic)."""
            m.d.sync += signal.eq(Mux(adv, value, signal))

        # ---- S0: issue -------------------------------------------------
        # adv, capture and bank_busy are registers, loaded with what they will be from
        # the next-state values: adv and capture fan out to every lane, so no logic may
        # sit in front of them
        adv = Signal(init=1)
        in_idx = counter(groups)      # the input group being issued
        pass_idx = counter(passes)
        waddr = counter(plan.depth)
        issue = Signal()
        last_in = in_idx == groups - 1
        last_pass = pass_idx == passes - 1
        with m.If(issue):
            m.d.sync += in_idx.eq(Mux(last_in, 0, in_idx + 1))
            with m.If(last_in):
                m.d.sync += pass_idx.eq(Mux(last_pass, 0, pass_idx + 1))
            m.d.sync += waddr.eq(Mux(last_in & last_pass, 0, waddr + 1))

        if plan.buffered:
            # two vector slots: the writer fills one from ``i`` while the passes read the
            # other, so the next image arrives while this one is still being computed;
            # pass 0 may follow the writer group by group into the slot it is filling.
            # Word ``g*simd + j`` lives in column memory ``j`` at address ``g`` of its slot.
            columns = []
            for j in range(simd):
                mem = Memory(shape=x_shape, depth=plan.buffer_depth, init=[],
                             attrs=memory_attrs(sync_read=True))
                m.submodules[f"buf{j}" if simd > 1 else "buf"] = mem
                columns.append((mem.write_port(), mem.read_port(domain="sync")))
            written = counter(groups)       # groups of the vector being written, complete
            column = counter(simd) if simd > 1 else Const(0)   # column of the next word
            wslot = Signal()                # the slot being written
            rslot = Signal()                # the slot the passes read
            ahead = Signal(range(3))        # vectors written in full and not yet released
            # the group at the issue index is in the buffer: a register (loaded with its
            # next-clock value below), since issue fans out to every counter and stage
            avail = Signal()
            write = Signal()
            m.d.comb += [
                self.i.ready.eq(ahead != 2),
                write.eq(self.i.valid & self.i.ready),
                issue.eq(adv & avail),
            ]
            for j, (wport, rport) in enumerate(columns):
                m.d.comb += [wport.addr.eq(Cat(written, wslot)), wport.data.eq(self.i.payload),
                             wport.en.eq(write & (column == j) if simd > 1 else write),
                             rport.addr.eq(Cat(in_idx, rslot)), rport.en.eq(adv)]
            in_last_group = written == groups - 1
            wrote_all = write & in_last_group & (column == plan.last_group_words - 1)
            group_done = write & ((column == simd - 1) | wrote_all)
            released = issue & last_in & last_pass
            ahead_next = Signal(range(3))
            m.d.comb += ahead_next.eq(ahead + wrote_all - released)
            m.d.sync += ahead.eq(ahead_next)
            # With no whole vector ahead the passes read the slot being written (pass 0:
            # a pass cannot end before its vector is complete), and the next group is
            # there when the writer's count will exceed the reader's next index.  After
            # a release that index is 0; otherwise both counts move by at most one.
            lead = Signal(signed(len(written) + 1))
            m.d.comb += lead.eq(written - in_idx)
            step = Mux(issue, Mux(group_done, lead > 0, lead > 1),
                       Mux(group_done, lead >= 0, lead > 0))
            m.d.sync += avail.eq((ahead_next != 0)
                                 | Mux(released, (written != 0) | group_done, step))
            with m.If(wrote_all):
                m.d.sync += wslot.eq(~wslot)
            with m.If(released):
                m.d.sync += rslot.eq(~rslot)
            if simd > 1:
                with m.If(write):
                    m.d.sync += column.eq(Mux(group_done, 0, column + 1))
            with m.If(group_done):
                m.d.sync += written.eq(Mux(wrote_all, 0, written + 1))
        else:
            # one pass, one word at a time: every word is used once, as it arrives
            m.d.comb += [self.i.ready.eq(adv), issue.eq(adv & self.i.valid)]

        # weight ROM (every multiplier's weight in one word), read synchronously at the
        # issue address, in columns one block RAM deep (plan.rom_columns)
        ww = spec.w_fmt.width
        words = self.w_rom_words
        rom_data = []
        for c, (lo, width) in enumerate(plan.rom_columns):
            rom = Memory(shape=unsigned(width), depth=plan.depth,
                         init=[(word >> lo) & ((1 << width) - 1) for word in words],
                         attrs=memory_attrs(sync_read=True))
            m.submodules[f"w_rom{c}" if len(plan.rom_columns) > 1 else "w_rom"] = rom
            port = rom.read_port(domain="sync")
            m.d.comb += [port.addr.eq(waddr), port.en.eq(adv)]
            rom_data.append(port.data)
        w1 = Cat(*rom_data)

        # ---- S1: read data ---------------------------------------------
        s1 = stage_flags(1, [issue, in_idx == 0, last_in, pass_idx])
        if plan.buffered:
            x1 = [rport.data for _, rport in columns]
        else:
            x1 = [Signal(x_shape, reset_less=True)]
            hold(x1[0], self.i.payload)

        # ---- S1b: the read data registered beside the block RAMs ------------
        s1b = stage_flags("1b", s1)
        x1b = [Signal(x_shape, name=f"x1b_{j}", reset_less=True) for j in range(simd)]
        w1b = Signal(len(w1), name="w1b", reset_less=True)
        for reg, value in zip(x1b, x1):
            hold(reg, value)
        hold(w1b, w1)

        # ---- S2: operand registers ----------------------------------------
        s2 = stage_flags(2, s1b)
        x2 = [Signal(x_shape, name=f"x2_{j}", reset_less=True) for j in range(simd)]
        for reg, value in zip(x2, x1b):
            hold(reg, value)
        w2 = [[Signal(w_shape, name=f"w2_{k}_{j}", reset_less=True) for j in range(simd)]
              for k in range(lanes)]
        for k in range(lanes):
            for j in range(simd):
                slot = k * simd + j
                hold(w2[k][j], w1b[ww * slot: ww * (slot + 1)].as_signed())

        # ---- S3: limb products (one multiplier block each) -----------------
        s3 = stage_flags(3, s2)
        product = plan.product
        lane_products = []   # per lane, its simd products
        for k in range(lanes):
            lane_products.append([])
            for j in range(simd):
                pps = partial_products(product, Ranged(x2[j], Span.of_fmt(spec.in_fmt)),
                                       Ranged(w2[k][j], Span.of_fmt(spec.w_fmt)))
                tag = f"{k}_{j}" if simd > 1 else f"{k}"
                regs = [Signal(span_shape(pp.span), name=f"pp{tag}_{n}", reset_less=True)
                        for n, pp in enumerate(pps)]
                for r, pp in zip(regs, pps):
                    hold(r, pp.value)
                lane_products[k].append(sum_products(product, [Ranged(r, pp.span)
                                                               for r, pp in zip(regs, pps)]))

        # ---- S3b (SIMD only): each lane's products summed ------------------------
        if simd > 1:
            pre = stage_flags("3b", s3)   # the stage in front of the accumulators
            sums = []
            for k in range(lanes):
                total = Signal(span_shape(plan.lane_sum_span), name=f"sum{k}", reset_less=True)
                hold(total, sum(p.value for p in lane_products[k]))
                sums.append(total)
            before_pre = s3
        else:
            pre, before_pre = s3, s2
            sums = [lane_products[k][0].value for k in range(lanes)]

        # bias: a constant with one pass; else a P-entry ROM per lane in logic, read with
        # the previous stage's pass index into a register beside the sums, so no ROM
        # logic sits before the accumulator (as a Memory, Yosys moved that register
        # back in front of the ROM)
        biases = []
        bias_shape = span_shape(plan.bias_register_span)
        for k in range(lanes):
            if passes == 1:
                biases.append(Const(int(self.b_image[k, 0]), span_shape(plan.bias_span)))
            else:
                bias = Signal(bias_shape, name=f"bias{k}", reset_less=True)
                with m.If(adv), m.Switch(before_pre[3]):
                    for p, value in enumerate(self.b_image[k][:-1]):
                        with m.Case(p):
                            m.d.sync += bias.eq(int(value))
                    with m.Default():   # the last pass (the index never goes beyond it)
                        m.d.sync += bias.eq(int(self.b_image[k][-1]))
                biases.append(bias)

        # ---- S4: accumulators --------------------------------------------
        v3, first3, last3 = pre[:3]
        accs = [Signal(acc_shape, name=f"acc{k}", reset_less=True) for k in range(lanes)]
        done4 = Signal()       # accumulators hold a finished pass
        pass4 = counter(passes)
        acc_en = Signal()
        m.d.comb += acc_en.eq(adv & v3)
        done4_next = Mux(adv, v3 & last3, done4)
        m.d.sync += done4.eq(done4_next)
        with m.If(adv):
            m.d.sync += pass4.eq(pre[3])
        # (every sum lies in acc_span: truncating to its width is exact)
        m.d.sync += [accs[k].eq(Mux(acc_en, Ranged(Mux(first3, biases[k], accs[k])
                                                   + sums[k], acc_span).value,
                                    accs[k]))
                     for k in range(lanes)]

        # ---- output bank: raw accumulators in, one requantizer at its head ----
        # bank[0] is the word on ``o`` (requantized, a register); bank[1:]
        # hold raw accumulator values.  Capture loads requantize(acc0) into
        # bank[0] and acc1.. into bank[1:]; each transfer loads
        # requantize(bank[1]) into bank[0] and shifts the rest down.
        # bank[1:] drop the low bits the requantizer's shift would drop anyway.
        capture = Signal()     # done4 & ~bank_busy
        shift, bank_span = plan.bank_shift, plan.bank_span
        bank = [Signal(signed(spec.out_fmt.width), name="bank0")]
        bank += [Signal(span_shape(bank_span), name=f"bank{k}", reset_less=True)
                 for k in range(1, lanes)]
        banked = [acc >> shift for acc in accs]
        remaining = counter(lanes + 1)
        bank_busy = Signal()   # remaining != 0
        m.d.comb += [
            self.o.valid.eq(bank_busy),
            self.o.payload.eq(bank[0]),
        ]
        rq_in = Signal(span_shape(bank_span))
        m.d.comb += rq_in.eq(Mux(capture, banked[0], bank[1]) if lanes > 1 else banked[0])
        y = requantize_halved(Ranged(rq_in, bank_span), spec.acc_frac - shift, spec.out_fmt,
                              relu=spec.activation == "relu")
        xfer = Signal()
        m.d.comb += xfer.eq(self.o.valid & self.o.ready)
        m.d.sync += [bank[k].eq(Mux(capture, banked[k], Mux(xfer, bank[k + 1], bank[k])))
                     for k in range(1, lanes - 1)]
        if lanes > 1:
            m.d.sync += bank[lanes - 1].eq(Mux(capture, banked[lanes - 1], bank[lanes - 1]))
        with m.If(capture):
            m.d.sync += bank[0].eq(y.value)
            m.d.sync += remaining.eq(Mux(pass4 == passes - 1, plan.last_count, lanes))
        with m.Elif(xfer):
            if lanes > 1:
                m.d.sync += bank[0].eq(y.value)
            m.d.sync += remaining.eq(remaining - 1)
        busy_next = capture | Mux(xfer, remaining != 1, bank_busy)
        m.d.sync += [bank_busy.eq(busy_next), capture.eq(done4_next & ~busy_next),
                     adv.eq(~(done4_next & busy_next))]
        return m
