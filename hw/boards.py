"""FPGA boards: what each one offers, how its clock is made, and the top that wraps the core.

A :class:`Board` names an amaranth-boards platform and the figures the build
checks a design against before running the toolchain (multiplier blocks,
block RAM), the default preset and core knobs chosen to fit it, and the
target clock.  :class:`BoardTop` is the design put on the board: a PLL makes
the ``sync`` clock from the board's oscillator, a reset is held until the PLL
locks (and, on the iCE40, until its block RAMs read correctly), and
:class:`hw.frontend.UartFrontend` sits on the USB-serial chip's lines.

Why these configurations (see README, "Boards"):

* **iCEBreaker (iCE40UP5K)**: 8 SB_MAC16, 5,280 logic cells, 30 x 4 kbit
  block RAM.  The IRIS core with one MAC lane per layer and the sigmoid and
  Gaussian correction each on one multiplier (``serial_*``) needs 7 DSPs.
  The UP5K's 4 x 256 kbit SPRAM is not initialised by the bitstream, so
  MNIST's 1.6 Mbit of weights cannot live on this part.
* **ULX3S-85F (LFE5U-85F)**: 156 MULT18X18D, 208 DP16KD.  The MNIST core
  keeps a pipelined sigmoid (784 outputs an image), runs the Gaussian
  correction (10 draws an image) on one multiplier, and spends the rest of
  the multipliers on lanes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from amaranth.hdl import (
    Cat, ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module, ResetSignal, Shape,
    Signal,
)
from amaranth.lib import io

from .frontend import FrontendPlan, UartFrontend
from .cost import BLOCK_RAMS
from .mult import MULT_WIDTHS

__all__ = ["Board", "BOARDS", "board", "PllConfig", "ice40_pll", "ecp5_pll", "BoardTop"]


@dataclass(frozen=True)
class Board:
    """One supported board.

    ``multipliers`` and ``block_ram_bits`` are the device's (checked against
    the estimate before the toolchain runs); ``lanes`` and ``options`` are
    the core knobs that fit it (:func:`hw.plan.core_plan`); ``clock_mhz`` the
    ``sync`` clock the PLL makes (a multiple of 3 MHz: the UART's 3 Mbaud
    needs a whole number of clocks per bit).
    """

    name: str
    platform: str                # amaranth_boards module:class
    family: str                  # "ice40" | "ecp5"
    device: str
    preset: str
    lanes: int | tuple[int, ...]
    options: dict
    clock_mhz: float
    multipliers: int
    block_ram_bits: int
    usb_serial: str
    synth_opts: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def mult_width(self) -> int:
        return MULT_WIDTHS[self.family]

    def core_options(self) -> dict:
        return {"mult_width": self.mult_width, "block_ram": BLOCK_RAMS[self.family],
                **self.options}

    def pll(self, in_hz: float, out_hz: float) -> PllConfig:
        """The PLL settings that make exactly ``out_hz`` from the board's ``in_hz`` (the UART
        divisor and the INFO reply are computed from the clock); a ``ValueError`` otherwise."""
        config = (ice40_pll if self.family == "ice40" else ecp5_pll)(in_hz, out_hz)
        if abs(config.out_hz - out_hz) > 1:
            raise ValueError(f"the {self.device} PLL makes {config.out_hz / 1e6:g} MHz, not "
                             f"{out_hz / 1e6:g} MHz, from the board's {in_hz / 1e6:g} MHz: "
                             "choose another clock")
        return config

    def make_platform(self):
        import importlib
        module, cls = self.platform.split(":")
        platform_cls = getattr(importlib.import_module(module), cls)
        if self.family == "ecp5":
            platform_cls = _build_only(platform_cls)
        return platform_cls()


def _build_only(platform_cls):
    """The ULX3S platform lists openFPGALoader among its required tools even to build; a
    bitstream needs only Yosys, nextpnr and ecppack (programming is the user's step)."""
    from amaranth.vendor import LatticeECP5Platform

    class BuildOnly(platform_cls):
        @property
        def required_tools(self):
            return LatticeECP5Platform.required_tools.fget(self)

    BuildOnly.__name__ = platform_cls.__name__
    return BuildOnly


# Why these configurations (figures from `make bitstream`, README "Boards"):
# - iCEBreaker, IRIS: one lane per layer and the serial sigmoid and sampler (one
#   multiplier block each) fit the UP5K's 8 SB_MAC16 (7 used); 45 MHz is 15 clocks
#   per 3 Mbaud bit and sits below the measured 46.0 MHz Fmax.  At 84 % of the
#   logic cells the placer needs Yosys to keep clock enables of fewer than four
#   flip-flops in logic (-dffe_min_ce_use 4): without it no legal placement.
# - ULX3S-85F, MNIST: 16 lanes on the wide layers: 65 of the 156 multipliers (the
#   units' included) and 142 of the 208 DP16KD; the core then takes a new image
#   every 6,272 clocks, ~12,000 images/s at 75 MHz, 63 times what the 3 Mbaud link
#   carries (190/s), so more lanes would buy nothing on this link and cost timing
#   (32 and 64 lanes congest the router).  75 MHz (25 MHz x 3) is below the
#   measured 84 MHz Fmax, whose critical path is an operand register through a
#   MULT18X18D.
BOARDS: dict[str, Board] = {board.name: board for board in (
    Board(name="icebreaker", platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
          family="ice40", device="iCE40UP5K", preset="iris", lanes=1,
          options={"serial_sigmoid": True, "serial_sampler": True}, clock_mhz=45.0,
          multipliers=8, block_ram_bits=30 * 4096, usb_serial="FTDI FT2232H (channel B)",
          synth_opts="-dsp -dffe_min_ce_use 4",
          notes=("UP5K SPRAM (4 x 256 kbit) is not initialised by the bitstream: weights live "
                 "in the 30 block RAMs (120 kbit)",)),
    Board(name="ulx3s-85f", platform="amaranth_boards.ulx3s:ULX3S_85F_Platform",
          family="ecp5", device="LFE5U-85F", preset="mnist", lanes=(16, 12, 8, 16),
          options={"serial_sampler": True}, clock_mhz=75.0,
          multipliers=156, block_ram_bits=208 * 18432, usb_serial="FTDI FT231X"),
)}


def board(name: str) -> Board:
    """The board called ``name``; a ``ValueError`` naming the known boards otherwise."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None


# --------------------------------------------------------------------------
# PLLs


@dataclass(frozen=True)
class PllConfig:
    """Divider settings of a PLL and the frequency they make (``out_hz``)."""

    in_hz: float
    out_hz: float
    params: dict


def ice40_pll(in_hz: float, out_hz: float) -> PllConfig:
    """SB_PLL40 settings (SIMPLE feedback) for the frequency nearest ``out_hz``:
    F_PFD = in/(DIVR+1) in [10, 133] MHz, F_VCO = F_PFD*(DIVF+1) in [533, 1066] MHz,
    out = F_VCO / 2**DIVQ (iCE40 sysCLOCK PLL guide, as ``icepll`` searches)."""
    best = None
    for divr in range(16):
        pfd = in_hz / (divr + 1)
        if not 10e6 <= pfd <= 133e6:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533e6 <= vco <= 1066e6:
                continue
            for divq in range(1, 7):
                out = vco / 2 ** divq
                if best is None or abs(out - out_hz) < abs(best[0] - out_hz):
                    best = (out, divr, divf, divq, pfd)
    if best is None:
        raise ValueError(f"no iCE40 PLL setting makes {out_hz / 1e6:g} MHz from "
                         f"{in_hz / 1e6:g} MHz")
    out, divr, divf, divq, pfd = best
    filter_range = next(k for k, limit in enumerate((17e6, 26e6, 44e6, 66e6, 101e6, math.inf), 1)
                        if pfd < limit)
    return PllConfig(in_hz, out, {"DIVR": divr, "DIVF": divf, "DIVQ": divq,
                                  "FILTER_RANGE": filter_range})


def ecp5_pll(in_hz: float, out_hz: float) -> PllConfig:
    """EHXPLLL settings (feedback from CLKOP) for the frequency nearest ``out_hz``:
    PFD = in/CLKI_DIV in [3.125, 400] MHz, VCO = PFD*CLKFB_DIV*CLKOP_DIV in
    [400, 800] MHz, out = VCO/CLKOP_DIV, the VCO as near 600 MHz as the dividers allow
    (``ecppll`` finds the same settings)."""
    best = None
    for clki in range(1, 129):
        pfd = in_hz / clki
        if not 3.125e6 <= pfd <= 400e6:
            continue
        for clkfb in range(1, 81):
            for clkop in range(1, 129):
                vco = pfd * clkfb * clkop
                if not 400e6 <= vco <= 800e6:
                    continue
                out = vco / clkop
                # nearest frequency first, then the VCO nearest the middle of its range
                key = (abs(out - out_hz), abs(vco - 600e6))
                if best is None or key < best[0]:
                    best = (key, out, clki, clkfb, clkop)
    if best is None:
        raise ValueError(f"no ECP5 PLL setting makes {out_hz / 1e6:g} MHz from "
                         f"{in_hz / 1e6:g} MHz")
    _, out, clki, clkfb, clkop = best
    return PllConfig(in_hz, out, {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop,
                                  "CLKOP_CPHASE": clkop - 1})


# --------------------------------------------------------------------------
# The top


#: How long the reset is held after the PLL locks: iCE40 block RAMs read zeros for ~3 us
#: after configuration (Amaranth's own iCE40 power-on reset waits 15 us too).
POWER_ON_RESET_S = 15e-6


class BoardTop(Elaboratable):
    """The design on the board: clock, reset, UART pins, :class:`UartFrontend`.

    ``board`` says how to make the clock (the PLL settings are computed for
    ``plan.clk_hz``, which must be what the PLL can make exactly: the UART
    divisor and the INFO reply are computed from it).
    """

    def __init__(self, board: Board, plan: FrontendPlan):
        self.board = board
        self.plan = plan

    @property
    def reset_hold(self) -> int:
        """Clocks the reset is held after the PLL locks."""
        return math.ceil(POWER_ON_RESET_S * self.plan.clk_hz)

    @property
    def register_bits(self) -> int:
        """The top's own flip-flops: the lock synchronizer, the hold timer, ``ready``."""
        return 2 + Shape.cast(range(self.reset_hold + 1)).width + 1

    def elaborate(self, platform):
        m = Module()
        clk_res = platform.lookup(platform.default_clk)
        in_hz = clk_res.clock.frequency
        config = self.board.pll(in_hz, self.plan.clk_hz)
        clk_port = platform.request(platform.default_clk, dir="-")
        pll_clk, locked = Signal(), Signal()
        if self.board.family == "ice40":
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                **{f"p_{k}": v for k, v in config.params.items()},
                i_PACKAGEPIN=clk_port.io, i_RESETB=Const(1), i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=pll_clk, o_LOCK=locked)
        else:
            m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_port)
            p = config.params
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{in_hz / 1e6:g}", a_FREQUENCY_PIN_CLKOP=f"{config.out_hz / 1e6:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_DIV=p["CLKOP_DIV"],
                p_CLKOP_CPHASE=p["CLKOP_CPHASE"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
                p_CLKFB_DIV=p["CLKFB_DIV"],
                i_CLKI=clk_buf.i, i_CLKFB=pll_clk, i_RST=Const(0), i_STDBY=Const(0),
                i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1),
                i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0),
                i_ENCLKOP=Const(0), o_CLKOP=pll_clk, o_LOCK=locked)

        # sync: the PLL's clock, in reset until it has locked for POWER_ON_RESET_S
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(pll_clk)
        platform.add_clock_constraint(pll_clk, config.out_hz)
        hold = self.reset_hold
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.d.comb += ClockSignal("por").eq(pll_clk)
        locked_sync = Signal(2)   # LOCK is asynchronous to the clock it makes: two flops
        m.d.por += locked_sync.eq(Cat(locked, locked_sync[0]))
        timer = Signal(range(hold + 1))
        ready = Signal()
        with m.If(~locked_sync[1]):
            m.d.por += [timer.eq(0), ready.eq(0)]
        with m.Elif(timer == hold):
            m.d.por += ready.eq(1)
        with m.Else():
            m.d.por += timer.eq(timer + 1)
        m.d.comb += ResetSignal("sync").eq(~ready)

        m.submodules.frontend = frontend = UartFrontend(self.plan)
        uart = platform.request("uart", 0)
        m.d.comb += [frontend.rx.eq(uart.rx.i), uart.tx.o.eq(frontend.tx)]
        led = platform.request("led", 0)
        m.d.comb += led.o.eq(ready)   # lit: clock locked, design out of reset
        return m
