"""cocotb test of :class:`hw.frontend.UartFrontend`, driven by the host client's own code.

:class:`PinUart` is a :class:`hw.host.Transport` whose serial port is the
simulated UART: a transmitter coroutine bit-bangs the queued bytes onto the
DUT's ``rx`` pin, a receiver coroutine samples ``tx`` in the middle of each
bit.  Its ``write``/``read`` are :func:`cocotb.task.resume` functions, and the
synchronous client (:mod:`hw.host`) runs in a :func:`cocotb.task.bridge`
thread, so simulated time passes exactly while the client waits on the
transport, as a real board's time passes while a host waits on its port.
Timeouts the client passes are in the board's (simulated) seconds.

Config (:mod:`sim.exchange`, written by :func:`sim.uart_cosim.run_session`):
``artifact`` (directory), ``vectors`` (``x``: inputs as ints), ``timeout_s``
(the client's), ``scenario``, ``modes``, ``images``, ``reset_check``,
``rtl_out``; the design's ``meta`` gives ``divisor``, ``clk_hz`` (the clock the
frontend was built for: the transport converts the client's seconds to
clocks with it, so the client runs on board time) and ``timeout_s`` (the
frontend's inter-byte timeout).

``images``
    Connect (``INFO`` checked against the artifact), reset, each of
    ``modes`` on every row of ``x`` (``generate``: ``images`` of them); with
    ``reset_check``, then a reset and ``recon_sample`` again.  Every word is
    compared with the golden model; the board's words go to ``rtl_out``.
``errors``
    Every kind of malformed frame, each followed by a good ``recon_sample``
    job that must be exact (so no rejected job consumed sampler draws), FLAG
    fill between frames, a burst beyond the window (OVERFLOW), a cut-off
    frame (TIMEOUT); and the client's own errors: a reply later than its
    timeout, a board running another artifact.

Results: ``images``, ``mismatches`` (images), ``modes`` (per mode: images,
mismatches and which, wall ``seconds``, simulated ``board_seconds``), ``checks``
(``[name, expected, got]``), ``failures`` (the checks that went wrong).  The
test fails on an exception (a timeout, a garbled reply); mismatches and
failed checks are results, judged by the caller.
"""

from __future__ import annotations

import time
from collections import deque

import cocotb
import numpy as np
from cocotb.task import bridge, resume
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, FallingEdge, First, Timer

from hw.host import BoardClient, BoardSession, BoardTimeout, WrongBitstream
from hw.protocol import (
    CRC_BYTES, FLAG, Command, Status, encode_words, info_frame, request_body, seal, stuff,
)
from model.random_artifact import random_artifact
from model.artifact import load_artifact
from sim import exchange
from sim.cocotb_private import signal_reader
from sim.streams import Clocking


