"""Shared plumbing for fxvae's stream blocks: a stall-able pipeline and a register slice.

(Verilog export lives in one place: :func:`hw.verilog.convert`.)

Every datapath block (sigmoid, sigma ROM, reparameterization, sampler) is a
straight pipeline between an input and an output :mod:`amaranth.lib.stream`.
They all use the same, simplest correct stall rule, implemented once here:

    advance = ~o.valid | o.ready        i.ready = advance

On ``advance`` every stage register and every stage's valid bit moves one
step; otherwise the whole pipeline holds.  This never loses, duplicates or
reorders a payload: the output register is only overwritten when it is empty
or being transferred, and an input is only accepted when the first stage moves.
A bubble is squeezed out whenever the output is empty; a full pipeline under
back-pressure keeps its bubbles (acceptable: all fxvae producers stream densely).

The output's ``valid`` is a register (the last stage's valid bit) and never
depends combinationally on ``o.ready``, as the stream convention requires;
``i.ready`` does depend combinationally on ``o.ready``, which the convention
allows.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .cost import Cost, counter, counter_bits

__all__ = ["Pipeline", "RegisterSlice", "RegisterFifo"]


class Pipeline:
    """Builder for a pipeline whose stages all move together on one enable.

    Usage inside ``elaborate``::

        pipe = Pipeline(m, self.i.valid)           # Const(1) for a free-running source
        pipe.stage()                               # open stage 1
        a = pipe.reg(expr, shape, name="a")        # register loaded on advance
        pipe.stage()                               # open stage 2 ...
        b = pipe.reg(f(a), shape, name="b")
        pipe.finish(self.o)                        # o.valid = last valid bit
        m.d.comb += [self.i.ready.eq(pipe.advance), self.o.payload.eq(b)]

    ``pipe.latency`` is the number of stages opened: a payload accepted at clock
    edge t is presented on ``o`` (valid) after edge t + latency when the
    output is not stalled.
    """

    def __init__(self, m: Module, i_valid, *, name: str = "pipe"):
        self._m = m
        self._name = name
        self.advance = Signal(name=f"{name}_advance")
        self.valid = Value.cast(i_valid)  # valid bit of the newest stage opened so far
        self.latency = 0
        self._finished = False

    def stage(self) -> Signal:
        """Open the next stage; returns its valid bit (loaded from the previous one on advance)."""
        self.latency += 1
        valid = Signal(name=f"{self._name}_valid{self.latency}")
        with self._m.If(self.advance):
            self._m.d.sync += valid.eq(self.valid)
        self.valid = valid
        return valid

    def reg(self, value, shape, *, name: str) -> Signal:
        """A register of the current stage, loaded with ``value`` on advance.

        ``shape`` is chosen by the caller; it must hold every value ``value``
        can take (the arithmetic blocks size it from a proven range).  It has no
        reset (the stage's valid bit has): a reset that also reached every data
        register would sit in front of their enables as one more LUT level.
        """
        if self.latency == 0:
            raise RuntimeError("open a stage with Pipeline.stage() before adding registers")
        reg = Signal(shape, name=f"{name}_s{self.latency}", reset_less=True)
        with self._m.If(self.advance):
            self._m.d.sync += reg.eq(value)
        return reg

    def finish(self, o) -> None:
        """Drive ``o.valid`` from the last stage and close the stall loop on ``o.ready``."""
        if self._finished:
            raise RuntimeError("Pipeline.finish() called twice")
        if self.latency == 0:
            raise RuntimeError("a pipeline needs at least one stage")
        self._finished = True
        self._m.d.comb += [
            o.valid.eq(self.valid),
            self.advance.eq(~self.valid | o.ready),
        ]


class RegisterSlice(wiring.Component):
    """A stream passed through with every handshake a register (``i.ready``,
    ``o.valid``, ``o.payload``): no combinational path crosses it, so a
    consumer's ready logic never reaches into its producer's pipeline.  A
    word is on ``o`` one clock after its transfer on ``i`` (``latency``); a
    spare register takes the word that arrives while ``o`` is stalled, so
    the slice passes one word per clock.
    """

    latency = 1

    @staticmethod
    def register_bits(width: int) -> int:
        """Flip-flops: the output and the spare word, and their valid bits."""
        return 2 * width + 2

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        # the words have no reset (their valid bits have; see Pipeline.reg)
        out = Signal.like(self.i.payload, name="out", reset_less=True)
        spare = Signal.like(self.i.payload, name="spare", reset_less=True)
        spare_valid = Signal()
        m.d.comb += [self.i.ready.eq(~spare_valid), self.o.payload.eq(out)]
        with m.If(~self.o.valid | self.o.ready):
            with m.If(spare_valid):
                m.d.sync += [out.eq(spare), self.o.valid.eq(1), spare_valid.eq(0)]
            with m.Else():
                m.d.sync += [out.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & self.i.ready):
            m.d.sync += [spare.eq(self.i.payload), spare_valid.eq(1)]
        return m



class RegisterFifo(wiring.Component):
    """A FIFO of ``depth`` registers (no memory primitive: its cost is the same flip-flops
    on every FPGA) whose oldest entry is always entry 0, so ``o.payload`` is a register
    and a stage that routes by it adds no read multiplexer to its path (the core's
    job records feed the routing of the head's words: read through a multiplexer
    they were the iCE40 build's critical path).  A pop moves every entry down one; a
    push writes the first free entry.  ``o.valid`` is a register too, and ``pop``
    only selects between two values decoded from the registers, so a consumer's
    ready logic ends one LUT after it reaches the queue.

    The serial sampler buffers its draws in one; the core keeps each stage's job
    records (a job's mode bits) in one per stage, pushed at the command and
    popped after the job's last word has passed the stage.
    """

    def __init__(self, depth: int, shape):
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        self.depth = depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    @staticmethod
    def cost(depth: int, width: int) -> Cost:
        if depth == 0:
            return Cost()
        return Cost(registers=depth * width + counter_bits(depth + 1) + 1)   # + o.valid

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        entries = [Signal.like(self.i.payload, name=f"entry{k}") for k in range(depth)]
        count = counter(depth + 1)
        push = self.i.valid & self.i.ready
        pop = self.o.valid & self.o.ready
        m.d.comb += [
            self.i.ready.eq(count != depth),
            self.o.payload.eq(entries[0]),
        ]
        m.d.sync += [
            count.eq(count + push - pop),
            self.o.valid.eq(Mux(push, 1, Mux(pop, count != 1, count != 0))),
        ]
        for k, entry in enumerate(entries):
            # without a pop a push lands at ``count``; with one, everything moves down
            # and it lands at ``count - 1``
            stay = Mux(push & (count == k), self.i.payload, entry)
            if k + 1 < depth:
                shifted = Mux(push & (count == k + 1), self.i.payload, entries[k + 1])
                m.d.sync += entry.eq(Mux(pop, shifted, stay))
            else:
                m.d.sync += entry.eq(Mux(pop, entry, stay))
        return m
