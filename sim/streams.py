"""cocotb stream driver and monitor for ``amaranth.lib.stream`` ports.

Timing discipline (simulator independent)
-----------------------------------------
Every write by the testbench happens right after a *falling* clock edge;
every handshake decision is made in the ``ReadOnly`` phase of that same
time step.  Nothing changes between that ``ReadOnly`` and the next rising
edge, so ``valid & ready`` seen there is exactly what the DUT samples.
This avoids the question of whether a value read "at" ``RisingEdge`` is
the pre- or post-edge one (Icarus and Verilator answer differently).

Speed
-----
cocotb's cost per ``await`` is far larger than a simulated clock, so the
driver and the monitor wake once per clock *only while words move*.  While
the DUT is busy (``ready`` low for the driver, ``valid`` low for the
monitor) they sleep on a value-change trigger of that one signal
(:meth:`Clocking.wait_high`), however many thousand cycles it takes.

Randomness
----------
:class:`Stalls` makes seeded random gaps: each cycle a stall starts with
probability ``prob`` and lasts a uniform 1..``burst`` cycles.  ``prob = 0``
draws no random numbers at all (the speed runs).  The driver inserts gaps
in ``valid``, the monitor drops ``ready``.

Integrity
---------
The driver counts accepted words; the monitor records every transferred
word with the rising edge it moved on.  A word can only be recorded at a
decision point where ``valid & ready`` are both high, once, in order; both
sides release (``valid = 0`` / ``ready = 0``) when they finish, so no
transfer can happen unobserved.
"""

from __future__ import annotations

import random

from cocotb.simtime import get_sim_time
from cocotb.triggers import FallingEdge, First, ReadOnly, RisingEdge, Timer

from sim.cocotb_private import signal_reader

__all__ = ["StreamTimeout", "Payload", "Clocking", "Stalls", "StreamDriver", "StreamMonitor",
           "bring_up", "pulse_reset"]


class StreamTimeout(AssertionError):
    """A stream waited longer than its watchdog allows."""


class Payload:
    """Packs/unpacks one stream's payload per its shape description (:func:`hw.ports.describe_shape`)."""

    def __init__(self, shape: dict):
        self.width = shape["width"]
        self.signed = shape["signed"]
        self.fields = shape["fields"]
        self.mask = (1 << self.width) - 1

    @staticmethod
    def _to_signed(bits: int, width: int) -> int:
        return bits - (1 << width) if bits >> (width - 1) & 1 else bits

    def pack(self, value) -> int:
        """int (plain shape) or dict of field values -> unsigned bit pattern."""
        if self.fields is None:
            return int(value) & self.mask
        bits = 0
        for name, desc in self.fields.items():
            bits |= (int(value.get(name, 0)) & ((1 << desc["width"]) - 1)) << desc["offset"]
        return bits

    def unpack(self, bits: int):
        if self.fields is None:
            return self._to_signed(bits, self.width) if self.signed else bits
        return {name: self.field(bits, name) for name in self.fields}

    def field(self, bits: int, name: str) -> int:
        desc = self.fields[name]
        value = (bits >> desc["offset"]) & ((1 << desc["width"]) - 1)
        return self._to_signed(value, desc["width"]) if desc["signed"] else value

    def field_getter(self, name: str):
        """A fast ``bits -> field value`` function."""
        desc = self.fields[name]
        offset, width, signed = desc["offset"], desc["width"], desc["signed"]
        mask, top, span = (1 << width) - 1, 1 << (width - 1), 1 << width
        if signed:
            return lambda bits: (v - span) if (v := (bits >> offset) & mask) & top else v
        return lambda bits: (bits >> offset) & mask


class Clocking:
    """Shared triggers and time arithmetic for one clock of period ``period_ns``.

    The clock (cocotb's ``Clock``) starts high at time 0, so rising edges lie at
    multiples of the period and falling edges half a period later.
    """

    def __init__(self, clk, period_ns: float):
        self.clk = clk
        self.falling = FallingEdge(clk)
        self.readonly = ReadOnly()
        self.period = int(round(get_steps(period_ns)))
        self.half = self.period // 2
        self.t0 = 0
        self.clock = None

    def start(self) -> None:
        """Start the clock now (high for the first half period): rising edge k is
        at ``t0 + k * period``.  The clock toggles in C (``impl="gpi"``), so an
        idle stretch costs no Python."""
        from cocotb.clock import Clock
        self.t0 = get_sim_time("step")
        self.clock = Clock(self.clk, self.period, unit="step", impl="gpi")
        self.clock.start(start_high=True)

    def now(self) -> int:
        return get_sim_time("step")

    def next_edge(self) -> int:
        """Index of the next rising edge (edge k happens at ``t0 + k * period``)."""
        return (self.now() - self.t0 + self.half) // self.period

    def at_falling(self) -> bool:
        return (self.now() - self.t0) % self.period == self.half

    async def cycles(self, n: int) -> None:
        """Wait ``n`` whole cycles, from a falling edge to a falling edge.

        A ``Timer`` of whole periods would land in the falling edge's time
        step, but possibly *before* the clock's own transition there; a later
        ``await falling`` would then fire in that same step and a cycle
        would be counted twice.  So: sleep to the preceding rising edge's
        step (Python-free), then wait for the falling edge itself."""
        if n > 0:
            if n > 1:
                await Timer((n - 1) * self.period + self.half, "step")
            await self.falling

    async def wait_high(self, read, signal, *, timeout_cycles: int | None = None,
                        what: str = "signal") -> None:
        """From a ``ReadOnly`` phase after a falling edge with ``read() == 0``,
        return in the ``ReadOnly`` phase after a falling edge with ``read() == 1``
        (the next rising edge samples it high), sleeping on ``signal``'s rising
        edge instead of waking every clock."""
        rise = RisingEdge(signal)
        deadline = None if timeout_cycles is None else self.now() + timeout_cycles * self.period
        while True:
            if deadline is None:
                await rise
            else:
                left = deadline - self.now()
                if left <= 0 or await First(rise, Timer(left, "step")) is not rise:
                    raise StreamTimeout(f"{what} stayed low for {timeout_cycles} cycles")
            # The signal rose: at a rising edge (state changed) or in a falling
            # edge's time step (another testbench coroutine wrote).  Decide only
            # at the ReadOnly after a falling edge.
            if not self.at_falling():
                await self.falling
            await self.readonly
            if read():
                return


