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

from model.fixed import MODES

from .dense import PIPELINE_DEPTH, DensePlan
from .plan import CorePlan
from .streamutil import RegisterSlice

__all__ = ["Consumer", "dense_timing", "LayerEstimate", "CoreEstimate", "estimate"]


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

    ``in_times[i]``: the clock input word ``i`` is offered (and, in pass 0,
    taken).  ``consumer`` says when ``o``'s words are taken (default: at
    once).  Pass ``p`` becomes ready to capture at ``r_p`` (``r_0 = last
    input + PIPELINE_DEPTH``, ``r_p = c_{p-1} + n_in``: a capture that waits
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
        ready = times[-1] + PIPELINE_DEPTH if p == 0 else capture + n_in
        capture = max(ready, free)
        count = lanes if p < passes - 1 else plan.last_count
        offered = capture + 1
        for _ in range(count):
            taken = consumer.take(offered)
            out.append(taken)
            offered = taken + 1
        free = out[-1] + 1
    return out


@dataclass
class LayerEstimate:
    name: str
    n_in: int
    n_out: int
    lanes: int
    passes: int
    macs: int
    first_in: int          # cycle of the first input word (relative to job start)
    last_out: int          # cycle of the last output word
    cycles: int            # last_out - first_in + 1
    ideal_cycles: float    # macs / lanes
    multipliers: int       # multiplier blocks
    weight_rom_bits: int
    register_bits: int


@dataclass
class CoreEstimate:
    lanes: list[int]
    mult_width: int
    block_ram: str | None  # the block RAM the weight ROMs are cut for (None: whole words)
    serial_sigmoid: bool
    serial_sampler: bool
    layers: list[LayerEstimate]
    cycles: dict           # mode -> cycles from cmd accept to the next cmd, one image
    macs_per_image: dict   # mode -> MACs
    ideal_cycles: dict     # mode -> sum over its layers of macs / lanes
    multipliers: int       # multiplier blocks (DSPs)
    multiplier_ports: dict  # "AxB" port widths -> count
    memory_bits: dict      # "block" (synchronous read: block-RAM material), "logic" (async read)
    memories: list         # every memory: name, depth, width, sync_read, writable
    register_bits: int
    sampler_primed: int    # clocks after reset until the sampler serves every draw at once
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _chain(plans, times, records, last_consumer: Consumer | None = None):
    for k, plan in enumerate(plans):
        consumer = last_consumer if k == len(plans) - 1 else None
        out = dense_timing(plan, times, consumer)
        records[plan.spec.name] = (times[0], out[-1])
        times = out
    return times


def estimate(plan: CorePlan) -> CoreEstimate:
    """Cycles, multipliers, memory and register bits of ``VAECore`` built from ``plan``.

    ``cycles[mode]`` is the job period for one image: from the clock the
    ``cmd`` is taken (cycle 0) to the clock the next ``cmd`` can be taken
    (one after the last output), with the input offered one word per clock
    from cycle 1 and ``o`` always ready.  ``ideal_cycles[mode]`` is the
    physical limit ``sum(MACs_layer / lanes_layer)`` over the layers the mode
    uses (layers run one after another within an image).
    """
    art = plan.artifact
    L = art.latent_dim
    cycles, macs, ideal = {}, {}, {}
    spans: dict[str, tuple[int, int]] = {}
    for mode in MODES:
        records: dict[str, tuple[int, int]] = {}
        used = []
        if mode == "generate":
            z_in = [1 + L + d + plan.latent_latency for d in range(L)]
        else:
            head = _chain(plan.encoder, [1 + j for j in range(art.input_dim)], records)
            used += list(plan.encoder)
            last = head[-1] + RegisterSlice.latency
            z_in = [t + plan.latent_latency for t in head[L:]]
        if mode != "encode":
            sigmoid_in = Consumer(plan.sigmoid.ii)
            logits = _chain(plan.decoder, z_in, records, sigmoid_in)
            used += list(plan.decoder)
            last = logits[-1] + plan.sigmoid.latency + RegisterSlice.latency
        cycles[mode] = last + 1
        macs[mode] = sum(p.spec.n_in * p.spec.n_out for p in used)
        ideal[mode] = sum(p.spec.n_in * p.spec.n_out / p.lanes for p in used)
        for name, span in records.items():
            spans.setdefault(name, span)

    cost = plan.cost()
    layers = []
    for dp in plan.dense:
        spec = dp.spec
        first_in, last_out = spans[spec.name]
        layer_cost = dp.cost()
        layers.append(LayerEstimate(
            name=spec.name, n_in=spec.n_in, n_out=spec.n_out, lanes=dp.lanes, passes=dp.passes,
            macs=spec.n_in * spec.n_out, first_in=first_in, last_out=last_out,
            cycles=last_out - first_in + 1, ideal_cycles=spec.n_in * spec.n_out / dp.lanes,
            multipliers=layer_cost.multiplier_blocks,
            weight_rom_bits=layer_cost.memories[0].bits, register_bits=layer_cost.registers))

    notes = [
        "cycles: cmd taken at cycle 0, input offered densely from cycle 1, o always ready; "
        "exact for the RTL (tests/test_estimate.py), assuming the sampler is primed "
        f"({plan.sampler.primed} clocks after reset)",
        f"multipliers: blocks of {plan.mult_width}x{plan.mult_width} signed; products wider "
        "than that are split into limbs (hw.mult), one block per limb pair",
        "memory_bits: block = memories with a synchronous read port (weights, sigma ROM, "
        "input buffers), logic = asynchronous ROMs (the per-lane bias ROMs are case "
        "statements in front of registers: counted as registers)",
        "register_bits: flip-flops outside memories, as the blocks' plans declare them",
    ]
    if plan.sampler.buffer:
        refill = L * plan.sampler.ii
        shortest = min(cycles[m] for m in ("recon_sample", "generate"))
        notes.append(f"serial sampler: refilling {L} draws takes {refill} clocks"
                     + ("" if refill <= shortest else
                        f", more than the {shortest}-clock job: back-to-back sampling jobs "
                        "run slower than `cycles`"))
    return CoreEstimate(
        lanes=plan.lanes, mult_width=plan.mult_width, block_ram=plan.block_ram,
        serial_sigmoid=plan.sigmoid.serial,
        serial_sampler=plan.sampler.buffer > 0, layers=layers, cycles=cycles,
        macs_per_image=macs, ideal_cycles=ideal, multipliers=cost.multiplier_blocks,
        multiplier_ports=dict(sorted(Counter(cost.multipliers).items())),
        memory_bits={"block": cost.memory_bits(sync_read=True),
                     "logic": cost.memory_bits(sync_read=False)},
        memories=[asdict(m) for m in cost.memories],
        register_bits=cost.registers, sampler_primed=plan.sampler.primed, notes=notes)
