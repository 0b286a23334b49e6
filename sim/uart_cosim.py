"""The driving side of the UART frontend's co-simulation (``tests/test_uart.py``,
``scripts/host.py --sim``).

:func:`uart_design` makes the Verilog of :class:`hw.frontend.UartFrontend`
around a core (cached on disk like the core's); :func:`run_session` runs one
scenario of ``sim/cocotb_uart.py`` on it -- the host client's own code talking to
the simulated pins -- and returns the results and the board's outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hw.protocol import DEFAULT_BAUD, DEFAULT_SLOTS, DEFAULT_TIMEOUT_US
from model.artifact import artifact_digest
from sim import exchange
from sim.designs import cached_design
from sim.runner import Design, Simulation

__all__ = ["uart_design", "run_session"]


def uart_design(artifact, lanes, *, clk_hz: int, baud: int = DEFAULT_BAUD,
                timeout_us: int = DEFAULT_TIMEOUT_US, slots: int = DEFAULT_SLOTS,
                build_root: Path | None = None, **options) -> Design:
    """The frontend's design around the core of ``core_plan(artifact, lanes, **options)``;
    ``meta`` carries what the testbench needs (divisor, clock, timeout)."""
    def make():
        from hw.frontend import UartFrontend, frontend_plan
        from hw.plan import core_plan
        from sim.designs import design_from_component
        frontend = UartFrontend(frontend_plan(core_plan(artifact, lanes, **options),
                                              clk_hz=clk_hz, baud=baud, timeout_us=timeout_us,
                                              slots=slots))
        return design_from_component(frontend, "fxvae_uart", block="uart_frontend",
                                     lanes=lanes, divisor=frontend.divisor, clk_hz=clk_hz,
                                     timeout_s=timeout_us * 1e-6)
    key = {"toplevel": "fxvae_uart", "artifact": artifact_digest(artifact), "lanes": lanes,
           "clk_hz": clk_hz, "baud": baud, "timeout_us": timeout_us, "slots": slots,
           "options": options}
    return cached_design(key, make, build_root=build_root)


def run_session(design: Design, sim: str, artifact_dir, x: np.ndarray, *, scenario: str,
                workdir: Path, modes=None, images: int | None = None,
                reset_check: bool = False, timeout_s: float = 1e-3,
                build_root: Path | None = None, quiet: bool = True):
    """Run ``scenario`` (``images`` or ``errors``, see ``sim/cocotb_uart.py``); returns
    ``(results, outputs)``, ``outputs`` the board's words per mode (``images``)."""
    workdir = Path(workdir).resolve()   # the simulator runs in its own folder
    workdir.mkdir(parents=True, exist_ok=True)
    vectors = exchange.save_vectors(workdir / "x.npz", x=x)
    rtl_out = workdir / "board.npz"
    config = {"artifact": str(Path(artifact_dir).resolve()), "vectors": str(vectors), "scenario": scenario,
              "modes": list(modes or []), "images": images, "reset_check": reset_check,
              "timeout_s": timeout_s, "rtl_out": str(rtl_out)}
    results = Simulation(design, sim, build_root=build_root).run(
        "sim.cocotb_uart", "host_session", config, workdir=workdir, quiet=quiet)
    outputs = exchange.load_vectors(rtl_out) if rtl_out.exists() else {}
    return results, outputs
