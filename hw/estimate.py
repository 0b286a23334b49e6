"""Analytic cycle and resource model of the generated hardware.

FINN-style: every block carries its own cost (:mod:`hw.cost`, computed from
the plan it elaborates from); this module adds them up and models the
cycles.  The cycle model is *exact* for the situation it describes (one image
into an idle core, the input offered one word per clock, ``o`` always ready,
the sampler primed): it follows every word through the pipeline timing
documented in :mod:`hw.dense` and the latencies and initiation intervals of
the latent unit and the sigmoid, so the simulated count must equal it;
``tests/test_estimate.py`` checks that.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from model.fixed import MODES, SAMPLING_MODES

from .dense import DensePlan
from .streamutil import RegisterSlice

if TYPE_CHECKING:   # hw.plan sizes its job queues with jobs_in_flight
    from .plan import CorePlan

__all__ = ["Consumer", "dense_timing", "dense_period", "stage_periods", "mode_latency",
           "jobs_in_flight", "LayerEstimate", "CoreEstimate", "estimate"]


class Consumer:
    """When a stream sink takes the words offered to it.

    ``ii`` = 1: always ready (a pipeline whose output is never stalled).
    ``ii`` > 1: a unit that takes a word only every ``ii`` clocks (a serial
    odd-polynomial unit: ``ready`` is low for ``ii - 1`` clocks after each
    transfer).
    """

    def __init__(self, ii: int = 1):
        self.ii = ii
        self._free = None

    def take(self, offered: int) -> int:
        """The clock a word offered from clock ``offered`` on is transferred."""
        at = offered if self._free is None else max(offered, self._free)
        self._free = at + self.ii
        return at


def dense_timing(plan: DensePlan, in_times, consumer: Consumer | None = None) -> list[int]:
    """Transfer clock of every output word of one vector into an idle :class:`hw.dense.Dense`.

    ``in_times[i]``: the clock input word ``i`` is offered (and taken).
    ``consumer`` says when ``o``'s words are taken (default: at once).  Pass
    ``p`` becomes ready to capture at ``r_p`` (``r_0 = last input +
    input_delay + pipeline_depth``, ``r_p = c_{p-1} + groups``, the issue
    clocks of a pass: ``n_in / simd`` rounded up; a capture that waits
    for the bank freezes the whole pipeline), is captured at ``c_p = max(r_p,
    bank free)``, its first word is offered at ``c_p + 1`` and each next word
    one clock after the previous transfer; the bank is free again one clock
    after its last transfer.
    """
    consumer = consumer or Consumer()
    spec, lanes, passes = plan.spec, plan.lanes, plan.passes
    n_in = spec.n_in
    if len(in_times) != n_in:
        raise ValueError(f"need {n_in} input times, not {len(in_times)}")
    times = list(in_times)
    for a, b in zip(times, times[1:]):
        if b <= a:
            raise ValueError("input times must increase")
    out = []
    free = -1
    capture = None
    for p in range(passes):
        ready = (times[-1] + plan.input_delay + plan.pipeline_depth if p == 0
                 else capture + plan.groups)
        capture = max(ready, free)
        count = lanes if p < passes - 1 else plan.last_count
        offered = capture + 1
        for _ in range(count):
            taken = consumer.take(offered)
            out.append(taken)
            offered = taken + 1
        free = out[-1] + 1
    return out


def dense_period(plan: DensePlan, consumer_ii: int = 1, vectors: int = 4) -> int:
    """Clocks per vector of a layer that always has its next input (issuing back to
    back), its words taken by a consumer that takes one every ``consumer_ii`` clocks.

    The captures follow :func:`dense_timing`'s rule across vectors (the next
    vector's pass 0 is ready ``groups`` clocks after the previous capture, like
    any pass); the period is that of the last of ``vectors`` vectors, by when
    the bank and the consumer repeat their pattern.  With a consumer that takes a
    word every clock that is ``sum over passes of max(groups, words + 1)``: a
    pass's ``groups`` issue clocks, or its bank's words and the clock it takes to
    free it, whichever is longer.
    """
    groups = plan.groups
    if consumer_ii == 1:
        return ((plan.passes - 1) * max(groups, plan.lanes + 1)
                + max(groups, plan.last_count + 1))
    consumer = Consumer(consumer_ii)
    captures = []
    capture, free = -groups, -1
    for _ in range(vectors):
        captures.append(None)
        for p in range(plan.passes):
            capture = max(capture + groups, free)
            captures[-1] = captures[-1] if captures[-1] is not None else capture
            offered = capture + 1
            for _ in range(plan.lanes if p < plan.passes - 1 else plan.last_count):
                offered = consumer.take(offered) + 1
            free = offered
    return captures[-1] - captures[-2]


@dataclass
class LayerEstimate:
    name: str
    n_in: int
    n_out: int
    lanes: int
    simd: int
    passes: int
    macs: int
    first_in: int          # cycle of the first input word (relative to the cmd, one job)
    last_out: int          # cycle of the last output word
    cycles: int            # last_out - first_in + 1
    period: int            # clocks per vector, back to back (dense_period)
    ideal_period: float    # macs / (lanes * simd)
    multipliers: int       # multiplier blocks
    weight_rom_bits: int
    register_bits: int


@dataclass
class CoreEstimate:
    lanes: list[int]
    simd: list[int]
    mult_width: int
    block_ram: str | None  # the block RAM the weight ROMs are cut for (None: whole words)
    serial_sigmoid: bool
    serial_sampler: bool
    layers: list[LayerEstimate]
    latency: dict          # mode -> clocks from the cmd transfer to the last o transfer
    ii: dict               # mode -> clocks between images, jobs of that mode back to back
    stages: dict           # mode -> {stage: clocks per image}; ii is their maximum
    macs_per_image: dict   # mode -> MACs
    ideal_ii: dict         # mode -> max over its layers of macs / (lanes * simd)
    multipliers: int       # multiplier blocks (DSPs)
    multiplier_ports: dict  # "AxB" port widths -> count
    memory_bits: dict      # "block" (synchronous read: block-RAM material), "logic" (async read)
    memories: list         # every memory: name, depth, width, sync_read, writable
    register_bits: int
    sampler_primed: int    # clocks after reset until the sampler serves every draw at once
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def images_per_second(self, mode: str, mhz: float) -> float:
        return mhz * 1e6 / self.ii[mode]


def _chain(plans, times, records, last_consumer: Consumer | None = None):
    for k, plan in enumerate(plans):
        consumer = last_consumer if k == len(plans) - 1 else None
        out = dense_timing(plan, times, consumer)
        records[plan.spec.name] = (times[0], out[-1])
        times = out
    return times


def stage_periods(plan: CorePlan, mode: str) -> dict[str, int]:
    """Clocks per image of every stage a ``mode`` job passes, each on its own: the
    input and output ports (a word per clock), the layers (:func:`dense_period`;
    the last decoder layer drained by the sigmoid), the latent unit (``2L`` words
    in), the sampler (``L`` draws) and the sigmoid."""
    art = plan.artifact
    L = art.latent_dim
    stages: dict[str, int] = {}
    if mode != "generate":
        stages["input"] = art.input_dim
        for dp in plan.encoder:
            stages[dp.spec.name] = dense_period(dp)
    if mode == "encode":
        stages["output"] = 2 * L
        return stages
    stages["latent"] = 2 * L
    if mode in SAMPLING_MODES:
        stages["sampler"] = L * plan.sampler.ii
    for dp in plan.decoder:
        stages[dp.spec.name] = dense_period(
            dp, plan.sigmoid.ii if dp is plan.decoder[-1] else 1)
    stages["sigmoid"] = art.input_dim * plan.sigmoid.ii
    stages["output"] = art.input_dim
    return stages


def mode_latency(plan: CorePlan, mode: str) -> tuple[int, dict[str, tuple[int, int]]]:
    """One ``mode`` job into an idle core (``cmd`` taken at cycle 0, the input offered
    one word per clock from cycle 1, ``o`` always ready): the cycle of its last output
    word, and per layer it uses the cycles of its first input and last output word."""
    art = plan.artifact
    L = art.latent_dim
    records: dict[str, tuple[int, int]] = {}
    if mode == "generate":
        z_in = [1 + L + d + plan.latent_latency for d in range(L)]
    else:
        head = _chain(plan.encoder, [1 + j for j in range(art.input_dim)], records)
        last = head[-1] + RegisterSlice.latency
        z_in = [t + plan.latent_latency for t in head[L:]]
    if mode != "encode":
        logits = _chain(plan.decoder, z_in, records, Consumer(plan.sigmoid.ii))
        last = logits[-1] + plan.sigmoid.latency + RegisterSlice.latency
    return last, records


def jobs_in_flight(plan: CorePlan) -> int:
    """Jobs the core must take ahead of its output to keep its slowest stage busy: a job
    spends about ``latency`` clocks in the core and one leaves every ``ii``, so
    ``latency / ii`` are in flight (Little's law), plus two for the first layer's
    second input slot and the clock a queue entry takes to free."""
    return max(-(-mode_latency(plan, mode)[0] // max(stage_periods(plan, mode).values()))
               for mode in MODES) + 2


def estimate(plan: CorePlan) -> CoreEstimate:
    """Cycles, multipliers, memory and register bits of ``VAECore`` built from ``plan``.

    ``latency[mode]``: one job into an idle core, the ``cmd`` taken at cycle 0,
    the input offered one word per clock from cycle 1 and ``o`` always ready:
    the cycle of the last output word.  ``ii[mode]``: jobs of that mode back to
    back, the clocks between consecutive jobs' last words once the pipeline is
    full -- the slowest stage's period (:func:`stage_periods`), since every
    stage works on its own image.  (Stages of nearly the same period take a few
    jobs to fall into step, and a serial sampler's buffer, full after reset,
    first lets sampling jobs through faster: the gaps reach ``ii`` after that.)  ``ideal_ii[mode]``: the physical limit, the
    largest ``MACs / (lanes * simd)`` of the mode's layers.
    """
    latency, ii, stages, macs, ideal = {}, {}, {}, {}, {}
    spans: dict[str, tuple[int, int]] = {}
    for mode in MODES:
        latency[mode], records = mode_latency(plan, mode)
        used = [dp for dp in plan.dense if dp.spec.name in records]
        stages[mode] = stage_periods(plan, mode)
        ii[mode] = max(stages[mode].values())
        macs[mode] = sum(p.spec.n_in * p.spec.n_out for p in used)
        ideal[mode] = max(p.spec.n_in * p.spec.n_out / p.multipliers for p in used)
        for name, span in records.items():
            spans.setdefault(name, span)

    cost = plan.cost()
    layers = []
    for dp in plan.dense:
        spec = dp.spec
        first_in, last_out = spans[spec.name]
        layer_cost = dp.cost()
        layers.append(LayerEstimate(
            name=spec.name, n_in=spec.n_in, n_out=spec.n_out, lanes=dp.lanes, simd=dp.simd,
            passes=dp.passes,
            macs=spec.n_in * spec.n_out, first_in=first_in, last_out=last_out,
            cycles=last_out - first_in + 1,
            period=max(periods.get(spec.name, 0) for periods in stages.values()),
            ideal_period=spec.n_in * spec.n_out / dp.multipliers,
            multipliers=layer_cost.multiplier_blocks,
            weight_rom_bits=layer_cost.memories[0].bits, register_bits=layer_cost.registers))

    notes = [
        "latency: cmd taken at cycle 0, input offered densely from cycle 1, o always ready; "
        "ii: jobs of one mode back to back; both exact for the RTL (tests/test_estimate.py), "
        f"assuming the sampler is primed ({plan.sampler.primed} clocks after reset)",
        f"multipliers: blocks of {plan.mult_width}x{plan.mult_width} signed; products wider "
        "than that are split into limbs (hw.mult), one block per limb pair",
        "memory_bits: block = memories with a synchronous read port (weights, sigma ROM, "
        "input buffers), logic = asynchronous ROMs (the per-lane bias ROMs are case "
        "statements in front of registers: counted as registers)",
        "register_bits: flip-flops outside memories, as the blocks' plans declare them",
    ]
    return CoreEstimate(
        lanes=plan.lanes, simd=plan.simd, mult_width=plan.mult_width, block_ram=plan.block_ram,
        serial_sigmoid=plan.sigmoid.serial,
        serial_sampler=plan.sampler.buffer > 0, layers=layers, latency=latency, ii=ii,
        stages=stages, macs_per_image=macs, ideal_ii=ideal, multipliers=cost.multiplier_blocks,
        multiplier_ports=dict(sorted(Counter(cost.multipliers).items())),
        memory_bits={"block": cost.memory_bits(sync_read=True),
                     "logic": cost.memory_bits(sync_read=False)},
        memories=[asdict(m) for m in cost.memories],
        register_bits=cost.registers, sampler_primed=plan.sampler.primed, notes=notes)
