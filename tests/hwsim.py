"""Small helpers for Amaranth-simulator stream testbenches (shared by the hw tests).

Typical use::

    dut = TaylorSigmoid(spec)
    rng = random.Random(1)
    got = run_stream(dut, payloads, rng=rng, p_gap=0.3, p_stall=0.3)
    assert got == expected                 # nothing lost, duplicated or reordered

or, for anything more involved, write the testbenches yourself::

    sim = Simulator(dut); sim.add_clock(1e-6)
    async def producer(ctx): await stream_put(ctx, dut.i, payloads, rng, p_gap=0.3)
    async def consumer(ctx): out.extend(await stream_get(ctx, dut.o, len(payloads), rng, 0.3))
    sim.add_testbench(producer); sim.add_testbench(consumer); sim.run()

Conventions: ``stream`` is an ``amaranth.lib.stream.Interface`` (e.g. a
component's ``i``/``o`` member); a transfer happens at a clock edge where
``valid & ready`` (both sampled at that edge).  Payloads are whatever
``ctx.set``/``ctx.get`` take for the payload's shape: ints for plain shapes,
a dict (``{"mu": 1, ...}``) to put a ``data.StructLayout`` payload, and a
``data.Const`` back from a struct (``c.mu``) -- use :func:`as_dict` to turn it
into a dict for comparisons.  Random gaps/stalls come from the caller's
``random.Random`` so every run is reproducible from its seed.
"""

from __future__ import annotations

import random

from amaranth.lib import data
from amaranth.sim import Simulator

from hw.simrun import run_simulation

__all__ = ["stream_put", "stream_get", "run_stream", "as_dict"]


async def stream_put(ctx, stream, payloads, rng: random.Random, p_gap: float = 0.0) -> None:
    """Drive ``payloads`` into ``stream`` in order.

    Before each payload, the producer idles (``valid`` low) for a random
    number of cycles: each cycle with probability ``p_gap``.  Once ``valid``
    is raised it stays high with the same payload until the transfer (the
    producer never waits for ``ready`` before raising ``valid``).
    """
    for payload in payloads:
        while p_gap and rng.random() < p_gap:
            ctx.set(stream.valid, 0)
            await ctx.tick()
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, count: int, rng: random.Random, p_stall: float = 0.0,
                     *, timeout: int | None = None) -> list:
    """Collect ``count`` payloads transferred on ``stream``, in order.

    Each cycle ``ready`` is low with probability ``p_stall``.  ``timeout``
    (cycles, default ``100 * count + 1000``) turns a hang into an
    ``AssertionError``.
    """
    if timeout is None:
        timeout = 100 * count + 1000
    out = []
    cycles = 0
    while len(out) < count:
        ready = not (p_stall and rng.random() < p_stall)
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid and ready:
            out.append(payload)
        cycles += 1
        assert cycles <= timeout, f"stream_get: {len(out)}/{count} payloads after {cycles} cycles"
    ctx.set(stream.ready, 0)
    return out


def run_stream(dut, payloads, *, rng: random.Random, p_gap: float = 0.0, p_stall: float = 0.0,
               i=None, o=None, count: int | None = None, vcd: str | None = None) -> list:
    """Simulate ``dut``: push ``payloads`` into ``i`` (default ``dut.i``), return what ``o``
    (default ``dut.o``) transfers -- ``count`` payloads, default ``len(payloads)``.

    ``i`` may be ``False`` for a source-only block (no input stream).  ``vcd``
    names a waveform file to write.
    """
    i = dut.i if i is None else i
    o = dut.o if o is None else o
    count = len(payloads) if count is None else count
    out: list = []
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    if i is not False:
        put_rng = random.Random(rng.random())

        async def producer(ctx):
            await stream_put(ctx, i, payloads, put_rng, p_gap)
        sim.add_testbench(producer, background=True)

    get_rng = random.Random(rng.random())

    async def consumer(ctx):
        out.extend(await stream_get(ctx, o, count, get_rng, p_stall))
    sim.add_testbench(consumer)
    run_simulation(sim, vcd)
    return out


def as_dict(value) -> dict:
    """A ``data.Const`` of a struct layout (what ``ctx.get`` returns) as a plain dict."""
    if isinstance(value, data.Const):
        return {name: as_dict(value[name]) for name, _ in value.shape()}
    return value