class PinUart:
    """The host's end of the DUT's UART, bit-banged on its ``rx``/``tx`` pins.

    Times the client passes are board seconds: ``clk_hz`` clocks of
    ``period`` simulator steps each.
    """

    def __init__(self, dut, *, divisor: int, period: int, clk_hz: float):
        self.rx_pin = dut.rx
        self.tx_pin = dut.tx
        self.read_tx = signal_reader(dut.tx)
        self.bit = divisor * period
        self.steps_per_second = clk_hz * period
        self.outbox: deque[int] = deque()
        self.inbox = bytearray()
        self.framing_errors = 0
        self._queued = Event()
        self._arrived = Event()
        self.rx_pin.value = 1
        cocotb.start_soon(self._transmit())
        cocotb.start_soon(self._receive())

    async def _transmit(self):
        while True:
            if not self.outbox:
                self._queued.clear()
                await self._queued.wait()
            byte = self.outbox.popleft()
            for level in (0, *((byte >> i) & 1 for i in range(8)), 1):
                self.rx_pin.value = level
                await Timer(self.bit, "step")

    async def _receive(self):
        while True:
            await FallingEdge(self.tx_pin)
            await Timer(self.bit // 2, "step")
            if self.read_tx():
                continue                       # not a start bit
            byte = 0
            for i in range(8):
                await Timer(self.bit, "step")
                byte |= self.read_tx() << i
            await Timer(self.bit, "step")
            if not self.read_tx():
                self.framing_errors += 1
                continue
            self.inbox.append(byte)
            self._arrived.set()

    def _steps(self, seconds: float) -> int:
        return max(1, round(seconds * self.steps_per_second))

    @resume
    async def write(self, data: bytes) -> None:
        self.outbox.extend(data)
        self._queued.set()

    @resume
    async def read(self, n: int, timeout: float) -> bytes:
        if not self.inbox:
            self._arrived.clear()
            await First(self._arrived.wait(), Timer(self._steps(timeout), "step"))
        out = bytes(self.inbox[:n])
        del self.inbox[:n]
        return out

    @resume
    async def now(self) -> float:
        """Board seconds since the simulation began."""
        return get_sim_time("step") / self.steps_per_second


def images_scenario(uart: PinUart, cfg: dict, artifact, x: np.ndarray) -> dict:
    session = BoardSession(BoardClient(uart, timeout=cfg["timeout_s"]), artifact)
    info = session.open()
    runs = [*cfg["modes"], *(["reset", "recon_sample"] if cfg["reset_check"] else [])]
    modes, outputs = {}, {}
    for mode in runs:
        if mode == "reset":
            session.reset()
            continue
        start, board_start = time.perf_counter(), uart.now()
        run = (session.run(mode, n=cfg["images"]) if mode == "generate"
               else session.run(mode, x))
        key = mode if mode not in modes else f"{mode}_after_reset"
        outputs[key] = run.board
        modes[key] = {"images": len(run.board), "mismatches": len(run.mismatched_images),
                      "mismatched": run.mismatched_images,
                      "seconds": time.perf_counter() - start,
                      "board_seconds": uart.now() - board_start,
                      "link_images_per_second": info.link_images_per_second(mode)}
    exchange.save_vectors(cfg["rtl_out"], **outputs)
    return {"info": info.describe(), "modes": modes,
            "images": sum(r["images"] for r in modes.values()),
            "mismatches": sum(r["mismatches"] for r in modes.values()), "checks": []}


def errors_scenario(uart: PinUart, cfg: dict, artifact, x: np.ndarray) -> dict:
    """Each malformed frame, its reply's status and tag, then an exact good job."""
    client = BoardClient(uart, timeout=cfg["timeout_s"])
    session = BoardSession(client, artifact)
    session.open()
    width = artifact.input_fmt.width
    job = Command.JOB
    sample = 1                        # code of recon_sample: draws from the sampler
    n = artifact.input_dim
    words = encode_words(x[0], width)
    nb = len(words) // n
    checks = []
    mismatches = 0
    row = 0

    def good_job():
        nonlocal mismatches, row
        run = session.run("recon_sample", x[row % len(x):row % len(x) + 1])
        mismatches += len(run.mismatched_images)
        row += 1

    def expect(name, frame, want):
        tag = client.new_tag()
        client.send(frame(tag), tag)
        reply = client.receive()
        checks.append([name, [want.name, tag], [reply.status.name, reply.tag]])
        good_job()

    expect("unknown command", lambda t: seal(request_body(0x09, t)), Status.COMMAND)
    expect("unknown mode", lambda t: seal(request_body(job, t, 7, n, words)), Status.MODE)
    expect("wrong count for the mode", lambda t: seal(request_body(
        job, t, sample, n - 1, words[:-nb])), Status.LENGTH)
    expect("count disagrees with the words", lambda t: seal(request_body(
        job, t, sample, n, words[:-nb])), Status.LENGTH)
    expect("words for generate", lambda t: seal(request_body(job, t, 2, n, words)),
           Status.LENGTH)
    expect("runt", lambda t: stuff(bytes([job, t, sample])), Status.LENGTH)

    expect("bad checksum", lambda t: stuff(request_body(job, t, sample, n, words)
                                           + bytes(CRC_BYTES)), Status.CHECKSUM)

    def cut_off(tag):
        return seal(request_body(job, tag, sample, n, words))[:-6]
    expect("frame cut off", cut_off, Status.TIMEOUT)

    # The client's own errors: a reply slower than its timeout, a wrong bitstream.
    tag = client.new_tag()
    client.send(cut_off(tag), tag)
    patience, client.timeout = client.timeout, cfg["design_meta"]["timeout_s"] / 2
    try:
        client.receive()
        checks.append(["client timeout", "BoardTimeout", "a reply"])
    except BoardTimeout as exc:
        checks.append(["client timeout", "BoardTimeout", type(exc).__name__])
    client.timeout = patience
    reply = client.receive()           # the board's own TIMEOUT reply, later
    checks.append(["late reply", ["TIMEOUT", tag], [reply.status.name, reply.tag]])
    try:
        BoardSession(BoardClient(uart, timeout=cfg["timeout_s"]),
                     random_artifact(artifact.preset, seed=99)).open()
        checks.append(["wrong bitstream named", "digest: board ...", "accepted"])
    except WrongBitstream as exc:
        checks.append(["wrong bitstream named", "digest: board ...",
                       "digest: board ..." if "digest: board " in str(exc) else str(exc)])
    good_job()

    # FLAG fill between frames is no frame: no reply, the next frame is fine.
    uart.write(bytes([FLAG, FLAG, FLAG]))
    good_job()

    # Four frames at once, window or not: two fit the slots, the other two are
    # refused together (the INFO replies are long, so no slot frees in time).
    tags = [client.new_tag() for _ in range(4)]
    for tag in tags:
        client.send(info_frame(tag), tag)
    replies = [client.receive() for _ in range(3)]
    checks.append(["burst beyond the window",
                   [["OK", tags[0]], ["OK", tags[1]], ["OVERFLOW", tags[2], 2]],
                   [[r.status.name, r.tag] + ([r.refused] if r.status == Status.OVERFLOW else [])
                    for r in replies]])
    checks.append(["nothing left outstanding", 0, client.outstanding])
    good_job()
    failures = [c for c in checks if c[1] != c[2]]
    return {"checks": checks, "images": row, "mismatches": mismatches, "modes": {},
            "framing_errors": uart.framing_errors, "failures": failures}


SCENARIOS = {"images": images_scenario, "errors": errors_scenario}


@cocotb.test()
async def host_session(dut):
    """Run the configured scenario through the host client, over the pins; write results."""
    cfg = exchange.load_config()
    artifact = load_artifact(cfg["artifact"])
    x = exchange.load_vectors(cfg["vectors"])["x"]
    meta = cfg["design_meta"]
    ck = Clocking(dut.clk, cfg["clock_period_ns"])
    dut.rx.value = 1
    dut.rst.value = 1
    ck.start()
    await ck.cycles(3)
    dut.rst.value = 0
    uart = PinUart(dut, divisor=meta["divisor"], period=ck.period, clk_hz=meta["clk_hz"])
    start = time.perf_counter()
    results = await bridge(SCENARIOS[cfg["scenario"]])(uart, cfg, artifact, x)
    results["wall_seconds_in_sim"] = time.perf_counter() - start
    results.setdefault("failures", [])
    exchange.write_results(cfg["results"], results)