def get_steps(ns: float) -> float:
    from cocotb.utils import get_sim_steps
    return get_sim_steps(ns, "ns")


class Stalls:
    """Seeded random stall pattern: per cycle, a stall of 1..``burst`` cycles
    starts with probability ``prob``."""

    def __init__(self, prob: float = 0.0, burst: int = 1, seed: int = 0):
        if not 0.0 <= prob < 1.0:
            raise ValueError(f"stall probability must be in [0, 1), not {prob!r}")
        if burst < 1:
            raise ValueError(f"stall burst must be >= 1, not {burst!r}")
        self.prob = prob
        self.burst = burst
        self.rng = random.Random(seed)

    def next(self) -> int:
        """Cycles to stall before the next word (0 most of the time)."""
        if self.prob == 0.0 or self.rng.random() >= self.prob:
            return 0
        return self.rng.randint(1, self.burst)


class _Port:
    """What a driver and a monitor share: the stream's handles, stalls, and the
    one handshake bit this side drives (``valid`` for a driver, ``ready`` for a
    monitor), written only when its value changes since each write is a GPI call."""

    DUT_DIR = ""   # the DUT-side direction of the stream this side connects to
    ROLE = ""
    DRIVES = ""    # "valid" or "ready"

    def __init__(self, dut, desc: dict, clocking: Clocking, *, name: str,
                 stalls: Stalls | None, timeout_cycles: int | None, registered: bool):
        if desc["dir"] != self.DUT_DIR:
            raise ValueError(f"{name}: a {self.ROLE} needs a DUT {self.DUT_DIR}put stream, "
                             f"not {desc['dir']!r}")
        self.name = name
        self.desc = desc
        self.payload_codec = Payload(desc["shape"])
        self.valid = getattr(dut, desc["valid"])
        self.ready = getattr(dut, desc["ready"])
        self.payload = getattr(dut, desc["payload"])
        self.ck = clocking
        self.stalls = stalls or Stalls()
        self.timeout_cycles = timeout_cycles
        self.registered = registered
        self._driven = getattr(self, self.DRIVES)
        self._driven_value = None  # last value written (None: unknown)

    def _drive(self, value: int) -> None:
        if self._driven_value != value:
            self._driven.value = value
            self._driven_value = value

    def forget(self) -> None:
        """Someone else wrote the handshake bit (a reset helper): write it again next time."""
        self._driven_value = None


class StreamDriver(_Port):
    """Drives a stream the DUT consumes (``dir == "in"``).

    ``registered=True`` promises that the DUT's ``ready`` is a function of
    its registers only (no combinational path from any testbench input):
    then ``ready`` read right at the falling edge already holds for the next
    rising edge, and the driver wakes once per word instead of twice.  A
    broken promise shows up as lost or repeated input words, which the
    scoreboard reports.
    """

    DUT_DIR, ROLE, DRIVES = "in", "driver", "valid"

    def __init__(self, dut, desc: dict, clocking: Clocking, *, name: str = "stream",
                 stalls: Stalls | None = None, timeout_cycles: int | None = None,
                 registered: bool = False):
        super().__init__(dut, desc, clocking, name=name, stalls=stalls,
                         timeout_cycles=timeout_cycles, registered=registered)
        self.read_ready = signal_reader(self.ready)
        self.sent = 0          # words accepted by the DUT, ever
        self.edges: list[int] = []  # rising edge of each accepted word (when recording)
        self.record = False

    async def send(self, words, *, packed: bool = False) -> int:
        """Present ``words`` in order, each until accepted; returns the edge the
        last one moved on.  Call after a falling edge; returns after one."""
        ck, stalls = self.ck, self.stalls
        payload, read_ready, ready = self.payload, self.read_ready, self.ready
        pack = (lambda w: int(w) & self.payload_codec.mask) if packed or \
            self.payload_codec.fields is None else self.payload_codec.pack
        falling, readonly = ck.falling, ck.readonly
        registered, record, edges = self.registered, self.record, self.edges
        use_stalls = stalls.prob > 0
        edge = -1
        try:
            for word in words:
                if use_stalls:
                    gap = stalls.next()
                    if gap:
                        self._drive(0)
                        await ck.cycles(gap)
                payload.value = pack(word)
                self._drive(1)
                if registered:
                    # ready is settled at the falling edge and our writes
                    # cannot change it before the next rising edge.
                    while not read_ready():
                        await RisingEdge(ready)
                        await falling
                else:
                    await readonly
                    if not read_ready():
                        await ck.wait_high(read_ready, ready, timeout_cycles=self.timeout_cycles,
                                           what=f"{self.name}.ready")
                edge = ck.next_edge()
                if record:
                    edges.append(edge)
                self.sent += 1
                await falling
            self._drive(0)
        except BaseException:
            self.forget()
            raise
        return edge


