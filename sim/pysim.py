"""Harnesses that drive Amaranth components in Amaranth's own simulator (``amaranth.sim``).

The hardware tests and ``fxvae bench`` use these; the cocotb harnesses
that drive the generated *Verilog* are ``sim/cocotb_*.py``.

* :func:`stream_put` / :func:`stream_get`: a source and a sink testbench
  for one stream, with random valid gaps and ready stalls.
* :func:`run_stream`: one stream block (``i`` -> ``o``) between them;
  returns every transferred payload in order.
* :func:`run_core`: a :class:`hw.core.VAECore` through a list of jobs, with
  the clock edge of every command and last word (cycle counts).
* :func:`golden_jobs` / :func:`job_errors`: what the golden model says those
  jobs must produce, and how the core's words differ from it.

Sources follow the stream rules: once ``valid`` is raised it stays up with
the same payload until the transfer; random idle cycles come before a word,
never in the middle of an offer.  Sinks drop ``ready`` at random.  Every
random choice comes from a seed, so a run is reproducible.
"""

from __future__ import annotations

import random

import numpy as np
from amaranth.sim import Simulator

from hw.core import Mode, VAECore
from model.golden import GoldenModel, Sampler
from model.random_artifact import random_inputs

__all__ = ["stream_put", "stream_get", "run_stream", "run_core", "measure_mode", "random_jobs",
           "golden_jobs", "job_errors"]

async def stream_put(ctx, stream, payloads, rng, p_gap: float = 0.0) -> None:
    """Drive ``payloads`` into ``stream`` in order, idling before each one with
    probability ``p_gap`` per cycle (``rng``: anything with ``.random()``);
    ``valid`` never waits for ``ready``."""
    for payload in payloads:
        while p_gap and rng.random() < p_gap:
            ctx.set(stream.valid, 0)
            await ctx.tick()
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, count: int, rng, p_stall: float = 0.0, *,
                     times: list | None = None) -> list:
    """Collect ``count`` payloads from ``stream``; ``ready`` is low with probability
    ``p_stall`` each cycle; ``times`` (if given) receives the cycle of each transfer,
    counted from the call.  A hang (``100 * count + 1000`` cycles) fails."""
    timeout = 100 * count + 1000
    out = []
    cycles = 0
    while len(out) < count:
        ready = not (p_stall and rng.random() < p_stall)
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid and ready:
            out.append(payload)
            if times is not None:
                times.append(cycles)
        cycles += 1
        assert cycles <= timeout, f"stream_get: {len(out)}/{count} payloads after {cycles} cycles"
    ctx.set(stream.ready, 0)
    return out


def run_stream(dut, payloads, *, rng: random.Random, p_gap: float = 0.0,
               p_stall: float = 0.0, count: int | None = None) -> list:
    """Push ``payloads`` into ``dut.i`` and return the ``count`` (default
    ``len(payloads)``) payloads ``dut.o`` transfers (ints for plain shapes; for a
    struct payload put dicts, get ``data.Const``)."""
    out: list = []
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    put_rng = random.Random(rng.random())
    get_rng = random.Random(rng.random())

    async def producer(ctx):
        await stream_put(ctx, dut.i, payloads, put_rng, p_gap)

    async def consumer(ctx):
        out.extend(await stream_get(ctx, dut.o, len(payloads) if count is None else count,
                                    get_rng, p_stall))

    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return out


def run_core(core: VAECore, jobs, *, p_gap: float = 0.0, p_stall: float = 0.0,
             p_cmd_gap: float = 0.0, seed: int = 0):
    """Run ``jobs`` = ``[(mode, x or None), ...]`` in order.

    One testbench plays all three parties -- command source, input source and
    output sink -- one coroutine resume per clock (what limits the speed).
    Returns ``(outputs, timing)``: for each job the list of ``(data, last)``
    words it produced (up to and including the one with ``last``, or
    ``expected + 1`` words if ``last`` never comes), and ``(cmd_edge,
    last_edge)``, the clock edges (counted from reset) of the command's and
    the last word's transfers.  Commands are offered as soon as the previous
    one is taken, so jobs overlap in the core as far as it lets them.
    """
    art = core.artifact
    settle = core.plan.sampler.primed  # clocks after reset before the first command
    rng = np.random.default_rng(seed)
    expected = [2 * art.latent_dim if mode == "encode" else art.input_dim for mode, _ in jobs]
    in_words = [int(w) for mode, x in jobs if x is not None for w in np.asarray(x).reshape(-1)]
    hang_limit = settle + sum(expected) * 200 + 20 * sum(
        spec.n_in * spec.n_out for spec in art.layers) + 1000
    outputs: list[list[tuple[int, int]]] = []
    timing: list[int] = []
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
    sim.run()
    return outputs, list(zip(cmd_edges, timing))


def measure_mode(core: VAECore, mode: str, n: int = 4, *, seed: int = 0):
    """``n`` jobs of ``mode`` back to back, input dense, ``o`` always ready: returns
    ``(errors, latency, gaps)`` -- :func:`job_errors`, the first job's clocks from
    its ``cmd`` to its last word (the core idle before it), and the clocks between
    consecutive jobs' last words (II once the pipeline is full: the first gaps
    may be longer while the stages settle into step)."""
    jobs = random_jobs(core.artifact, [mode] * n, seed=seed)
    outputs, timing = run_core(core, jobs, seed=seed)
    lasts = [last for _, last in timing]
    return (job_errors(core.artifact, jobs, outputs), timing[0][1] - timing[0][0],
            [b - a for a, b in zip(lasts, lasts[1:])])


def random_jobs(artifact, modes, seed: int) -> list[tuple[str, np.ndarray | None]]:
    """One job per mode in ``modes``, each with its own :func:`random_inputs` image."""
    x = random_inputs(artifact, len(modes), seed=seed)
    return [(mode, None if mode == "generate" else x[k]) for k, mode in enumerate(modes)]


def golden_jobs(artifact, jobs) -> list[np.ndarray]:
    """The golden model's words for each job, one sampler across the jobs from its
    seeds (the core's order after reset)."""
    golden = GoldenModel(artifact)
    sampler = Sampler(artifact.sampler)
    return [golden.run(mode, n=1, sampler=sampler)[0] if mode == "generate"
            else golden.run(mode, np.asarray(x)[None, :], sampler=sampler)[0]
            for mode, x in jobs]


def job_errors(artifact, jobs, outputs) -> list[str]:
    """How :func:`run_core`'s ``outputs`` differ from :func:`golden_jobs` (empty when
    every word and every ``last`` flag is exact)."""
    errors = []
    for k, ((mode, _), got, want) in enumerate(zip(jobs, outputs, golden_jobs(artifact, jobs))):
        data = np.array([d for d, _ in got])
        lasts = [last for _, last in got]
        if len(got) != len(want):
            errors.append(f"job {k} ({mode}): {len(got)} words, want {len(want)}")
        elif lasts != [0] * (len(want) - 1) + [1]:
            errors.append(f"job {k} ({mode}): last flags {lasts}")
        elif np.any(data != want):
            errors.append(f"job {k} ({mode}): {int(np.sum(data != want))} mismatches\n"
                          f"{data.tolist()}\n{list(want)}")
    if len(outputs) != len(jobs):
        errors.append(f"{len(outputs)} jobs finished, want {len(jobs)}")
    return errors
