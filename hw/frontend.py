"""``UartFrontend``: a :class:`hw.core.VAECore` behind a UART speaking :mod:`hw.protocol`.

Data flow (one small component each, every one with its own simulator test)::

    rx -> UartRx -> Unstuff -> FrameParser -> Sequencer       a record per frame
                               FrameParser -> FrameStore      a job's words, in its slot
    Sequencer -> core.cmd, core reset; FrameStore -> core.i   when the job's turn comes
    Sequencer -> ReplyTx                                      a reply request per frame
    core.o -> ReplyTx -> Stuff -> UartTx -> tx

* :class:`FrameParser` checks each frame as its bytes arrive (CRC-16 one byte
  per clock, header fields, lengths, the inter-byte timeout) and writes a
  job's words into the frame's slot of :class:`FrameStore`; at the frame's
  end it hands :class:`Sequencer` one record: status, command, tag, mode.
  Nothing reaches the core before the whole frame, CRC included, is verified.
* :class:`Sequencer` keeps the slots as a ring in arrival order and serves
  them one at a time: an accepted job sends its mode to the core and its
  words from the store; ``RESET`` pulses the core's reset (``ResetInserter``:
  the core, sampler included, restarts as after power-up); every frame,
  good or bad, gets its reply from :class:`ReplyTx` in ring order, and its
  slot is freed when the reply's last byte has left.  Frames that begin when
  every slot is taken are refused; consecutive refused frames are merged
  into one OVERFLOW record that takes the next slot to free up, so even an
  unbounded burst is answered, in order, in bounded space.
* :class:`ReplyTx` builds the reply: header, payload (the core's output words
  as they come, the info ROM, or the refused count), CRC, end of frame.

Timing: the frontend must never be what limits the core's clock, so its
paths are kept to a few LUTs.  Every block's outputs are registers (the
core's ``o`` too: its output register slice), so no handshake reaches
from the frontend into the core.
No path both decides and acts: :class:`Stuff`, :class:`FrameParser`,
:class:`Sequencer` and :class:`ReplyTx` take what arrives into a register,
with the decision it needs worked out on the way in, and act on it the next
clock (they take a symbol or record at most every second clock; a UART
character is tens of clocks); their ``ready`` is a register, as is
:class:`hw.uart.UartTx`'s.  Counters end on a sign or marker bit, not a
compare, and long ones (the word count, the timeout) run in two parts so no
carry chain is longer than about half the count (:class:`_Laps`).  The
parser and the sequencer need a few clocks after a frame's end to file it;
the next frame's first byte is a character later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from amaranth.back import rtlil
from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from model.fixed import MODES

from .core import IMAGE_MODES, MODE_CODES, VAECore, cmd_layout, out_layout
from .cost import memory_attrs
from .plan import CorePlan
from .protocol import (
    CRC_BYTES, CRC_INIT, DEFAULT_BAUD, DEFAULT_SLOTS, DEFAULT_TIMEOUT_US, ESC, ESC_XOR, FLAG,
    MIN_REQUEST, REPLY_HEADER, REQUEST_HEADER, BoardInfo, Command, Status, crc16_taps,
    output_words, word_bytes,
)
from .streamutil import Pipeline
from .uart import UartRx, UartTx, uart_divisor

__all__ = ["crc16_next", "symbol_layout", "record_layout", "Unstuff", "Stuff", "FrameParser",
           "FrameStore", "Sequencer", "ReplyTx", "UartFrontend",
           "netlist_bits", "FrontendPlan", "frontend_plan"]

STATUS_SHAPE = unsigned(max(Status).bit_length())
CMD_SHAPE = unsigned(max(Command).bit_length())
MODE_SHAPE = unsigned((len(MODES) - 1).bit_length())
#: Bytes of the request header (protocol) by position.
CMD_POS, TAG_POS, MODE_POS, COUNT_LO_POS, COUNT_HI_POS = range(REQUEST_HEADER)


def crc16_next(crc, byte):
    """:func:`hw.protocol.crc16_update` as logic: each bit an XOR of the bits its
    row of :func:`hw.protocol.crc16_taps` names."""
    return Cat(*[(crc & crc_mask).xor() ^ (byte & byte_mask).xor()
                 for crc_mask, byte_mask in crc16_taps()])


def symbol_layout() -> data.StructLayout:
    """A framed byte: ``data``, or ``end`` of frame (``data`` ignored)."""
    return data.StructLayout({"data": 8, "end": 1})


def record_layout() -> data.StructLayout:
    """The parser's verdict on one frame (``cmd``/``mode`` meaningful when OK)."""
    return data.StructLayout({"status": STATUS_SHAPE, "cmd": CMD_SHAPE, "tag": 8,
                              "mode": MODE_SHAPE})


class Source:
    """Where a reply's payload comes from."""
    NONE, CORE, INFO, COUNT = range(4)


def request_layout() -> data.StructLayout:
    """What the sequencer asks :class:`ReplyTx` to send."""
    return data.StructLayout({"status": STATUS_SHAPE, "tag": 8, "source": 2,
                              "mode": MODE_SHAPE, "count": 16})


