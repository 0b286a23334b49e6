"""``UartFrontend``: a :class:`hw.core.VAECore` behind a UART speaking :mod:`hw.protocol`.

Data flow (one small component each, every one with its own simulator test)::

    rx -> UartRx -> Unstuff -> FrameParser -> Sequencer       a record per frame
                               FrameParser -> FrameStore      a job's words, in its slot
    Sequencer -> core.cmd, core reset; FrameStore -> core.i   when the job's turn comes
    Sequencer -> ReplyTx                                      a reply request per frame
    core.o -> RegisterSlice -> ReplyTx -> Stuff -> UartTx -> tx

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

Timing: every block's outputs are registers except short handshake paths
(and :class:`RegisterSlice` cuts the one that would reach into the core);
the widest logic is the CRC's byte-parallel XOR network (at most 24 inputs a
bit, one byte per clock) and the parser's verdict, a priority chain over
registered flags.
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
from .streamutil import RegisterSlice
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
            byte = self.i.payload
            with m.If(byte == FLAG):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.end.eq(1), escaped.eq(0)]
            with m.Elif(byte == ESC):
                m.d.sync += escaped.eq(1)
            with m.Else():
                m.d.sync += [self.o.valid.eq(1), self.o.payload.end.eq(0), escaped.eq(0),
                             self.o.payload.data.eq(byte ^ Mux(escaped, ESC_XOR, 0))]
        return m


class Stuff(wiring.Component):
    """Symbols -> raw bytes: ``end`` becomes FLAG, FLAG and ESC become ESC, byte ^ 0x20."""

    def __init__(self):
        super().__init__({"i": In(stream.Signature(symbol_layout())),
                          "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        advance = _stage_out(m, self.o)
        second = Signal()                # ESC went out; the escaped byte is next
        sym = self.i.payload
        special = ~sym.end & ((sym.data == FLAG) | (sym.data == ESC))
        m.d.comb += self.i.ready.eq(advance & (second | ~special))
        with m.If(advance & self.i.valid):
            m.d.sync += self.o.valid.eq(1)
            with m.If(second):
                m.d.sync += [self.o.payload.eq(sym.data ^ ESC_XOR), second.eq(0)]
            with m.Elif(sym.end):
                m.d.sync += self.o.payload.eq(FLAG)
            with m.Elif(special):
                m.d.sync += [self.o.payload.eq(ESC), second.eq(1)]
            with m.Else():
                m.d.sync += self.o.payload.eq(sym.data)
        return m


class FrameParser(wiring.Component):
    """Symbols -> one :func:`record_layout` per frame, job words into the store.

    Implements :func:`hw.protocol.check_request` (same checks, same order) on
    the fly, plus the two checks that need time: a frame that begins while
    ``slot_free`` is low is OVERFLOW (and writes nothing), and ``timeout``
    clocks without a byte inside a frame end it as TIMEOUT.  Words of a frame
    whose ``COUNT`` is right for its command are written to ``wr_base`` + k
    (one clock after their last byte); the record follows the frame's end.

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
        # What the frame has shown so far (a new frame clears what the verdict could
        # read before the frame sets it).
        nbytes = Signal(range(MIN_REQUEST + 1))      # saturates at a minimal frame
        crc = Signal(16)
        accepted = Signal()                          # a slot was free at its first byte
        cmd_ok = Signal()
        cmd = Signal(CMD_SHAPE)
        is_job = Signal()
        tag = Signal(8)
        mode_ok = Signal()
        mode = Signal(MODE_SHAPE)
        count_lo = Signal(8)
        count_ok = Signal()
        words_left = Signal(16)
        byte_k = Signal(range(nb))
        tail = Signal(range(CRC_BYTES + 2))          # bytes after the words, saturating
        earlier = Signal(8 * (nb - 1))               # the current word's earlier bytes
        addr = Signal(range(self.depth))
        silent = Signal(range(self.timeout))

        sym = self.i.payload
        byte = sym.data
        in_frame = nbytes != 0
        first = ~in_frame
        m.d.comb += self.i.ready.eq(1)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.sync += self.wr.en.eq(0)

        def emit(status):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.status.eq(status),
                         self.o.payload.tag.eq(tag), self.o.payload.cmd.eq(cmd),
                         self.o.payload.mode.eq(mode), nbytes.eq(0)]

        length_ok = (words_left == 0) & (byte_k == 0) & (tail == CRC_BYTES)
        verdict = Signal(STATUS_SHAPE)
        m.d.comb += verdict.eq(
            Mux(~accepted, Status.OVERFLOW,
                Mux(nbytes < MIN_REQUEST, Status.LENGTH,
                    Mux(crc != 0, Status.CHECKSUM,
                        Mux(~length_ok, Status.LENGTH,
                            Mux(~cmd_ok, Status.COMMAND,
                                Mux(is_job & ~mode_ok, Status.MODE,
                                    Mux(~count_ok, Status.LENGTH, Status.OK))))))))

        with m.If(self.i.valid & sym.end):
            with m.If(in_frame):
                emit(verdict)
        with m.Elif(self.i.valid):
            m.d.sync += [silent.eq(0), crc.eq(crc16_next(Mux(first, CRC_INIT, crc), byte)),
                         nbytes.eq(Mux(nbytes == MIN_REQUEST, nbytes, nbytes + 1))]
            with m.If(first):
                m.d.sync += [accepted.eq(self.slot_free), addr.eq(self.wr_base), tag.eq(0),
                             tail.eq(0), byte_k.eq(0), words_left.eq(0)]
            with m.Switch(nbytes):
                with m.Case(CMD_POS):
                    m.d.sync += [cmd_ok.eq(byte.matches(*[c.value for c in Command])),
                                 cmd.eq(byte), is_job.eq(byte == Command.JOB)]
                with m.Case(TAG_POS):
                    m.d.sync += tag.eq(byte)
                with m.Case(MODE_POS):
                    m.d.sync += [mode_ok.eq(byte.matches(*self.job_words)), mode.eq(byte)]
                with m.Case(COUNT_LO_POS):
                    m.d.sync += count_lo.eq(byte)
                with m.Case(COUNT_HI_POS):
                    count = Cat(count_lo, byte)
                    required = Signal(range(max_count + 1))
                    m.d.comb += required.eq(
                        Mux(is_job, Array(Const(self.job_words.get(code, 0), required.shape())
                                          for code in range(2 ** MODE_SHAPE.width))[mode], 0))
                    m.d.sync += [words_left.eq(count), count_ok.eq(count == required)]
                with m.Default():
                    with m.If(words_left == 0):
                        m.d.sync += tail.eq(Mux(tail == CRC_BYTES + 1, tail, tail + 1))
                    with m.Elif(byte_k == nb - 1):
                        m.d.sync += [byte_k.eq(0), words_left.eq(words_left - 1),
                                     addr.eq(addr + 1), self.wr.addr.eq(addr),
                                     self.wr.data.eq(Cat(earlier, byte)[:self.width]),
                                     self.wr.en.eq(accepted & count_ok)]
                    with m.Else():
                        m.d.sync += [byte_k.eq(byte_k + 1),
                                     earlier.eq(Cat(earlier[8:], byte))]
        with m.Elif(in_frame):
            with m.If(silent == self.timeout - 1):
                emit(Mux(accepted, Status.TIMEOUT, Status.OVERFLOW))
            with m.Else():
                m.d.sync += silent.eq(silent + 1)
        return m


