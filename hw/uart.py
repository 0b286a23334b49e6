"""8N1 UART receiver and transmitter as stream components, and the baud divisor.

Both count ``divisor`` clocks per bit (:func:`uart_divisor` picks it and
refuses a clock that cannot make the baud rate).  Bytes leave and enter as
``amaranth.lib.stream`` payloads of 8 bits, least significant bit first on
the line, as every UART does.

:class:`UartRx` passes the pin through a 2-FF synchroniser, takes a low line
as a start bit, confirms it half a bit later (a shorter glitch is a false
start and is ignored) and samples every following bit in its middle; a byte
whose stop bit reads low (a framing error) is dropped.  Its output is a
one-byte register: the consumer must take a byte within one character time
or the next one is dropped (the frontend's consumer is always ready).

:class:`UartTx` shifts start bit, 8 data bits and stop bit out of a register
(the pin is a flip-flop output, idle high) and takes the next byte in the
stop bit's last clock, so back-to-back bytes take exactly ``10 * divisor``
clocks each.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import cdc, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MIN_DIVISOR", "MAX_RATE_ERROR", "uart_divisor", "UartRx", "UartTx"]

#: Fewest clocks per bit: the receiver confirms a start bit ``divisor // 2``
#: clocks after seeing it, so fewer leaves no margin for the synchroniser.
MIN_DIVISOR = 4
#: Largest baud-rate error the divisor may leave: 8N1 tolerates about 4.5 %
#: between both ends together, so 1 % here keeps the rest for the other side.
MAX_RATE_ERROR = 0.01


def uart_divisor(clk_hz: float, baud: float, *, max_error: float = MAX_RATE_ERROR) -> int:
    """Clocks per bit for ``baud`` at ``clk_hz``; a clear ``ValueError`` when the
    nearest divisor is below :data:`MIN_DIVISOR` or misses ``baud`` by more than
    ``max_error``."""
    if not clk_hz > 0 or not baud > 0:
        raise ValueError(f"clock and baud rate must be positive, not clk_hz={clk_hz!r}, "
                         f"baud={baud!r}")
    ratio = clk_hz / baud
    divisor = max(1, round(ratio))
    if divisor < MIN_DIVISOR:
        raise ValueError(f"{clk_hz / 1e6:g} MHz gives {ratio:.2f} clocks per bit at {baud:,.0f} "
                         f"baud; the UART needs at least {MIN_DIVISOR}: raise the clock to "
                         f">= {MIN_DIVISOR * baud / 1e6:g} MHz or lower the baud rate")
    actual = clk_hz / divisor
    error = abs(actual - baud) / baud
    if error > max_error:
        raise ValueError(f"{clk_hz / 1e6:g} MHz / {divisor} = {actual:,.0f} baud is "
                         f"{100 * error:.2f} % off {baud:,.0f} baud (limit {100 * max_error:g} %); "
                         f"choose a clock near a multiple of {baud / 1e6:g} MHz, e.g. "
                         f"{divisor * baud / 1e6:g} MHz")
    return divisor


class _BitTimed(wiring.Component):
    """A component that counts ``divisor`` clocks per bit (:func:`uart_divisor`)."""

    def __init__(self, divisor: int, members: dict):
        if not isinstance(divisor, int) or divisor < MIN_DIVISOR:  # uart_divisor gives these
            raise ValueError(f"divisor must be an int >= {MIN_DIVISOR} (clocks per bit), "
                             f"not {divisor!r}")
        self.divisor = divisor
        super().__init__(members)


class UartRx(_BitTimed):
    """Pin ``rx`` -> bytes on ``o``, ``divisor`` clocks per bit."""

    def __init__(self, divisor: int):
        super().__init__(divisor, {"rx": In(1, init=1), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = cdc.FFSynchronizer(self.rx, line, init=1)
        # Clocks to wait, minus one: the sign bit says the wait is over (no compare).
        timer = Signal(range(-1, self.divisor - 1))
        # Data bits enter at the top behind a marker bit, which reaches bit 0 when all
        # 8 are in (no bit counter to compare).
        shift = Signal(9)

        # Where the receiver is, as flags (idle: neither), so that no state is decoded.
        starting = Signal()              # a start bit seen, to be confirmed at its middle
        receiving = Signal()             # data bits, then the stop bit

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(~starting & ~receiving & ~line):
            m.d.sync += [timer.eq(self.divisor // 2 - 2), starting.eq(1)]
        with m.If(starting):
            with m.If(~timer[-1]):
                m.d.sync += timer.eq(timer - 1)
            with m.Elif(line):             # high again at mid-bit: a glitch
                m.d.sync += starting.eq(0)
            with m.Else():
                m.d.sync += [timer.eq(self.divisor - 2), shift.eq(1 << 8), starting.eq(0),
                             receiving.eq(1)]
        with m.If(receiving):
            with m.If(~timer[-1]):
                m.d.sync += timer.eq(timer - 1)
            with m.Elif(shift[0]):         # the stop bit's middle
                with m.If(line & (~self.o.valid | self.o.ready)):
                    m.d.sync += [self.o.payload.eq(shift[1:]), self.o.valid.eq(1)]
                m.d.sync += receiving.eq(0)
            with m.Else():
                m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(self.divisor - 2)]
        return m


class UartTx(_BitTimed):
    """Bytes on ``i`` -> pin ``tx``, ``divisor`` clocks per bit."""

    def __init__(self, divisor: int):
        super().__init__(divisor, {"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        busy = Signal()                  # a character is on the line
        shift = Signal(9)                # its bits still to come: data, then the stop bit
        more = Signal(9)                 # which of them are still to come (no bit counter)
        # Clocks of the current bit still to come, minus one: the sign bit marks the
        # bit's last clock (no compare).
        timer = Signal(range(-1, self.divisor - 1))
        # Takes a byte when idle or in the stop bit's last clock, so bytes follow at
        # exactly 10 bits: a register set a clock ahead, so `ready` is no logic.
        free = Signal(init=1)
        take = self.i.valid & free

        m.d.comb += self.i.ready.eq(free)
        m.d.sync += free.eq(~take & (~busy | ~more[0] & (timer - 1)[-1]))
        with m.If(take):
            m.d.sync += [self.tx.eq(0), busy.eq(1), shift.eq(Cat(self.i.payload, Const(1, 1))),
                         more.eq(0x1FF), timer.eq(self.divisor - 2)]
        with m.Elif(busy):
            with m.If(~timer[-1]):
                m.d.sync += timer.eq(timer - 1)
            with m.Else():                      # a bit's last clock: the next bit, or done
                m.d.sync += [timer.eq(self.divisor - 2), busy.eq(more[0]),
                             more.eq(more >> 1)]
                with m.If(more[0]):
                    m.d.sync += [self.tx.eq(shift[0]), shift.eq(shift >> 1)]
        return m
