# amaranth: UnusedElaboratable=no
"""hw.uart and the blocks of hw.frontend in Amaranth's simulator, against hw.protocol.

Every block is compared with the protocol's Python definition (bytes on the
line, CRC, stuffing, :func:`hw.protocol.check_request`, reply bodies), with
random gaps and stalls where the block has streams, exact equality throughout.
"""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, Value
from amaranth.lib.wiring import In
from amaranth.sim import Simulator

from hw.core import IMAGE_MODES, MODE_CODES, out_layout
from hw.frontend import (
    FrameParser, FrameStore, ReplyTx, Sequencer, Source, Stuff, Unstuff,
    crc16_next, netlist_bits,
)
from hw.protocol import (
    CRC_BYTES, ESC, FLAG, Command, Status, check_request, crc16, crc16_update, reply_body,
    request_body, stuff, Unstuffer,
)
from hw.streamutil import RegisterSlice
from hw.uart import MIN_DIVISOR, UartRx, UartTx, uart_divisor
from sim.pysim import run_stream, stream_get, stream_put

WIDTH = 9
JOB_WORDS = {0: 4, 1: 4, 2: 0, 3: 4}


def simulate(dut, *benches, background=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6, if_exists=True)
    for bench in background:
        sim.add_testbench(bench, background=True)
    for bench in benches:
        sim.add_testbench(bench)
    sim.run()


# --------------------------------------------------------------------------
# UART


def test_divisor():
    assert uart_divisor(48e6, 3e6) == 16 and uart_divisor(150e6, 3_000_000) == 50
    assert uart_divisor(100e6, 12.5e6) == 8
    assert uart_divisor(99e6, 3e6) == 33          # the lead's clocks are multiples of the baud
    with pytest.raises(ValueError, match=r"3,030,303 baud is 1.01 % off 3,000,000 baud "
                                         r"\(limit 1 %\)"):
        uart_divisor(100e6, 3_000_000)
    with pytest.raises(ValueError, match=r"3.00 clocks per bit at 3,000,000 baud; the UART "
                                         r"needs at least 4: raise the clock to >= 12 MHz"):
        uart_divisor(9e6, 3_000_000)
    with pytest.raises(ValueError, match="must be positive"):
        uart_divisor(0, 3e6)
    with pytest.raises(ValueError, match=f"divisor must be an int >= {MIN_DIVISOR}"):
        UartRx(3)


def line_levels(data, bit: float, rng: random.Random, *, stop=1, max_gap_bits=2.0):
    """The line, one level per clock, for ``data`` sent at ``bit`` clocks per bit
    (fractional: a baud-rate error), random idle between characters."""
    edges = []            # (time, level)
    t = 5.0
    for byte in data:
        t += rng.uniform(0, max_gap_bits) * bit
        for k, level in enumerate([0, *((byte >> i) & 1 for i in range(8)), stop, 1]):
            edges.append((t + k * bit, level))
        t += 10 * bit
    levels = []
    k = 0
    level = 1
    for cycle in range(int(t) + 20):
        while k < len(edges) and edges[k][0] <= cycle:
            level = edges[k][1]
            k += 1
        levels.append(level)
    return levels


def receive_line(divisor, levels):
    """Drive ``levels`` into a UartRx, one per clock; returns the bytes it delivers."""
    dut = UartRx(divisor)
    got = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for level in levels:
            ctx.set(dut.rx, level)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                got.append(payload)
    simulate(dut, bench)
    return got


@pytest.mark.parametrize("divisor", [4, 7, 16])
@pytest.mark.parametrize("rate_error", [-0.02, 0.0, 0.02])
def test_uart_rx_bytes_at_rate_error(divisor, rate_error):
    rng = random.Random(divisor * 100 + int(rate_error * 1000))
    data = [0x00, 0xFF, 0x55, 0xAA, *(rng.randrange(256) for _ in range(40))]
    levels = line_levels(data, divisor * (1 + rate_error), rng)
    assert receive_line(divisor, levels) == data