class FrameStore(wiring.Component):
    """``slots`` frames of ``max_words`` words: written by the parser, read out to the core.

    ``start`` = ``{base, count}`` streams ``count`` words from ``base`` on ``o``
    (a synchronous read port; ``o`` is its registered output)."""

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
        advance = _stage_out(m, self.o)
        m.d.comb += [rp.addr.eq(addr), rp.en.eq(advance), self.o.payload.eq(rp.data),
                     self.start.ready.eq(left == 0)]
        with m.If(self.start.valid & self.start.ready):
            m.d.sync += [addr.eq(self.start.payload.base), left.eq(self.start.payload.count)]
        with m.Elif(advance & (left != 0)):
            m.d.sync += [self.o.valid.eq(1), addr.eq(addr + 1), left.eq(left - 1)]
        return m


class Sequencer(wiring.Component):
    """The slot ring: takes the parser's records in order, serves them in order.

    ``slot_free``/``wr_base`` tell the parser where the next frame goes;
    ``cmd``, ``read`` and ``core_rst`` run the core; ``reply`` asks
    :class:`ReplyTx` for each frame's reply, ``done`` says it has left.

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
        occupied = Array(Signal(name=f"occupied{s}") for s in range(n))
        status = Array(Signal(STATUS_SHAPE, name=f"status{s}") for s in range(n))
        cmd = Array(Signal(CMD_SHAPE, name=f"cmd{s}") for s in range(n))
        tag = Array(Signal(8, name=f"tag{s}") for s in range(n))
        mode = Array(Signal(MODE_SHAPE, name=f"mode{s}") for s in range(n))
        refused = Array(Signal(16, name=f"refused{s}") for s in range(n))
        bases = Array(Const(s * self.max_words, self.wr_base.shape()) for s in range(n))
        head = Signal(range(n))          # oldest frame: served next
        tail = Signal(range(n))          # where the next frame goes
        ovf_pending = Signal()           # refused frames not yet in a slot
        ovf_tag = Signal(8)
        ovf_count = Signal(16)

        def following(index):
            return Mux(index == n - 1, 0, index + 1)

        m.d.comb += [self.slot_free.eq(~occupied[tail] & ~ovf_pending),
                     self.wr_base.eq(bases[tail]), self.record.ready.eq(1)]
        rec = self.record.payload
        with m.If(self.record.valid):
            with m.If(rec.status == Status.OVERFLOW):
                with m.If(~ovf_pending):
                    m.d.sync += [ovf_pending.eq(1), ovf_tag.eq(rec.tag), ovf_count.eq(1)]
                with m.Elif(ovf_count != 0xFFFF):
                    m.d.sync += ovf_count.eq(ovf_count + 1)
            with m.Else():
                m.d.sync += [occupied[tail].eq(1), status[tail].eq(rec.status),
                             cmd[tail].eq(rec.cmd), tag[tail].eq(rec.tag),
                             mode[tail].eq(rec.mode), tail.eq(following(tail))]
        with m.Elif(ovf_pending & ~occupied[tail]):
            m.d.sync += [occupied[tail].eq(1), status[tail].eq(Status.OVERFLOW),
                         tag[tail].eq(ovf_tag), refused[tail].eq(ovf_count),
                         tail.eq(following(tail)), ovf_pending.eq(0)]

        ok = status[head] == Status.OK
        job = ok & (cmd[head] == Command.JOB)
        source = Signal(2)
        m.d.comb += [
            source.eq(Mux(job, Source.CORE,
                          Mux(ok & (cmd[head] == Command.INFO), Source.INFO,
                              Mux(status[head] == Status.OVERFLOW, Source.COUNT, Source.NONE)))),
            self.reply.payload.status.eq(status[head]),
            self.reply.payload.tag.eq(tag[head]),
            self.reply.payload.source.eq(source),
            self.reply.payload.mode.eq(mode[head]),
            self.reply.payload.count.eq(refused[head]),
            self.cmd.payload.mode.eq(mode[head]),
            self.read.payload.base.eq(bases[head]),
            self.read.payload.count.eq(self.max_words),
        ]
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
                    m.d.sync += [
                        self.reply.valid.eq(1), self.cmd.valid.eq(job),
                        self.read.valid.eq(job & mode[head].matches(*self.image_modes)),
                        self.core_rst.eq(ok & (cmd[head] == Command.RESET)),
                    ]
                    m.next = "SERVE"
            with m.State("SERVE"):
                with m.If(self.done):
                    m.d.sync += [occupied[head].eq(0), head.eq(following(head))]
                    m.next = "IDLE"
        return m


class ReplyTx(wiring.Component):
    """Reply requests -> the reply's symbols (header, payload, CRC, end).

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
        req = Signal(request_layout())
        length = Signal(16)
        crc = Signal(16)
        pos = Signal(range(max(REPLY_HEADER, len(self.info), 2)))
        word = Signal(8 * ob)                         # the core's word, sign-extended
        rest = Signal(8 * ob)                         # bytes of the current word still to send
        last = Signal()
        advance = _stage_out(m, self.o)
        job_lengths = Array(Const(self.job_bytes.get(code, 0), 16)
                            for code in range(2 ** MODE_SHAPE.width))
        m.d.comb += [self.done.eq(self.o.valid & self.o.ready & self.o.payload.end),
                     rom.addr.eq(pos), word.eq(self.words.payload.data)]

        # One output register and one CRC update, fed by whichever state is sending.
        byte = Signal(8)
        load = Signal()         # put `byte` (or the end of frame) into the output register
        counted = Signal()      # and into the CRC
        end = Signal()
        with m.If(load):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.data.eq(byte),
                         self.o.payload.end.eq(end)]
        with m.If(load & counted):
            m.d.sync += crc.eq(crc16_next(crc, byte))

        def sending(value, *, crc_too=True):
            m.d.comb += [byte.eq(value), load.eq(advance), counted.eq(crc_too)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    src = self.i.payload.source
                    m.d.sync += [
                        req.eq(self.i.payload), crc.eq(CRC_INIT), pos.eq(0),
                        length.eq(Mux(src == Source.CORE, job_lengths[self.i.payload.mode],
                                      Mux(src == Source.INFO, len(self.info),
                                          Mux(src == Source.COUNT, 2, 0)))),
                    ]
                    m.next = "HEADER"
            with m.State("HEADER"):
                sending(Array([req.status, req.tag, length[:8], length[8:]])[pos])
                with m.If(advance):
                    m.d.sync += pos.eq(pos + 1)
                    with m.If(pos == REPLY_HEADER - 1):
                        m.d.sync += pos.eq(0)
                        m.next = "PAYLOAD"
                        with m.If(req.source == Source.NONE):
                            m.next = "CRC_HI"
            with m.State("PAYLOAD"):
                with m.Switch(req.source):
                    with m.Case(Source.INFO):
                        sending(rom.data)
                        with m.If(advance):
                            m.d.sync += pos.eq(pos + 1)
                            with m.If(pos == len(self.info) - 1):
                                m.next = "CRC_HI"
                    with m.Case(Source.COUNT):
                        sending(Mux(pos == 0, req.count[:8], req.count[8:]))
                        with m.If(advance):
                            m.d.sync += pos.eq(pos + 1)
                            with m.If(pos == 1):
                                m.next = "CRC_HI"
                    with m.Case(Source.CORE):
                        with m.If(pos == 0):       # take the next word, send its low byte
                            sending(word[:8])
                            m.d.comb += [self.words.ready.eq(advance),
                                         load.eq(advance & self.words.valid)]
                            with m.If(load):
                                m.d.sync += [rest.eq(word >> 8),
                                             last.eq(self.words.payload.last)]
                                if ob > 1:
                                    m.d.sync += pos.eq(1)
                                else:
                                    with m.If(self.words.payload.last):
                                        m.next = "CRC_HI"
                        with m.Else():
                            sending(rest[:8])
                            with m.If(advance):
                                m.d.sync += [rest.eq(rest >> 8),
                                             pos.eq(Mux(pos == ob - 1, 0, pos + 1))]
                                with m.If((pos == ob - 1) & last):
                                    m.next = "CRC_HI"
            with m.State("CRC_HI"):
                sending(crc[8:], crc_too=False)
                with m.If(advance):
                    m.next = "CRC_LO"
            with m.State("CRC_LO"):
                sending(crc[:8], crc_too=False)
                with m.If(advance):
                    m.next = "END"
            with m.State("END"):
                m.d.comb += [load.eq(advance), end.eq(1)]
                with m.If(advance):
                    m.next = "IDLE"
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
            "out_slice": RegisterSlice(out_layout(out_width)),
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
        wiring.connect(m, core.o, p["out_slice"].i)
        wiring.connect(m, p["out_slice"].o, p["reply"].words)
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
