"""Drive a :class:`hw.core.VAECore` in Amaranth's simulator (tests and the benchmark).

One testbench plays all three parties -- command source, input source and
output sink -- cycle by cycle (one coroutine resume per clock, which is what
limits pysim's speed here).  Sources follow the stream rules: once ``valid``
is raised it stays up with the same payload until the transfer; random idle
cycles (``p_gap``, ``p_cmd_gap``) come before a word, never in the middle of
an offer.  The sink drops ``ready`` with probability ``p_stall`` each cycle.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from .core import Mode, VAECore

__all__ = ["SETTLE", "run_core", "run_simulation"]

#: Clocks after reset before the first command (the sampler primes in ~10).
SETTLE = 24


def run_simulation(sim: Simulator, vcd=None) -> None:
    """Run ``sim`` to completion, writing a VCD waveform to ``vcd`` when given."""
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()


def run_core(core: VAECore, jobs, *, p_gap: float = 0.0, p_stall: float = 0.0,
             p_cmd_gap: float = 0.0, seed: int = 0, settle: int = SETTLE,
             hang_limit: int | None = None, vcd: str | None = None):
    """Run ``jobs`` = ``[(mode, x or None), ...]`` in order.

    Returns ``(outputs, timing)``: for each job the list of ``(data, last)``
    words it produced (up to and including the one with ``last``, or
    ``expected + 1`` words if ``last`` never comes), and ``(cmd_edge,
    last_edge)``, the clock edges (counted from reset) of the command's and
    the last word's transfers.  ``last_edge - cmd_edge + 1`` is the job's
    period in clocks (the next command is taken one clock after the last
    word at the earliest).
    """
    art = core.artifact
    rng = np.random.default_rng(seed)
    expected = [2 * art.latent_dim if mode == "encode" else art.input_dim for mode, _ in jobs]
    in_words = [int(w) for mode, x in jobs if x is not None for w in np.asarray(x).reshape(-1)]
    if hang_limit is None:
        hang_limit = settle + sum(expected) * 200 + 20 * sum(
            spec.n_in * spec.n_out for spec in art.layers) + 1000
    outputs: list[list[tuple[int, int]]] = []
    timing: list[tuple[int, int]] = []
    cmd_edges: list[int] = []

    async def testbench(ctx):
        await ctx.tick().repeat(settle)
        edge = settle
        cmd_k = in_k = 0
        cmd_hold = in_hold = False
        words: list[tuple[int, int]] = []
        while len(outputs) < len(jobs):
            if not cmd_hold and cmd_k < len(jobs) and not (p_cmd_gap and rng.random() < p_cmd_gap):
                ctx.set(core.cmd.payload, {"mode": Mode[jobs[cmd_k][0]]})
                ctx.set(core.cmd.valid, 1)
                cmd_hold = True
            if not in_hold and in_k < len(in_words) and not (p_gap and rng.random() < p_gap):
                ctx.set(core.i.payload, in_words[in_k])
                ctx.set(core.i.valid, 1)
                in_hold = True
            ready = not (p_stall and rng.random() < p_stall)
            ctx.set(core.o.ready, int(ready))
            _, _, cmd_ready, i_ready, o_valid, o_payload = await ctx.tick().sample(
                core.cmd.ready, core.i.ready, core.o.valid, core.o.payload)
            if cmd_hold and cmd_ready:
                cmd_edges.append(edge)
                cmd_k += 1
                cmd_hold = False
                ctx.set(core.cmd.valid, 0)
            if in_hold and i_ready:
                in_k += 1
                in_hold = False
                ctx.set(core.i.valid, 0)
            if o_valid and ready:
                last = int(o_payload.last)
                words.append((int(o_payload.data), last))
                if last or len(words) > expected[len(outputs)]:
                    outputs.append(words)
                    timing.append(edge)
                    words = []
            edge += 1
            if edge > hang_limit:
                raise AssertionError(f"core hung: {len(outputs)}/{len(jobs)} jobs done, "
                                     f"{len(words)} words of the next, after {edge} clocks")
        ctx.set(core.o.ready, 0)

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    run_simulation(sim, vcd)
    return outputs, list(zip(cmd_edges, timing))