class StreamMonitor(_Port):
    """Consumes a stream the DUT produces (``dir == "out"``) with random ``ready`` stalls.

    ``registered=True`` promises that ``valid`` and ``payload`` are DUT
    registers (true of every fxvae block's output): they are read right at
    the falling edge, one wake-up per word.
    """

    DUT_DIR, ROLE, DRIVES = "out", "monitor", "ready"

    def __init__(self, dut, desc: dict, clocking: Clocking, *, name: str = "stream",
                 stalls: Stalls | None = None, timeout_cycles: int | None = None,
                 registered: bool = False):
        super().__init__(dut, desc, clocking, name=name, stalls=stalls,
                         timeout_cycles=timeout_cycles, registered=registered)
        self.read_valid = signal_reader(self.valid)
        self.read_payload = signal_reader(self.payload)
        self.received = 0

    async def _wait_valid_registered(self) -> None:
        """At a falling edge with valid low: sleep until it rises (at a rising
        edge, it is a register), then return at the following falling edge."""
        ck = self.ck
        rise = RisingEdge(self.valid)
        if self.timeout_cycles is None:
            await rise
        else:
            if await First(rise, Timer(self.timeout_cycles * ck.period, "step")) is not rise:
                raise StreamTimeout(f"{self.name}.valid stayed low for {self.timeout_cycles} cycles")
        await ck.falling

    async def receive(self, count: int | None = None, *, until=None):
        """Accept words until ``count`` have moved or ``until(bits)`` is true for
        one; returns ``(payload bit patterns, rising edge of each)``.  Call after
        a falling edge; returns after one with ``ready`` low."""
        ck, stalls = self.ck, self.stalls
        read_valid, read_payload = self.read_valid, self.read_payload
        falling, readonly = ck.falling, ck.readonly
        registered = self.registered
        use_stalls = stalls.prob > 0
        words: list[int] = []
        edges: list[int] = []
        try:
            while count is None or len(words) < count:
                if use_stalls:
                    gap = stalls.next()
                    if gap:
                        self._drive(0)
                        await ck.cycles(gap)
                self._drive(1)
                if registered:
                    while not read_valid():
                        await self._wait_valid_registered()
                else:
                    await readonly
                    if not read_valid():
                        await ck.wait_high(read_valid, self.valid,
                                           timeout_cycles=self.timeout_cycles,
                                           what=f"{self.name}.valid")
                bits = read_payload()
                words.append(bits)
                edges.append(ck.next_edge())
                self.received += 1
                await falling
                if until is not None and until(bits):
                    break
            self._drive(0)
        except BaseException:
            self.forget()
            raise
        return words, edges


async def bring_up(dut, config: dict, *, reset_cycles: int = 2) -> Clocking:
    """Start the clock, hold every DUT input idle, pulse reset; returns after a
    falling edge with reset low."""
    ports = config["ports"]
    ck = Clocking(getattr(dut, ports["clock"]), config["clock_period_ns"])
    for desc in ports["streams"].values():
        if desc["dir"] == "in":
            getattr(dut, desc["valid"]).value = 0
            getattr(dut, desc["payload"]).value = 0
        else:
            getattr(dut, desc["ready"]).value = 0
    for name, desc in ports["signals"].items():
        if desc["dir"] == "in":
            getattr(dut, name).value = 0
    rst = getattr(dut, ports["reset"])
    rst.value = 1
    ck.start()
    await ck.falling
    await ck.cycles(reset_cycles)
    rst.value = 0
    return ck


async def pulse_reset(dut, config: dict, ck: Clocking, *, cycles: int = 2) -> None:
    """From a falling edge: idle every input, hold reset for ``cycles`` rising
    edges; returns after a falling edge with reset low."""
    ports = config["ports"]
    for desc in ports["streams"].values():
        if desc["dir"] == "in":
            getattr(dut, desc["valid"]).value = 0
        else:
            getattr(dut, desc["ready"]).value = 0
    rst = getattr(dut, ports["reset"])
    rst.value = 1
    await ck.cycles(cycles)
    rst.value = 0