def read_layout(depth: int, max_words: int) -> data.StructLayout:
    return data.StructLayout({"base": range(depth), "count": range(max_words + 1)})


def write_signature(depth: int, width: int) -> wiring.Signature:
    return wiring.Signature({"addr": Out(range(depth)), "data": Out(signed(width)),
                             "en": Out(1)})


def _stage_out(m: Module, o) -> Signal:
    """The usual one-register stream output: returns ``advance`` (the register may
    load); ``o.valid`` drops after a transfer unless the caller loads it again."""
    advance = Signal()
    m.d.comb += advance.eq(~o.valid | o.ready)
    with m.If(o.ready):
        m.d.sync += o.valid.eq(0)
    return advance


def _pick(*choices):
    """The ``value`` of the ``(select, value)`` whose select is high, 0 if none: an
    AND-OR, for selects that are never high together (no priority chain)."""
    picked = Const(0, 1)
    for select, value in choices:
        picked = picked | Mux(select, value, 0)
    return picked


class Unstuff(wiring.Component):
    """Raw bytes -> symbols: FLAG is ``end``, ESC makes the next byte ``byte ^ 0x20``."""

    def __init__(self):
        super().__init__({"i": In(stream.Signature(8)),
                          "o": Out(stream.Signature(symbol_layout()))})

    def elaborate(self, platform):
        m = Module()
        advance = _stage_out(m, self.o)
        escaped = Signal()
        m.d.comb += self.i.ready.eq(advance)
        with m.If(self.i.valid & advance):
            # A byte's data is taken whatever it is (ignored unless it makes a symbol),
            # so that only `valid` waits for the FLAG and ESC compares.
            byte = self.i.payload
            m.d.sync += [self.o.valid.eq(byte != ESC), self.o.payload.end.eq(byte == FLAG),
                         self.o.payload.data.eq(byte ^ Mux(escaped, ESC_XOR, 0)),
                         escaped.eq(byte == ESC)]
        return m


