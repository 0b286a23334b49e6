"""Time-multiplexed matrix-vector engine: one :class:`Dense` per layer.

The engine is the FINN "MVAU" / hls4ml "reuse factor" idea reduced to one
knob: ``lanes`` multiply-accumulate units share the layer's ``n_out`` rows
over ``passes = ceil(n_out / lanes)`` passes over the input vector.

Dataflow, one vector
--------------------
* **Pass 0** consumes the input words *as they arrive* on ``i`` (one per
  accepted transfer) and writes each into the input buffer, so a layer
  overlaps with its producer: by the time the producer's last word arrives
  pass 0 is already done.
* **Passes 1 .. P-1** re-read the buffer, one word per clock, with no gaps.
  (With ``P == 1`` there is no buffer at all.)
* In pass ``p`` lane ``k`` accumulates ``x[i] * W[p*lanes + k, i]`` for
  ``i = 0 .. n_in-1``, starting from the bias ``b[p*lanes + k]`` (stored
  pre-aligned at ``acc_frac``, so adding it is exact).  The accumulator is
  ``spec.acc_width`` bits and cannot overflow (:func:`model.fixed.acc_width`).
* At the end of a pass the raw lane sums are captured into the **output
  bank**, a ``lanes``-word shift register that serializes them onto ``o``
  while the next pass accumulates.  Each word is requantized (round half
  up, saturate: exactly :func:`model.fixed.requantize`) and activated
  (relu | linear) *once*, by the one requantizer at the bank's head, as it
  moves into ``bank[0]`` (the ``o`` payload register); ``bank[1:]`` hold
  ``acc_width``-bit sums.  One requantizer instead of ``lanes``, and none of
  its logic sees the accumulators, which change every clock, so it does
  no work (in hardware or in an event-driven simulator) except once per
  output word.  The accumulators and the bank form the double buffer:
  serializing ``lanes`` words overlaps the next pass as long as
  ``lanes <= n_in``.  If the bank is still busy
  when the next pass finishes (``lanes >= n_in``, or ``o`` stalls), the whole
  MAC pipeline freezes until it drains.  The last pass emits only its
  ``n_out - (P-1)*lanes`` valid words (zero-padded rows never leave).

Pipeline (why three stages)
---------------------------
``S0`` issue (address the weight ROM and the buffer) -> ``S1`` synchronous
ROM / buffer read data (block-RAM friendly) -> ``S2`` registered product
(maps onto a DSP's output register) -> ``S3`` accumulator.  One global
advance signal ``adv`` freezes every stage (ROM read ports use it as
enable), so stalls never lose or duplicate a word.  ``adv`` is a function
of registers only, and ``o.valid``/``o.payload`` are registers: chained
layers have no combinational path between them (ready does not ripple
through the core), at the cost of one bubble cycle per pass when the bank is
the bottleneck.

Timing (exact, no stalls on ``o``; :mod:`hw.estimate` uses it)
-------------------------------------------------------------
An element issued at cycle ``t`` is in the accumulator at ``t + 3``; the last
element of a pass issued at ``t`` is captured into the bank at ``t + 3``
(if the bank is free) and its words are on ``o`` at ``t+4 .. t+3+cnt``; the
bank is free again at ``t + 4 + cnt``.  A capture that finds the bank busy
freezes the pipeline until then.

Weights
-------
One :class:`amaranth.lib.memory.Memory` ROM per layer, depth ``P * n_in``,
``lanes * w_width`` bits wide (:attr:`Dense.w_rom_words`): entry
``p*n_in + i`` holds ``W[p*lanes + k, i]`` in bits ``[k*w, (k+1)*w)`` for
every lane ``k`` (zero for the padding rows of the last pass).  All lanes
read the same address every clock, so one wide ROM with one read port
does what ``lanes`` narrow ones would (the same bits; one address decoder;
one read-data register to update per clock instead of ``lanes``).  The
bias lives in a ``P``-entry ROM per lane read asynchronously (a handful of
LUTs).

Simulation cost (why the registers look the way they do)
--------------------------------------------------------
Icarus Verilog spends its time per *event*: every continuous assignment
whose input changes is re-evaluated (bit-serially, for arithmetic) and
every clocked process wakes on every clock edge.  The MAC lanes are the
only logic that changes every clock, so they are kept minimal: the
product, accumulator and bank registers have no reset (their contents are
never used before they are loaded: ``v2``/``first2``/``capture`` gate
them) and are written unconditionally with a ``Mux`` hold, which becomes one
continuous ``?:`` and one ``always @(posedge clk) q <= d`` in the Verilog
instead of an ``always @*`` process per register; the accumulator sum is
truncated to ``acc_width`` (exact: it cannot overflow) so the hold path
needs no sign extension.  None of this changes a bit or a cycle.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from model.artifact import DenseSpec
from model.fixed import Fmt

__all__ = ["Dense", "dense_rom_images", "PIPELINE_DEPTH"]

#: Cycles from issuing an element to it being in the accumulator (S0 -> S3).
PIPELINE_DEPTH = 3


def _check_lanes(lanes, n_out: int) -> int:
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)):
        raise TypeError(f"lanes must be an int, not {lanes!r}")
    lanes = int(lanes)
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, not {lanes}")
    return lanes


def dense_rom_images(spec: DenseSpec, weight, bias, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """The ROM contents of a :class:`Dense`: ``(weights (lanes, P*n_in), bias (lanes, P))``.

    Row ``p*lanes + k`` of ``weight`` lands in lane ``k`` at entries
    ``p*n_in .. p*n_in + n_in - 1``; rows past ``n_out`` are zero.
    """
    lanes = _check_lanes(lanes, spec.n_out)
    weight = np.asarray(weight)
    bias = np.asarray(bias)
    if weight.shape != (spec.n_out, spec.n_in):
        raise ValueError(f"layer {spec.name!r}: weight must be {(spec.n_out, spec.n_in)}, "
                         f"not {weight.shape}")
    if bias.shape != (spec.n_out,):
        raise ValueError(f"layer {spec.name!r}: bias must be {(spec.n_out,)}, not {bias.shape}")
    if weight.size and (weight.min() < spec.w_fmt.min_int or weight.max() > spec.w_fmt.max_int):
        raise ValueError(f"layer {spec.name!r}: weights outside {spec.w_fmt}")
    # spec.bias_fmt (acc_width - 1 bits) is what keeps the accumulator from
    # overflowing: |sum of products| <= 2**(acc_width-3), |bias| <= 2**(acc_width-2).
    bfmt = Fmt(spec.acc_width - 1, spec.acc_frac)
    if bias.size and (bias.min() < bfmt.min_int or bias.max() > bfmt.max_int):
        raise ValueError(f"layer {spec.name!r}: bias outside {bfmt} could overflow "
                         f"the {spec.acc_width}-bit accumulator")
    passes = -(-spec.n_out // lanes)
    padded_w = np.zeros((passes * lanes, spec.n_in), dtype=np.int64)
    padded_w[:spec.n_out] = weight
    padded_b = np.zeros(passes * lanes, dtype=np.int64)
    padded_b[:spec.n_out] = bias
    # (P, lanes, n_in) -> (lanes, P, n_in) -> (lanes, P*n_in)
    w_img = padded_w.reshape(passes, lanes, spec.n_in).transpose(1, 0, 2).reshape(lanes, -1)
    b_img = padded_b.reshape(passes, lanes).T
    return w_img, b_img


class Dense(wiring.Component):
    """One dense layer ``o = act(requantize(W @ i + b))`` with ``lanes`` MAC lanes.

    Parameters
    ----------
    spec : :class:`model.artifact.DenseSpec`
        Shapes, formats and activation.
    weight : array of int, shape ``(n_out, n_in)``
        In ``spec.w_fmt``.
    bias : array of int, shape ``(n_out,)``
        At ``spec.acc_frac``.
    lanes : int
        Parallel multiply-accumulate units (>= 1).  ``lanes > n_out`` is
        clamped to ``n_out`` (the extra lanes could only idle).

    Members
    -------
    i : ``In(stream.Signature(signed(in_fmt.width)))``
        ``n_in`` words per vector.
    o : ``Out(stream.Signature(signed(out_fmt.width)))``
        ``n_out`` words per vector, in order.
    """

    def __init__(self, spec: DenseSpec, weight, bias, lanes: int):
        self._MustUse__silence = True      # a rejected construction is not "unused"
        self._validate(spec, weight, bias, lanes)
        self._MustUse__silence = False
        super().__init__({
            "i": In(stream.Signature(signed(spec.in_fmt.width))),
            "o": Out(stream.Signature(signed(spec.out_fmt.width))),
        })

    def _validate(self, spec, weight, bias, lanes):
        if not isinstance(spec, DenseSpec):
            raise TypeError(f"spec must be a DenseSpec, not {spec!r}")
        if spec.activation not in ("relu", "linear"):
            raise ValueError(f"activation must be 'relu' or 'linear', not {spec.activation!r}")
        self.spec = spec
        # More lanes than outputs would only add idle MACs (same cycle count), so clamp.
        self.requested_lanes = _check_lanes(lanes, spec.n_out)
        self.lanes = min(self.requested_lanes, spec.n_out)
        self.passes = -(-spec.n_out // self.lanes)
        self.last_count = spec.n_out - (self.passes - 1) * self.lanes
        self.w_image, self.b_image = dense_rom_images(spec, weight, bias, self.lanes)

    # -- figures used by hw.estimate and the JSON report -------------------
    @property
    def latency(self) -> int:
        """Cycles from the last pass's last issue to its first word on ``o``."""
        return PIPELINE_DEPTH + 1

    @property
    def w_rom_words(self) -> list[int]:
        """The weight ROM image: ``P * n_in`` words of ``lanes * w_width`` bits, lane ``k``'s
        two's-complement weight in bits ``[k*w_width, (k+1)*w_width)``."""
        ww = self.spec.w_fmt.width
        mask = (1 << ww) - 1
        return [sum((int(self.w_image[k, a]) & mask) << (ww * k) for k in range(self.lanes))
                for a in range(self.w_image.shape[1])]

    @property
    def rom_bits(self) -> dict[str, int]:
        n = self.spec.n_in
        return {"weights": self.lanes * self.passes * n * self.spec.w_fmt.width,
                "bias": self.lanes * self.passes * (self.spec.acc_width - 1)}

    def _requantize(self, m, acc):
        """``model.fixed.requantize`` (round half up, saturate) and the activation of ``acc``."""
        spec = self.spec
        out_fmt = spec.out_fmt
        shift = spec.acc_frac - out_fmt.frac
        if shift > 0:
            expr = (acc + (1 << (shift - 1))) >> shift
        else:
            expr = acc << -shift
        rounded = Signal(expr.shape(), name="rounded")  # one adder, shared by the comparisons
        m.d.comb += rounded.eq(expr)
        sat = Mux(rounded > out_fmt.max_int, out_fmt.max_int,
                  Mux(rounded < out_fmt.min_int, out_fmt.min_int, rounded))
        if spec.activation == "relu":
            sat = Mux(rounded < 0, 0, sat)
        return sat

    def elaborate(self, platform):
        m = Module()
        spec, lanes, passes = self.spec, self.lanes, self.passes
        n_in = spec.n_in
        acc_shape = signed(spec.acc_width)
        x_shape = signed(spec.in_fmt.width)
        depth = passes * n_in

        # ---- S0: issue -------------------------------------------------
        adv = Signal()
        in_idx = Signal(range(max(n_in, 2)))
        pass_idx = Signal(range(max(passes, 2)))
        waddr = Signal(range(max(depth, 2)))
        in_pass0 = Signal()
        m.d.comb += in_pass0.eq(pass_idx == 0)
        issue = Signal()
        m.d.comb += [
            self.i.ready.eq(adv & in_pass0),
            issue.eq(adv & Mux(in_pass0, self.i.valid, 1)),
        ]
        last_in = in_idx == n_in - 1
        last_pass = pass_idx == passes - 1
        with m.If(issue):
            m.d.sync += in_idx.eq(Mux(last_in, 0, in_idx + 1))
            with m.If(last_in):
                m.d.sync += pass_idx.eq(Mux(last_pass, 0, pass_idx + 1))
            m.d.sync += waddr.eq(Mux(last_in & last_pass, 0, waddr + 1))

        # input buffer (only needed when a vector is read more than once)
        if passes > 1:
            m.submodules.buf = buf = Memory(shape=x_shape, depth=n_in, init=[])
            buf_w = buf.write_port()
            buf_r = buf.read_port(domain="sync")
            m.d.comb += [
                buf_w.addr.eq(in_idx), buf_w.data.eq(self.i.payload),
                buf_w.en.eq(issue & in_pass0),
                buf_r.addr.eq(in_idx), buf_r.en.eq(adv),
            ]

        # weight ROM (all lanes in one word), read synchronously at the issue address
        ww = spec.w_fmt.width
        rom = Memory(shape=unsigned(ww * lanes), depth=depth, init=self.w_rom_words)
        m.submodules.w_rom = rom
        port = rom.read_port(domain="sync")
        m.d.comb += [port.addr.eq(waddr), port.en.eq(adv)]
        w_data = [port.data[ww * k: ww * (k + 1)].as_signed() for k in range(lanes)]

        # ---- S1: read data ---------------------------------------------
        v1 = Signal()
        first1 = Signal()
        last1 = Signal()
        pass1 = Signal.like(pass_idx)
        frombuf1 = Signal()
        x_reg = Signal(x_shape, reset_less=True)
        with m.If(adv):
            m.d.sync += [
                v1.eq(issue), first1.eq(in_idx == 0), last1.eq(last_in),
                pass1.eq(pass_idx), frombuf1.eq(~in_pass0),
            ]
        m.d.sync += x_reg.eq(Mux(adv, self.i.payload, x_reg))
        x1 = Signal(x_shape)
        if passes > 1:
            m.d.comb += x1.eq(Mux(frombuf1, buf_r.data, x_reg))
        else:
            m.d.comb += x1.eq(x_reg)

        # ---- S2: products ------------------------------------------------
        v2 = Signal()
        first2 = Signal()
        last2 = Signal()
        pass2 = Signal.like(pass_idx)
        prod_shape = signed(spec.in_fmt.width + spec.w_fmt.width)
        prods = [Signal(prod_shape, name=f"prod{k}", reset_less=True) for k in range(lanes)]
        with m.If(adv):
            m.d.sync += [v2.eq(v1), first2.eq(first1), last2.eq(last1), pass2.eq(pass1)]
        m.d.sync += [prods[k].eq(Mux(adv, x1 * w_data[k], prods[k])) for k in range(lanes)]

        # bias, indexed by the pass in S2 (asynchronous P-entry ROM per lane)
        biases = []
        for k in range(lanes):
            if passes == 1:
                biases.append(Const(int(self.b_image[k, 0]), signed(spec.acc_width - 1)))
            else:
                rom = Memory(shape=signed(spec.acc_width - 1), depth=passes,
                             init=[int(v) for v in self.b_image[k]])
                m.submodules[f"b_rom{k}"] = rom
                port = rom.read_port(domain="comb")
                m.d.comb += port.addr.eq(pass2)
                biases.append(port.data)

        # ---- S3: accumulators --------------------------------------------
        accs = [Signal(acc_shape, name=f"acc{k}", reset_less=True) for k in range(lanes)]
        done3 = Signal()       # accumulators hold a finished pass
        pass3 = Signal.like(pass_idx)
        acc_en = Signal()
        m.d.comb += acc_en.eq(adv & v2)
        with m.If(adv):
            m.d.sync += [done3.eq(v2 & last2), pass3.eq(pass2)]
        # (the sum cannot overflow acc_width: truncating it is exact)
        m.d.sync += [accs[k].eq(Mux(acc_en, (Mux(first2, biases[k], accs[k]) + prods[k])
                                    [:spec.acc_width].as_signed(), accs[k]))
                     for k in range(lanes)]

        # ---- output bank: raw accumulators in, one requantizer at its head ----
        # bank[0] is the word on ``o`` (requantized, a register); bank[1:]
        # hold raw accumulator values.  Capture loads requantize(acc0) into
        # bank[0] and acc1.. into bank[1:]; each transfer loads
        # requantize(bank[1]) into bank[0] and shifts the rest down.
        capture = Signal()
        bank = [Signal(signed(spec.out_fmt.width), name="bank0")]
        bank += [Signal(acc_shape, name=f"bank{k}", reset_less=True) for k in range(1, lanes)]
        remaining = Signal(range(lanes + 1))
        bank_busy = Signal()
        m.d.comb += [
            bank_busy.eq(remaining != 0),
            capture.eq(done3 & ~bank_busy),
            adv.eq(~(done3 & bank_busy)),
            self.o.valid.eq(bank_busy),
            self.o.payload.eq(bank[0]),
        ]
        rq_in = Signal(acc_shape)
        if lanes > 1:
            m.d.comb += rq_in.eq(Mux(capture, accs[0], bank[1]))
        else:
            m.d.comb += rq_in.eq(accs[0])
        y = Signal(signed(spec.out_fmt.width))
        m.d.comb += y.eq(self._requantize(m, rq_in))
        xfer = Signal()
        m.d.comb += xfer.eq(self.o.valid & self.o.ready)
        m.d.sync += [bank[k].eq(Mux(capture, accs[k], Mux(xfer, bank[k + 1], bank[k])))
                     for k in range(1, lanes - 1)]
        if lanes > 1:
            m.d.sync += bank[lanes - 1].eq(Mux(capture, accs[lanes - 1], bank[lanes - 1]))
        with m.If(capture):
            m.d.sync += bank[0].eq(y)
            if passes > 1:
                m.d.sync += remaining.eq(Mux(pass3 == passes - 1, self.last_count, lanes))
            else:
                m.d.sync += remaining.eq(self.last_count)
        with m.Elif(xfer):
            if lanes > 1:
                m.d.sync += bank[0].eq(y)
            m.d.sync += remaining.eq(remaining - 1)
        return m