def test_uart_rx_glitch_and_framing_error():
    divisor = 8
    rng = random.Random(3)
    glitch = [1] * 10 + [0] * (divisor // 2 - 1) + [1] * 40        # shorter than half a bit
    bad_stop = line_levels([0x3C], divisor, rng, stop=0, max_gap_bits=0)
    good = line_levels([0xC3, 0x01], divisor, rng)
    assert receive_line(divisor, glitch + bad_stop + [1] * 30 + good) == [0xC3, 0x01]


def decode_line(levels, divisor):
    """Bytes on a line sampled one level per clock, with each start bit's clock."""
    out = []
    t = 0
    while t < len(levels):
        if levels[t] == 0:
            mid = t + divisor // 2
            bits = [levels[mid + k * divisor] for k in range(10)]
            assert bits[0] == 0 and bits[9] == 1, f"bad character at clock {t}: {bits}"
            out.append((sum(b << i for i, b in enumerate(bits[1:9])), t))
            t = mid + 9 * divisor
        t += 1
    return out


@pytest.mark.parametrize("divisor", [4, 9])
def test_uart_tx_line_and_rate(divisor):
    dut = UartTx(divisor)
    rng = random.Random(divisor)
    data = [0x00, 0xFF, *(rng.randrange(256) for _ in range(30))]
    levels = []

    async def producer(ctx):
        await stream_put(ctx, dut.i, data, rng, p_gap=0.3)

    async def line(ctx):
        for _ in range(12 * divisor * len(data) + 400):
            levels.append(ctx.get(dut.tx))
            await ctx.tick()
    simulate(dut, line, background=[producer])
    got = decode_line(levels, divisor)
    assert [b for b, _ in got] == data
    # bytes offered while the previous one is on the line follow at exactly 10 bits
    dense = []

    async def dense_producer(ctx):
        await stream_put(ctx, dut.i, data[:5], random.Random(0))

    levels.clear()
    simulate(dut, line, background=[dense_producer])
    starts = [t for _, t in decode_line(levels, divisor)]
    assert [b - a for a, b in zip(starts, starts[1:])] == [10 * divisor] * 4


# --------------------------------------------------------------------------
# CRC and stuffing


def test_crc16_next_is_the_protocol_update():
    m = Module()
    crc, byte = Signal(16), Signal(8)
    out = Signal(16)
    m.d.comb += out.eq(crc16_next(crc, byte))
    rng = random.Random(4)
    pairs = [(0xFFFF, 0), (0, 0xFF), *((rng.randrange(65536), rng.randrange(256))
                                      for _ in range(300))]

    async def bench(ctx):
        for c, b in pairs:
            ctx.set(crc, c)
            ctx.set(byte, b)
            assert ctx.get(out) == crc16_update(c, b)
    simulate(m, bench)


def random_bodies(rng, n):
    return [bytes(rng.choice([FLAG, ESC, rng.randrange(256)]) for _ in range(rng.randrange(1, 12)))
            for _ in range(n)]


def symbols(bodies):
    return [s for body in bodies for s in [*({"data": b, "end": 0} for b in body),
                                           {"data": 0, "end": 1}]]


def test_stuff_matches_protocol():
    rng = random.Random(5)
    bodies = random_bodies(rng, 40)
    got = run_stream(Stuff(), symbols(bodies), rng=rng, p_gap=0.3, p_stall=0.3,
                     count=len(b"".join(stuff(b) for b in bodies)))
    assert bytes(got) == b"".join(stuff(b) for b in bodies)


def test_unstuff_matches_protocol():
    rng = random.Random(6)
    bodies = random_bodies(rng, 40)
    wire = list(b"".join(stuff(b) for b in bodies))
    got = run_stream(Unstuff(), wire, rng=rng, p_gap=0.3, p_stall=0.3,
                     count=sum(len(b) + 1 for b in bodies))
    assert [{"data": s.data if not s.end else 0, "end": s.end} for s in got] == symbols(bodies)


# --------------------------------------------------------------------------
# Frame parser


def corrupt(body: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    b = bytearray(body)
    if kind == 0:
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del b[rng.randrange(len(b)):]
    elif kind == 2:
        b += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
    elif kind == 3:        # a consistent frame with a wrong count
        n = rng.choice([0, 1, 3, 5])
        return _sealed(request_body(Command.JOB, b[1], rng.choice([0, 2, 3]), n, bytes(2 * n)))
    elif kind == 4:
        return _sealed(request_body(rng.choice([0, 4, 0x7E, 255]), b[1], 0, 0))
    else:
        return _sealed(request_body(Command.JOB, b[1], rng.randrange(4, 256), 4, bytes(8)))
    return bytes(b)


def _sealed(body):
    return body + crc16(body).to_bytes(CRC_BYTES, "big")


def good_body(rng: random.Random, tag: int) -> bytes:
    cmd = rng.choice([Command.INFO, Command.RESET, Command.JOB, Command.JOB])
    if cmd != Command.JOB:
        return _sealed(request_body(cmd, tag))
    mode = rng.randrange(4)
    words = [rng.randrange(-256, 256) for _ in range(JOB_WORDS[mode])]
    payload = b"".join(w.to_bytes(2, "little", signed=True) for w in words)
    return _sealed(request_body(cmd, tag, mode, len(words), payload))


def run_parser(frames, *, timeout=200, slot_free=lambda k: True, rng=None):
    """Feed ``frames`` = ``[(body, ends)]`` back to back, 0-2 idle clocks before each
    symbol (``ends``: FLAG after it, else fall silent until the record); returns per
    frame ``(record, writes)``, the record with ``waited``: clocks from the transfer of
    the frame's last symbol to its record."""
    dut = FrameParser(width=WIDTH, job_words=JOB_WORDS, depth=8, timeout=timeout)
    rng = rng or random.Random(0)
    records, writes, last = [], [], []   # (clock, record), (clock, addr, data), clock

    async def bench(ctx):
        clock = 0

        async def tick():
            nonlocal clock
            _, _, en, a, d, valid, payload = await ctx.tick().sample(
                dut.wr.en, dut.wr.addr, dut.wr.data, dut.o.valid, dut.o.payload)
            clock += 1
            if en:
                writes.append((clock, a, d))
            if valid:
                records.append((clock, payload))

        ctx.set(dut.o.ready, 1)
        for k, (body, ends) in enumerate(frames):
            ctx.set(dut.slot_free, slot_free(k))
            ctx.set(dut.wr_base, 4 * (k % 2))
            syms = [{"data": b, "end": 0} for b in body] + ([{"data": 0, "end": 1}] if ends else [])
            for sym in syms:
                for _ in range(rng.randrange(0, 3)):
                    await tick()
                ctx.set(dut.i.payload, sym)
                ctx.set(dut.i.valid, 1)
                taken = False
                while not taken:
                    taken = ctx.get(dut.i.ready)
                    await tick()
                ctx.set(dut.i.valid, 0)
            last.append(clock)
            while not ends and len(records) <= k:
                await tick()
                assert clock - last[-1] < timeout + 10, "no record"
        for _ in range(5):
            await tick()
    simulate(dut, bench)
    assert len(records) == len(frames)
    results = []
    for k, (clock, record) in enumerate(records):
        begun = last[k - 1] if k else 0
        results.append(({"status": Status(record.status), "tag": record.tag,
                         "cmd": record.cmd, "mode": record.mode, "waited": clock - last[k]},
                        {a: d for c, a, d in writes if begun < c <= last[k]}))
    return results


def test_parser_agrees_with_check_request():
    rng = random.Random(7)
    bodies = []
    for tag in range(160):
        body = good_body(rng, tag)
        bodies.append(body if rng.random() < 0.4 else corrupt(body, rng) or body)
    bodies = [b for b in bodies if b]
    for (got, writes), body in zip(run_parser([(b, True) for b in bodies], rng=rng), bodies):
        want = check_request(body, width=WIDTH, job_words=JOB_WORDS)
        assert got["status"] == want.status and got["tag"] == want.tag, (body.hex(), got, want)
        assert got["waited"] == 2              # the verdict is taken the clock after the end
        if want.status == Status.OK:
            assert (got["cmd"], got["mode"] if want.cmd == Command.JOB else 0) == \
                (want.cmd, want.mode if want.cmd == Command.JOB else 0)
            words = [int.from_bytes(want.words[k:k + 2], "little", signed=True)
                     for k in range(0, len(want.words), 2)]
            base = min(writes) if writes else 0
            assert [writes[base + k] for k in range(len(words))] == words
            assert len(writes) == len(words)


def test_parser_counts_words_of_long_frames():
    """COUNT above a byte (the words are counted in laps of 256): an unknown command
    whose body holds exactly COUNT words is COMMAND, one word more or less LENGTH."""
    rng = random.Random(11)
    bodies = []
    for count in (255, 256, 257, 512, 700):
        for words in (count - 1, count, count + 1):
            bodies.append(_sealed(request_body(0x55, count % 256, 0, count, bytes(
                rng.randrange(256) for _ in range(2 * words)))))
    results = run_parser([(b, True) for b in bodies], rng=rng)
    assert [r["status"] for r, _ in results] == \
        [check_request(b, width=WIDTH, job_words=JOB_WORDS).status for b in bodies] == \
        [Status.LENGTH, Status.COMMAND, Status.LENGTH] * 5


def test_parser_timeout_and_overflow():
    rng = random.Random(8)
    job = good_body(random.Random(1), 0x31)
    frames = [(job[:1], False),                  # cut off before the tag
              (job[:6], False),                  # cut off in the words
              (job, True),                       # a slot is free: fine
              (job, True),                       # no slot: refused, nothing written
              (job[:3], False)]                  # refused and cut off: still OVERFLOW
    results = run_parser(frames, timeout=50, slot_free=lambda k: k < 3, rng=rng)
    statuses = [(r["status"], r["tag"]) for r, _ in results]
    assert statuses == [(Status.TIMEOUT, 0), (Status.TIMEOUT, 0x31),
                        (check_request(job, width=WIDTH, job_words=JOB_WORDS).status, 0x31),
                        (Status.OVERFLOW, 0x31), (Status.OVERFLOW, 0x31)]
    # the frame ends on the 50th edge after the last byte, its record follows like the
    # end symbol's 2 clocks in the test above
    assert results[0][0]["waited"] == 50 + 2
    assert results[3][1] == {} and results[4][1] == {}


# --------------------------------------------------------------------------
# Frame store


def test_frame_store_reads_back_under_stalls():
    dut = FrameStore(width=WIDTH, slots=2, max_words=5)
    rng = random.Random(9)
    data = [rng.randrange(-256, 256) for _ in range(10)]
    got = []

    async def bench(ctx):
        for a, d in enumerate(data):
            ctx.set(dut.wr.addr, a)
            ctx.set(dut.wr.data, d)
            ctx.set(dut.wr.en, 1)
            await ctx.tick()
        ctx.set(dut.wr.en, 0)
        for base, count in ((5, 5), (0, 5), (3, 2)):
            await stream_put(ctx, dut.start, [{"base": base, "count": count}], rng)
            got.append(await stream_get(ctx, dut.o, count, rng, p_stall=0.4))
    simulate(dut, bench)
    assert got == [data[5:], data[:5], data[3:5]]


# --------------------------------------------------------------------------
# Sequencer


def test_sequencer_orders_replies_and_merges_overflows():
    dut = Sequencer(slots=2, max_words=4, image_modes=[MODE_CODES[m] for m in IMAGE_MODES])
    rec = lambda status, tag, cmd=Command.JOB, mode=0: {  # noqa: E731
        "status": status, "tag": tag, "cmd": cmd, "mode": mode}
    # Frames as the parser would judge them if a slot is free, with the clocks
    # before each; the parser refuses (OVERFLOW) a frame that starts without one.
    # The reply engine below takes 20 clocks a reply, so frames 3-5 find both
    # slots taken, and frames 6-8 come after the backlog has drained.
    frames = [(rec(Status.OK, 1, mode=MODE_CODES["recon_sample"]), 0),
              (rec(Status.CHECKSUM, 2), 3),
              (rec(Status.OK, 3, Command.INFO), 3), (rec(Status.OK, 4), 3),
              (rec(Status.TIMEOUT, 5), 3),
              (rec(Status.OK, 6, Command.RESET), 60),
              (rec(Status.OK, 7, mode=MODE_CODES["generate"]), 3),
              (rec(Status.OK, 8, Command.INFO), 60)]
    served, free = [], []

    async def parser(ctx):
        for r, gap in frames:
            await ctx.tick().repeat(gap + 1)
            slot_free, base = ctx.get(dut.slot_free), ctx.get(dut.wr_base)
            free.append((slot_free, base))
            await ctx.tick().repeat(3)             # the frame's bytes
            ctx.set(dut.record.payload, r if slot_free else {**r, "status": Status.OVERFLOW})
            ctx.set(dut.record.valid, 1)
            await ctx.tick().until(dut.record.ready)
            ctx.set(dut.record.valid, 0)

    async def downstream(ctx):
        # The reply engine: take a request, finish it 20 clocks later.
        # The core and the store: take cmd and read at once, note them.
        ctx.set(dut.cmd.ready, 1)
        ctx.set(dut.read.ready, 1)
        ctx.set(dut.reply.ready, 1)
        pending = None
        for cycle in range(500):
            _, _, rv, rp, cv, cp, dv, dp, rst = await ctx.tick().sample(
                dut.reply.valid, dut.reply.payload, dut.cmd.valid, dut.cmd.payload,
                dut.read.valid, dut.read.payload, dut.core_rst)
            ctx.set(dut.done, 0)
            if rv:
                served.append(("reply", Status(rp.status), rp.tag, rp.source, rp.count))
                pending = cycle + 20
            if cv:
                served.append(("cmd", cp.mode.value))
            if dv:
                served.append(("read", dp.base, dp.count))
            if rst:
                served.append(("reset",))
            if pending == cycle:
                ctx.set(dut.done, 1)
                pending = None

    simulate(dut, parser, downstream)
    replies = [s[1:4] + (s[4:] if s[3] == Source.COUNT else ()) for s in served
               if s[0] == "reply"]
    # Frames 3 and 4 are refused together; the merged record takes slot 0 when
    # reply 1 has left, just before frame 5 begins, which finds slot 1 still
    # taken: a second OVERFLOW reply, in order.
    assert replies == [(Status.OK, 1, Source.CORE), (Status.CHECKSUM, 2, Source.NONE),
                       (Status.OVERFLOW, 3, Source.COUNT, 2),
                       (Status.OVERFLOW, 5, Source.COUNT, 1),
                       (Status.OK, 6, Source.NONE), (Status.OK, 7, Source.CORE),
                       (Status.OK, 8, Source.INFO)]
    others = [s for s in served if isinstance(s, tuple) and s[0] in ("cmd", "read", "reset")]
    assert others == [("cmd", MODE_CODES["recon_sample"]), ("read", 0, 4), ("reset",),
                      ("cmd", MODE_CODES["generate"])]
    assert free[:5] == [(1, 0), (1, 4), (0, 0), (0, 0), (0, 4)]
    assert [f[0] for f in free[5:]] == [1, 1, 1]


def assert_registered(dut, outputs, rng, clocks=200):
    """Between clock edges, nothing ``dut``'s neighbours drive (its inputs, set at
    random) moves ``outputs``: no combinational path reaches them."""
    inputs = [Value.cast(value) for _, member, value in dut.signature.flatten(dut)
              if member.flow == In]
    outputs = [Value.cast(o) for o in outputs]

    def drive(ctx):
        for value in inputs:
            ctx.set(value, rng.randrange(2 ** len(value)))

    async def bench(ctx):
        for _ in range(clocks):
            drive(ctx)
            await ctx.tick()
            held = [ctx.get(o) for o in outputs]
            for _ in range(4):
                drive(ctx)
                assert [ctx.get(o) for o in outputs] == held
    simulate(dut, bench)


def test_register_slice_passes_everything_in_order_with_registered_handshakes():
    dut = RegisterSlice(out_layout(16))
    rng = random.Random(10)
    words = [{"data": rng.randrange(-32768, 32768), "last": rng.randrange(2)} for _ in range(300)]
    got = run_stream(dut, words, rng=rng, p_gap=0.4, p_stall=0.4)
    assert [{"data": w.data, "last": w.last} for w in got] == words
    dut = RegisterSlice(out_layout(16))
    assert_registered(dut, [dut.i.ready, dut.o.valid], rng)


@pytest.mark.parametrize("make, ports", [
    (lambda: UartTx(4), lambda d: [d.i.ready]),
    (lambda: Stuff(), lambda d: [d.i.ready]),
    (lambda: FrameParser(width=WIDTH, job_words=JOB_WORDS, depth=8, timeout=50),
     lambda d: [d.i.ready]),
    (lambda: Sequencer(slots=2, max_words=4, image_modes=[0]),
     lambda d: [d.record.ready, d.reply.valid, d.reply.payload, d.cmd.valid, d.read.valid]),
    (lambda: ReplyTx(info=b"\x7e\x01", out_width=16, job_bytes={0: 4}),
     lambda d: [d.i.ready, d.words.ready, d.done]),
], ids=["uart_tx", "stuff", "parser", "sequencer", "reply"])
def test_handshakes_are_registers(make, ports):
    """No combinational path runs from a block's inputs to these handshakes, so none
    chains through several blocks (the timing notes in hw.frontend)."""
    dut = make()
    assert_registered(dut, ports(dut), random.Random(12))


# --------------------------------------------------------------------------
# Reply engine


@pytest.mark.parametrize("seed", [0, 1])
def test_reply_tx_bodies(seed):
    rng = random.Random(seed)
    info = bytes([FLAG, ESC, 1, 2, 3])
    out_width = 16
    job_bytes = {0: 8, 1: 8, 2: 8, 3: 4}
    dut = ReplyTx(info=info, out_width=out_width, job_bytes=job_bytes)
    words = {0: [1, -1, FLAG, -32768], 3: [ESC, 32767]}
    requests = [({"status": Status.OK, "tag": 5, "source": Source.CORE, "mode": 0},
                 reply_body(Status.OK, 5, b"".join(w.to_bytes(2, "little", signed=True)
                                                   for w in words[0]))),
                ({"status": Status.OK, "tag": FLAG, "source": Source.INFO},
                 reply_body(Status.OK, FLAG, info)),
                ({"status": Status.MODE, "tag": 9, "source": Source.NONE},
                 reply_body(Status.MODE, 9)),
                ({"status": Status.OVERFLOW, "tag": 2, "source": Source.COUNT, "count": 515},
                 reply_body(Status.OVERFLOW, 2, struct.pack("<H", 515))),
                ({"status": Status.OK, "tag": 6, "source": Source.CORE, "mode": 3},
                 reply_body(Status.OK, 6, b"".join(w.to_bytes(2, "little", signed=True)
                                                   for w in words[3])))]
    got = []
    ends, dones = [], []                 # clocks of each end-of-frame transfer, of each done

    async def requester(ctx):
        for req, _ in requests:
            await stream_put(ctx, dut.i, [req], rng, p_gap=0.5)

    async def core(ctx):
        for mode in (0, 3):
            ws = words[mode]
            await stream_put(ctx, dut.words, [{"data": w, "last": k == len(ws) - 1}
                                              for k, w in enumerate(ws)], rng, p_gap=0.5)

    async def sink(ctx):
        body = bytearray()
        cycle = 0
        while len(got) < len(requests) or cycle <= ends[-1] + 3:
            ctx.set(dut.o.ready, rng.random() > 0.3)
            _, _, valid, ready, payload, done = await ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload, dut.done)
            if done:
                dones.append(cycle)
            if valid and ready:
                if payload.end:
                    got.append(bytes(body))
                    body = bytearray()
                    ends.append(cycle)
                else:
                    body.append(payload.data)
            cycle += 1

    simulate(dut, sink, background=[requester, core])
    assert got == [want for _, want in requests]
    assert dones == [t + 1 for t in ends]        # once a reply, the clock after its end
    assert all(crc16(b) == 0 for b in got)


def test_netlist_bits_counts_registers_and_memories():
    """The RTLIL reading behind FrontendPlan.cost, on blocks whose contents are known."""
    from hw.cost import memory_attrs
    from amaranth.lib import memory, wiring
    from amaranth.lib.wiring import In, Out

    class Known(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(8), "y": Out(8)})

        def elaborate(self, platform):
            m = Module()
            counter = Signal(5)
            m.d.sync += [counter.eq(counter + 1), self.y.eq(self.a + counter)]
            m.submodules.mem = mem = memory.Memory(shape=12, depth=10, init=[1],
                                                   attrs=memory_attrs(sync_read=False))
            rd = mem.read_port(domain="comb")
            m.d.comb += rd.addr.eq(counter)
            m.d.sync += counter.eq(counter + rd.data[0])
            m.submodules.rom = memory.Memory(shape=3, depth=7, init=[],
                                             attrs=memory_attrs(sync_read=True))
            return m

    assert netlist_bits(Known()) == {"register_bits": 5 + 8, "block_memory_bits": 3 * 7,
                                     "logic_memory_bits": 12 * 10}