class Stuff(wiring.Component):
    """Symbols -> raw bytes: ``end`` becomes FLAG, FLAG and ESC become ESC, byte ^ 0x20.

    A symbol is taken into a register first, with its need for an escape worked
    out on the way in: ``i.ready`` is that register's emptiness, and what goes
    out is chosen from registers only (a symbol per two clocks at most, where
    the UART takes tens)."""

    def __init__(self):
        super().__init__({"i": In(stream.Signature(symbol_layout())),
                          "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        advance = _stage_out(m, self.o)
        held = Signal(symbol_layout())
        held_valid = Signal()
        special = Signal()               # `held` goes out as ESC, byte ^ 0x20
        second = Signal()                # ESC went out; the escaped byte is next
        sym = self.i.payload
        m.d.comb += self.i.ready.eq(~held_valid)
        with m.If(self.i.valid & ~held_valid):
            m.d.sync += [held.eq(sym), held_valid.eq(1),
                         special.eq(~sym.end & ((sym.data == FLAG) | (sym.data == ESC)))]
        with m.If(advance & held_valid):
            m.d.sync += self.o.valid.eq(1)
            with m.If(special & ~second):
                m.d.sync += [self.o.payload.eq(ESC), second.eq(1)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(Mux(held.end, FLAG,
                                                   held.data ^ Mux(second, ESC_XOR, 0))),
                             held_valid.eq(0), second.eq(0)]
        return m


class _Laps:
    """A count of steps left, kept in two parts so that no carry chain is longer than
    the larger one: `lo` counts a lap of `lap` steps down to -1, `hi` the laps.
    ``hi * lap + lo + 2`` steps are left; none once `hi` is negative (`done`, a sign
    bit: no compare).  The registers hold the parts' complements (``~x = -1 - x``)
    and count them up: an increment is a carry chain with no logic in front of it."""

    def __init__(self, most: int, lap: int, name: str):
        self.lap = lap
        self.not_lo = Signal(range(-(lap - 1), 1), name=f"{name}_not_lo")
        self.not_hi = Signal(range(-(max(most - 1, 0) // lap + 1), 1), name=f"{name}_not_hi")

    @property
    def done(self):
        return ~self.not_hi[-1]

    def set_lo(self, value) -> list:
        return [self.not_lo.eq(~value)]

    def set_hi(self, value) -> list:
        return [self.not_hi.eq(~value)]

    def load(self, steps: int) -> list:
        """Statements that set `steps` (an int) steps left."""
        return [*self.set_hi((steps - 1) // self.lap), *self.set_lo((steps - 1) % self.lap - 1)]

    def step(self, m: Module, when):
        """Take a step on the clocks where `when` is high (never once `done`)."""
        lap_over = ~self.not_lo[-1]                  # lo is -1
        with m.If(when):
            m.d.sync += self.not_lo.eq(Mux(lap_over, ~(self.lap - 2), self.not_lo + 1))
        with m.If(when & lap_over):
            m.d.sync += self.not_hi.eq(self.not_hi + 1)


class FrameParser(wiring.Component):
    """Symbols -> one :func:`record_layout` per frame, job words into the store.

    Implements :func:`hw.protocol.check_request` (same checks, same order) on
    the fly, plus the two checks that need time: a frame that begins while
    ``slot_free`` is low is OVERFLOW (and writes nothing), and ``timeout``
    clocks without a byte inside a frame end it as TIMEOUT.  Words of a frame
    whose ``COUNT`` is right for its command are written to ``wr_base`` + k
    (two clocks after their last byte); the record follows two clocks after
    the frame's end.  A symbol is taken every second clock at most.

    Parameters
    ----------
    width : int
        Input word width (bits).
    job_words : dict of int to int
        Words each valid mode code takes.
    depth : int
        Words in the store (``wr_base`` + k < depth).
    timeout : int
        Clocks of silence that cut a frame off.
    """

    def __init__(self, *, width: int, job_words: dict[int, int], depth: int, timeout: int):
        if timeout < 4:
            raise ValueError(f"timeout must be at least 4 clocks, not {timeout!r}")
        self.width = width
        self.job_words = dict(job_words)
        self.depth = depth
        self.timeout = timeout
        super().__init__({
            "i": In(stream.Signature(symbol_layout())),
            "o": Out(stream.Signature(record_layout())),
            "slot_free": In(1),
            "wr_base": In(range(depth)),
            "wr": Out(write_signature(depth, width)),
        })

    def elaborate(self, platform):
        m = Module()
        nb = word_bytes(self.width)
        max_count = max(self.job_words.values())
        # What the frame has shown so far.
        place = Signal(MIN_REQUEST + 1, init=1)      # one-hot: bytes so far, saturating
        in_body = Signal()                           # the header is in (a bit, not an OR)
        crc = Signal(16, init=CRC_INIT)
        accepted = Signal()                          # a slot was free at its first byte
        cmd_ok = Signal()
        cmd = Signal(CMD_SHAPE)
        is_job = Signal()
        tag = Signal(8)
        mode_bad = Signal()                          # a job with an unknown mode
        mode = Signal(MODE_SHAPE)
        required = Signal(range(max_count + 1))      # COUNT the command and mode take
        count_lo = Signal(8)
        lo_ok = Signal()                             # count_lo is required's low byte
        count_ok = Signal()
        # Words still to come, in laps of 256, so that COUNT loads a byte at a time.
        words = _Laps(2 ** 16 - 1, 256, "words")
        in_words = ~words.done
        lo_borrows = Signal()                        # COUNT's low byte is 0
        byte_k = Signal(range(nb))
        tail = Signal(range(CRC_BYTES + 2))          # bytes after the words, saturating
        earlier = Signal(8 * (nb - 1))               # the current word's earlier bytes
        addr = Signal(range(self.depth))
        # The timeout: the clocks after a byte's act (below) until the frame ends.  Its
        # laps count at most 64: nextpnr broke a 10-bit chain of laps (constant loads
        # into a bare increment) into two-cell pieces on a full iCE40UP5K.
        quiet_steps = self.timeout - 2
        quiet = _Laps(quiet_steps, 2 ** max(quiet_steps.bit_length() - 6, 1), "quiet")

        # A symbol is taken into `held` with what it does to the frame worked out on the
        # way in, from the state the previous symbol left; the next clock does it, and
        # only then is the next symbol taken (a symbol per two clocks, where a UART
        # character takes tens), so no path both decides and acts.
        held = Signal(8)
        # held - 1 (negative: held is 0), for loading the word count (subtracting there
        # would share the count's carry chain, behind a multiplexer)
        held_less = Signal(signed(9))
        held_valid = Signal()
        does = Signal(data.StructLayout({
            "byte": 1, "cmd": 1, "tag": 1, "mode": 1, "count_lo": 1, "count_hi": 1,
            "tail": 1, "word_end": 1, "word_byte": 1, "end": 1}))
        # Taken with an `end` (the end symbol or the timeout): the verdict's flags, and
        # the verdict of the header's checks (the last in check order).
        timed_out = Signal()
        short = Signal()
        crc_bad = Signal()
        length_bad = Signal()
        header_status = Signal(STATUS_SHAPE)

        sym = self.i.payload
        in_frame = ~place[0]
        m.d.comb += self.i.ready.eq(~held_valid)
        m.d.sync += [held_valid.eq(0), does.eq(0), self.wr.en.eq(0)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        def ending(*, timeout):       # (holds off the next symbol until it is done)
            m.d.sync += [held_valid.eq(1), does.end.eq(1), timed_out.eq(timeout),
                         short.eq(~place[MIN_REQUEST]),
                         crc_bad.eq(crc != 0),
                         length_bad.eq(in_words | (byte_k != 0) | (tail != CRC_BYTES)),
                         header_status.eq(Mux(~cmd_ok, Status.COMMAND,
                                              Mux(mode_bad, Status.MODE,
                                                  Mux(~count_ok, Status.LENGTH, Status.OK))))]

        with m.If(self.i.valid & ~held_valid):
            m.d.sync += [held.eq(sym.data), held_less.eq(sym.data - 1), held_valid.eq(1)]
            with m.If(sym.end):
                with m.If(in_frame):
                    ending(timeout=False)
            with m.Else():
                m.d.sync += [
                    does.byte.eq(1), does.cmd.eq(place[CMD_POS]), does.tag.eq(place[TAG_POS]),
                    does.mode.eq(place[MODE_POS]), does.count_lo.eq(place[COUNT_LO_POS]),
                    does.count_hi.eq(place[COUNT_HI_POS]), does.tail.eq(in_body & ~in_words),
                    does.word_end.eq(in_body & in_words & (byte_k == nb - 1)),
                    does.word_byte.eq(in_body & in_words & (byte_k != nb - 1)),
                ]
        with m.Elif(~held_valid & in_frame & quiet.done):
            ending(timeout=True)
        # (counting on while a symbol is taken and done is harmless: a byte reloads the
        # count, below, and an end symbol closes the frame)
        quiet.step(m, in_frame & ~quiet.done)

        # Doing it.
        byte = held
        with m.If(does.byte):
            # (`timeout` clocks from the byte's transfer, a clock before this, to the end)
            m.d.sync += [*quiet.load(quiet_steps), crc.eq(crc16_next(crc, byte)),
                         place.eq(Cat(0, place[:-2], place[-2] | place[-1]))]
        with m.If(does.cmd):
            m.d.sync += [accepted.eq(self.slot_free), addr.eq(self.wr_base), tag.eq(0),
                         cmd_ok.eq(byte.matches(*[c.value for c in Command])),
                         cmd.eq(byte), is_job.eq(byte == Command.JOB)]
        with m.If(does.tag):
            m.d.sync += tag.eq(byte)
        with m.If(does.mode):
            takes = Array(Const(self.job_words.get(code, 0), required.shape())
                          for code in range(2 ** MODE_SHAPE.width))
            m.d.sync += [mode_bad.eq(is_job & ~byte.matches(*self.job_words)), mode.eq(byte),
                         required.eq(Mux(is_job, takes[byte[:MODE_SHAPE.width]], 0))]
        # (COUNT loads the word count a byte at a time: COUNT words are left when
        # hi * 256 + lo + 2 = COUNT, see _Laps)
        with m.If(does.count_lo):
            m.d.sync += [count_lo.eq(byte), lo_ok.eq(byte == required[:8]),
                         *words.set_lo(Mux(held_less[-1], words.lap - 2, held_less - 1)),
                         lo_borrows.eq(held_less[-1])]
        with m.If(does.count_hi):
            m.d.sync += [in_body.eq(1), count_ok.eq(lo_ok & (byte == required[8:])),
                         *words.set_hi(Mux(lo_borrows, held_less, byte))]
        with m.If(does.tail):
            m.d.sync += tail.eq(Mux(tail == CRC_BYTES + 1, tail, tail + 1))
        words.step(m, does.word_end)
        with m.If(does.word_end):
            m.d.sync += [byte_k.eq(0), addr.eq(addr + 1), self.wr.addr.eq(addr),
                         self.wr.data.eq(Cat(earlier, byte)[:self.width]),
                         self.wr.en.eq(accepted & count_ok)]
        with m.If(does.word_byte):
            m.d.sync += [byte_k.eq(byte_k + 1), earlier.eq(Cat(earlier[8:], byte))]
        with m.If(does.end):
            m.d.sync += [
                self.o.valid.eq(1), self.o.payload.tag.eq(tag), self.o.payload.cmd.eq(cmd),
                self.o.payload.mode.eq(mode),
                self.o.payload.status.eq(
                    Mux(~accepted, Status.OVERFLOW,
                        Mux(timed_out, Status.TIMEOUT,
                            Mux(short, Status.LENGTH,
                                Mux(crc_bad, Status.CHECKSUM,
                                    Mux(length_bad, Status.LENGTH, header_status)))))),
                # ready for the next frame
                place.eq(1), in_body.eq(0), crc.eq(CRC_INIT), *words.set_hi(-1), byte_k.eq(0),
                tail.eq(0),
            ]
        return m


class FrameStore(wiring.Component):
    """``slots`` frames of ``max_words`` words: written by the parser, read out to the core.

    ``start`` = ``{base, count}`` streams ``count`` words from ``base`` on ``o``
    (a synchronous read port, then ``o``'s payload register)."""

    def __init__(self, *, width: int, slots: int, max_words: int):
        self.width = width
        self.slots = slots
        self.max_words = max_words
        self.depth = slots * max_words
        super().__init__({
            "wr": In(write_signature(self.depth, width)),
            "start": In(stream.Signature(read_layout(self.depth, max_words))),
            "o": Out(stream.Signature(signed(width))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = mem = memory.Memory(shape=signed(self.width), depth=self.depth,
                                                  init=[], attrs=memory_attrs(sync_read=True))
        wp = mem.write_port()
        rp = mem.read_port()
        m.d.comb += [wp.addr.eq(self.wr.addr), wp.data.eq(self.wr.data), wp.en.eq(self.wr.en)]
        addr = Signal(range(self.depth))
        left = Signal(range(self.max_words + 1))
        idle = Signal(init=1)   # left == 0, kept as a register: the sequencer's handshake reads it
        # two stages: the block RAM's read register, then the word in a register beside
        # it (the block RAM's clock-to-out into the core's input buffer was the ECP5
        # build's critical path)
        pipe = Pipeline(m, ~idle, name="store")
        m.d.comb += [rp.addr.eq(addr), rp.en.eq(pipe.advance), self.start.ready.eq(idle)]
        pipe.stage()
        pipe.stage()
        word = pipe.reg(rp.data, signed(self.width), name="word")
        pipe.finish(self.o)
        m.d.comb += self.o.payload.eq(word)
        with m.If(self.start.valid & idle):
            m.d.sync += [addr.eq(self.start.payload.base), left.eq(self.start.payload.count),
                         idle.eq(self.start.payload.count == 0)]
        with m.Elif(pipe.advance & ~idle):
            m.d.sync += [addr.eq(addr + 1), left.eq(left - 1), idle.eq(left == 1)]
        return m


class Sequencer(wiring.Component):
    """The slot ring: takes the parser's records in order, serves them in order.

    ``slot_free``/``wr_base`` tell the parser where the next frame goes;
    ``cmd``, ``read`` and ``core_rst`` run the core; ``reply`` asks
    :class:`ReplyTx` for each frame's reply, ``done`` says it has left.
    A record takes three clocks (taken in, filed, then one for ``tail_free``
    to catch up) with ``record.ready`` low; what the head's slot sends out is
    registered when it is served.

    Parameters
    ----------
    slots : int
        Frames buffered (the host's window).
    max_words : int
        Words a slot holds.
    image_modes : iterable of int
        Mode codes whose jobs read their slot's words.
    """

    def __init__(self, *, slots: int, max_words: int, image_modes):
        self.slots = slots
        self.max_words = max_words
        self.image_modes = tuple(image_modes)
        depth = slots * max_words
        super().__init__({
            "record": In(stream.Signature(record_layout())),
            "slot_free": Out(1),
            "wr_base": Out(range(depth)),
            "cmd": Out(stream.Signature(cmd_layout())),
            "read": Out(stream.Signature(read_layout(depth, max_words))),
            "core_rst": Out(1),
            "reply": Out(stream.Signature(request_layout())),
            "done": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.slots
        # A slot: what serving it takes, worked out when it is filed.
        slot_layout = data.StructLayout({
            "status": STATUS_SHAPE, "tag": 8, "mode": MODE_SHAPE, "source": 2,
            "job": 1,                    # an accepted JOB (source CORE): runs the core
            "reads": 1,                  # ... of a mode that reads the slot's words
            "resets": 1,                 # an accepted RESET
            "refused": 16,               # (OVERFLOW) frames it answers for
        })
        slot = Array(Signal(slot_layout, name=f"slot{s}") for s in range(n))
        occupied = Array(Signal(name=f"occupied{s}") for s in range(n))
        bases = Array(Const(s * self.max_words, self.wr_base.shape()) for s in range(n))
        head = Signal(range(n))          # oldest frame: served next
        tail = Signal(range(n))          # where the next frame goes
        ovf_pending = Signal()           # refused frames not yet in a slot
        ovf_tag = Signal(8)
        ovf_count = Signal(16)
        ovf_full = Signal()              # ovf_count is 0xFFFF: it stays there

        def following(index):
            return Mux(index == n - 1, 0, index + 1)

        # A record takes three clocks: the first takes it in (`entry`), the second files
        # it at `tail` (or counts a refused frame), the third lets `tail_free` (a
        # register) catch up; meanwhile no record is taken (`record.ready` is low), so
        # no path both decides and writes.  The refused frames' merged record is taken
        # in likewise, when `tail_free`.
        entry = Signal(record_layout())
        filing = Signal()
        refusing = Signal()
        hold = Signal()
        tail_free = Signal()
        m.d.comb += [self.slot_free.eq(~occupied[tail] & ~ovf_pending),
                     self.wr_base.eq(bases[tail]), self.record.ready.eq(~hold)]
        m.d.sync += [filing.eq(0), refusing.eq(0), tail_free.eq(~occupied[tail]),
                     hold.eq(filing | refusing)]

        ok = entry.status == Status.OK
        job = ok & (entry.cmd == Command.JOB)
        with m.If(filing):
            filed = slot[tail]
            m.d.sync += [
                filed.status.eq(entry.status), filed.tag.eq(entry.tag), filed.mode.eq(entry.mode),
                filed.source.eq(Mux(job, Source.CORE,
                                    Mux(ok & (entry.cmd == Command.INFO), Source.INFO,
                                        Mux(entry.status == Status.OVERFLOW, Source.COUNT,
                                            Source.NONE)))),
                filed.job.eq(job), filed.reads.eq(job & entry.mode.matches(*self.image_modes)),
                filed.resets.eq(ok & (entry.cmd == Command.RESET)),
                filed.refused.eq(ovf_count),     # (counts only in an OVERFLOW entry)
                occupied[tail].eq(1), tail.eq(following(tail)),
            ]
        with m.If(refusing & ~ovf_pending):
            m.d.sync += [ovf_pending.eq(1), ovf_tag.eq(entry.tag), ovf_count.eq(1),
                         ovf_full.eq(0)]
        with m.If(refusing & ovf_pending & ~ovf_full):
            m.d.sync += [ovf_count.eq(ovf_count + 1), ovf_full.eq(ovf_count == 0xFFFE)]

        rec = self.record.payload
        with m.If(self.record.valid & ~hold):
            m.d.sync += [entry.eq(rec), hold.eq(1)]
            with m.If(rec.status == Status.OVERFLOW):
                m.d.sync += refusing.eq(1)
            with m.Else():
                m.d.sync += filing.eq(1)
        with m.Elif(~hold & ovf_pending & tail_free):
            m.d.sync += [filing.eq(1), hold.eq(1), ovf_pending.eq(0),
                         entry.status.eq(Status.OVERFLOW), entry.tag.eq(ovf_tag)]

        # Serving: the head's entry goes out in registers.
        m.d.comb += self.read.payload.count.eq(self.max_words)
        with m.If(self.cmd.ready):
            m.d.sync += self.cmd.valid.eq(0)
        with m.If(self.read.ready):
            m.d.sync += self.read.valid.eq(0)
        with m.If(self.reply.ready):
            m.d.sync += self.reply.valid.eq(0)
        m.d.sync += self.core_rst.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(occupied[head]):
                    served = slot[head]
                    m.d.sync += [
                        self.reply.valid.eq(1), self.cmd.valid.eq(served.job),
                        self.read.valid.eq(served.reads), self.core_rst.eq(served.resets),
                        self.reply.payload.status.eq(served.status),
                        self.reply.payload.tag.eq(served.tag),
                        self.reply.payload.source.eq(served.source),
                        self.reply.payload.mode.eq(served.mode),
                        self.reply.payload.count.eq(served.refused),
                        self.cmd.payload.mode.eq(served.mode),
                        self.read.payload.base.eq(bases[head]),
                    ]
                    m.next = "SERVE"
            with m.State("SERVE"):
                with m.If(self.done):
                    m.d.sync += [occupied[head].eq(0), head.eq(following(head))]
                    m.next = "IDLE"
        return m


class ReplyTx(wiring.Component):
    """Reply requests -> the reply's symbols (header, payload, CRC, end).

    Three register stages, so that no path runs from what the reply needs next
    to the CRC: a shift register is refilled, whenever it runs empty, with the
    next symbols (the header and an OVERFLOW count; an info ROM byte; a word
    of the core; the trailer: two CRC bytes and the end of frame, marked as
    such), one-hot registers saying from where; it shifts a symbol at a time
    into a *token* register; the *sender* moves the token into the output
    register, folding a data byte into the CRC or putting out the CRC's next
    byte.  The token is filled only when empty (a symbol per two clocks at
    most, where the UART takes tens), so ``o.ready`` reaches no further than
    the sender.  ``done`` pulses the clock after the end of frame has left.

    Parameters
    ----------
    info : bytes
        The ``INFO`` payload (a ROM).
    out_width : int
        Bits of the core's output words (``words``).
    job_bytes : dict of int to int
        Payload bytes of each mode code's job reply.
    """

    def __init__(self, *, info: bytes, out_width: int, job_bytes: dict[int, int]):
        self.info = bytes(info)
        self.out_width = out_width
        self.job_bytes = dict(job_bytes)
        super().__init__({
            "i": In(stream.Signature(request_layout())),
            "words": In(stream.Signature(out_layout(out_width))),
            "o": Out(stream.Signature(symbol_layout())),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom_memory = memory.Memory(shape=8, depth=len(self.info),
                                                      init=self.info,
                                                      attrs=memory_attrs(sync_read=False))
        rom = rom_memory.read_port(domain="comb")
        ob = word_bytes(self.out_width)
        shifted = REPLY_HEADER + 2                    # header and an OVERFLOW count
        size = max(shifted, ob)
        shift = Signal(8 * size)                      # symbols still to send, first in [:8]
        crc_marks = Signal(CRC_BYTES + 1)             # ... which of the first are CRC bytes
        end_marks = Signal(CRC_BYTES + 1)             # ... and the end of frame
        left = Signal(range(size + 1))                # how many
        pos = Signal(range(len(self.info)))           # the next info byte
        info_last = Signal()                          # pos is the last
        rom_byte = Signal(8)                          # the ROM's byte at pos: pos settles a
        m.d.sync += rom_byte.eq(rom.data)             # clock before each read (a refill waits
        m.d.comb += rom.addr.eq(pos)                  # for a shift-out)
        word = Signal(8 * ob)                         # the core's word, sign-extended
        m.d.comb += word.eq(self.words.payload.data)
        token = Signal(data.StructLayout({"data": 8, "crc": 1, "end": 1}))
        token_valid = Signal()
        crc = Signal(16, init=CRC_INIT)
        job_lengths = Array(Const(self.job_bytes.get(code, 0), 16)
                            for code in range(2 ** MODE_SHAPE.width))

        # The sender: token -> output register and CRC (back to CRC_INIT after the end).
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(token_valid & (~self.o.valid | self.o.ready)):
            m.d.sync += [
                self.o.valid.eq(1), self.o.payload.data.eq(Mux(token.crc, crc[8:], token.data)),
                self.o.payload.end.eq(token.end), token_valid.eq(0),
                crc.eq(Mux(token.end, CRC_INIT,
                           Mux(token.crc, crc << 8, crc16_next(crc, token.data)))),
            ]
        m.d.sync += self.done.eq(self.o.valid & self.o.ready & self.o.payload.end)

        # What refills `shift` once it has run empty (one-hot), `sending` while it has
        # symbols, `after` what fills it next: registers, and every register below picks
        # its next value from them with AND-OR (they never select two at once), so the
        # refill is two levels of logic whatever its source.
        fills = data.StructLayout({"header": 1, "info": 1, "words": 1, "trailer": 1})
        fill = Signal(fills, init={"header": 1})
        after = Signal(fills)
        sending = Signal()
        shifting = sending & ~token_valid
        m.d.comb += [self.i.ready.eq(fill.header), self.words.ready.eq(fill.words)]

        with m.If(shifting):
            m.d.sync += [token_valid.eq(1), token.data.eq(shift[:8]), token.crc.eq(crc_marks[0]),
                         token.end.eq(end_marks[0])]

        req = self.i.payload
        source_is = {src: req.source == src for src in (Source.CORE, Source.INFO, Source.COUNT)}
        length = Mux(source_is[Source.CORE], job_lengths[req.mode],
                     Mux(source_is[Source.INFO], len(self.info),
                         Mux(source_is[Source.COUNT], 2, 0)))
        header = Cat(req.status, Const(0, 8 - STATUS_SHAPE.width), req.tag, length, req.count)
        then = {name: fills.const({name: 1}).as_value() for name in fills.members}
        with m.If((fill.header & self.i.valid) | fill.info | (fill.words & self.words.valid)
                  | fill.trailer | shifting):
            m.d.sync += [
                shift.eq(_pick((fill.header, header), (fill.info, rom_byte), (fill.words, word),
                              (sending, shift >> 8))),
                left.eq(_pick((fill.header, Mux(source_is[Source.COUNT], shifted, REPLY_HEADER)),
                             (fill.info, 1), (fill.words, ob), (fill.trailer, CRC_BYTES + 1),
                             (sending, left - 1))),
                crc_marks.eq(_pick((fill.trailer, 0b011), (sending, crc_marks >> 1))),
                end_marks.eq(_pick((fill.trailer, 0b100), (sending, end_marks >> 1))),
                after.eq(_pick(
                    (fill.header, Mux(source_is[Source.CORE], then["words"],
                                      Mux(source_is[Source.INFO], then["info"], then["trailer"]))),
                    (fill.info, Mux(info_last, then["trailer"], then["info"])),
                    (fill.words, Mux(self.words.payload.last, then["trailer"], then["words"])),
                    (fill.trailer, then["header"]), (sending, after))),
                # a refill starts sending; the last symbol's shift-out ends it
                sending.eq(~sending | (left != 1)),
                fill.eq(Mux(sending & (left == 1), after, 0)),
            ]
        with m.If((fill.header & self.i.valid) | fill.info):
            m.d.sync += [pos.eq(Mux(fill.info, pos + 1, 0)),
                         info_last.eq(Mux(fill.info, pos == len(self.info) - 2,
                                          len(self.info) == 1))]
        return m


_DFF = re.compile(r"cell \$\w*dff\w* \S+\n(?:\s+parameter .*\n)*?\s+parameter \\WIDTH (\d+)")
_MEMORY = re.compile(r'(?:attribute \\ram_style "(\w+)"\n\s*)?memory width (\d+) size (\d+)')


def netlist_bits(component: wiring.Component) -> dict[str, int]:
    """``{"register_bits", "block_memory_bits", "logic_memory_bits"}`` of ``component``'s
    netlist, read from Amaranth's RTLIL (flip-flop cells; memories by their
    ``ram_style``, :func:`hw.cost.memory_attrs`): what the code builds, before synthesis
    trims constant or unused bits."""
    text = rtlil.convert(component, emit_src=False)
    out = {"register_bits": sum(int(w) for w in _DFF.findall(text)),
           "block_memory_bits": 0, "logic_memory_bits": 0}
    for style, width, size in _MEMORY.findall(text):
        kind = "block" if style == "block" else "logic"
        out[f"{kind}_memory_bits"] += int(width) * int(size)
    return out


@dataclass(frozen=True)
class FrontendPlan:
    """A checked configuration of :class:`UartFrontend` (see :func:`frontend_plan`)."""

    core: CorePlan
    clk_hz: int
    baud: int
    timeout_us: int
    slots: int
    divisor: int
    timeout_cycles: int

    @property
    def info(self) -> BoardInfo:
        """What the board answers to ``INFO``."""
        return BoardInfo.for_artifact(
            self.core.artifact, out_width=self.core.out_width, lanes=tuple(self.core.lanes),
            clk_hz=self.clk_hz, baud=self.baud, slots=self.slots, timeout_us=self.timeout_us)

    def parts(self) -> dict[str, wiring.Component]:
        """The frontend's own blocks by name, built afresh (the core is not one)."""
        art = self.core.artifact
        out_width = self.core.out_width
        width = art.input_fmt.width
        job_words = {MODE_CODES[mode]: (art.input_dim if mode in IMAGE_MODES else 0)
                     for mode in MODES}
        store = FrameStore(width=width, slots=self.slots, max_words=art.input_dim)
        return {
            "uart_rx": UartRx(self.divisor),
            "unstuff": Unstuff(),
            "parser": FrameParser(width=width, job_words=job_words, depth=store.depth,
                                  timeout=self.timeout_cycles),
            "store": store,
            "sequencer": Sequencer(slots=self.slots, max_words=art.input_dim,
                                   image_modes=[MODE_CODES[m] for m in IMAGE_MODES]),
            "reply": ReplyTx(info=self.info.to_bytes(), out_width=out_width,
                             job_bytes={MODE_CODES[mode]: output_words(art, mode)
                                        * word_bytes(out_width) for mode in MODES}),
            "stuff": Stuff(),
            "uart_tx": UartTx(self.divisor),
        }

    def cost(self) -> dict[str, dict[str, int]]:
        """Per block: :func:`netlist_bits` (the blocks are converted to RTLIL to count)."""
        return {name: netlist_bits(part) for name, part in self.parts().items()}


def frontend_plan(core: CorePlan, *, clk_hz: int, baud: int = DEFAULT_BAUD,
                  timeout_us: int = DEFAULT_TIMEOUT_US, slots: int = DEFAULT_SLOTS
                  ) -> FrontendPlan:
    """Check the frontend's knobs (before any hardware exists).

    ``clk_hz``: the ``sync`` clock (sets the divisor and the timeout; reported
    by ``INFO``); ``baud``: line rate (:func:`hw.uart.uart_divisor` checks the
    clock can make it); ``timeout_us``: inter-byte timeout inside a frame, at
    least two character times; ``slots``: frames buffered (the host's window).
    """
    if not isinstance(core, CorePlan):
        raise TypeError(f"core must be a hw.plan.CorePlan (see core_plan), not {core!r}")
    if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= 255:
        raise ValueError(f"slots must be an int in [1, 255], not {slots!r}")
    divisor = uart_divisor(clk_hz, baud)
    timeout_cycles = round(timeout_us * 1e-6 * clk_hz)
    char = 10 * divisor
    if timeout_cycles < 2 * char:
        raise ValueError(f"timeout_us={timeout_us} is {timeout_cycles} clocks, less "
                         f"than two characters ({2 * char} clocks at {int(baud):,} baud)")
    return FrontendPlan(core, int(clk_hz), int(baud), int(timeout_us), slots, divisor,
                        timeout_cycles)


class UartFrontend(wiring.Component):
    """The core of ``plan.core`` behind a UART speaking :mod:`hw.protocol`.

    Ports: ``rx`` (``In(1)``, idle high) and ``tx`` (``Out(1)``, idle high),
    the USB-serial chip's lines.
    """

    def __init__(self, plan: FrontendPlan):
        if not isinstance(plan, FrontendPlan):
            raise TypeError(f"UartFrontend takes a FrontendPlan (see frontend_plan), not {plan!r}")
        self.plan = plan
        self.clk_hz, self.baud, self.slots = plan.clk_hz, plan.baud, plan.slots
        self.divisor, self.timeout_cycles = plan.divisor, plan.timeout_cycles
        self.info = plan.info
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        p = self.plan.parts()
        for name, part in p.items():
            m.submodules[name] = part
        core = VAECore(self.plan.core)
        m.submodules.core = ResetInserter(p["sequencer"].core_rst)(core)
        wiring.connect(m, p["uart_rx"].o, p["unstuff"].i)
        wiring.connect(m, p["unstuff"].o, p["parser"].i)
        wiring.connect(m, p["parser"].o, p["sequencer"].record)
        wiring.connect(m, p["parser"].wr, p["store"].wr)
        wiring.connect(m, p["sequencer"].read, p["store"].start)
        wiring.connect(m, p["store"].o, core.i)
        wiring.connect(m, p["sequencer"].cmd, core.cmd)
        wiring.connect(m, core.o, p["reply"].words)
        wiring.connect(m, p["sequencer"].reply, p["reply"].i)
        wiring.connect(m, p["reply"].o, p["stuff"].i)
        wiring.connect(m, p["stuff"].o, p["uart_tx"].i)
        m.d.comb += [
            p["uart_rx"].rx.eq(self.rx),
            self.tx.eq(p["uart_tx"].tx),
            p["parser"].slot_free.eq(p["sequencer"].slot_free),
            p["parser"].wr_base.eq(p["sequencer"].wr_base),
            p["sequencer"].done.eq(p["reply"].done),
        ]
        return m
