"""The lane planner: every layer's parallelism from a multiplier budget or a target rate.

FINN sizes each layer's folding from a target rate; hls4ml leaves the reuse
factor to the user.  Here the core's initiation interval (II) is its slowest
stage's period (:func:`hw.estimate.stage_periods`), so a plan is balanced when
no layer is faster than it needs to be:

* ``plan_for_rate``: the II a rate allows at a clock (``MHz / rate``), then
  for every layer the fewest multiplier blocks whose period fits it;
* ``plan_for_budget``: the smallest II whose per-layer minimum fits the
  budget (the budget counts every multiplier block of the core, the sigmoid's,
  the sampler's and the reparameterization's included).

Candidates per layer are pairs of lanes (outputs at a time) and SIMD
(inputs at a time per lane) where the number of passes or of groups per
pass drops (``ceil(n_out / passes)``, ``ceil(n_in / groups)``): values in
between only idle.  Of those, a layer keeps the cheapest for each period.
Periods and costs come from the blocks' own plans (:func:`dense_period`,
``DensePlan.cost``), never restated here.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from model.artifact import Artifact
from model.fixed import MODES

from .dense import dense_plan
from .estimate import dense_period, estimate, stage_periods
from .plan import CorePlan, core_plan, parse_lanes, parse_simd

__all__ = ["MAX_SIMD", "LayerOption", "layer_options", "plan_for_budget", "plan_for_rate", "PlanError",
           "add_plan_arguments", "plan_from_args"]


class PlanError(ValueError):
    """A budget or a rate the core cannot meet; the message says which stage or layer."""


@dataclass(frozen=True)
class LayerOption:
    lanes: int
    simd: int
    period: int        # clocks per vector back to back (hw.estimate.dense_period)
    multipliers: int   # multiplier blocks


def _splits(n: int) -> list[int]:
    """The parallelisms over ``n`` items worth having: where ``ceil(n / p)`` drops."""
    return sorted({-(-n // steps) for steps in range(1, n + 1)})


#: The widest SIMD the planner uses: a lane sums its SIMD products in one pipeline
#: stage and the layer keeps one input buffer memory per SIMD word, so wider SIMD
#: costs adder depth (timing) and block RAMs that the multiplier count does not show.
MAX_SIMD = 8


def layer_options(plan: CorePlan, index: int, max_simd: int = MAX_SIMD) -> list[LayerOption]:
    """The useful (lanes, SIMD <= ``max_simd``) pairs of layer ``index`` of ``plan``: for
    each period the cheapest, fewest multipliers first (and so slowest first)."""
    base = plan.dense[index]
    spec = base.spec
    consumer_ii = plan.sigmoid.ii if index == len(plan.dense) - 1 else 1
    # a layer's blocks are its MAC units times the blocks of one product (its limbs)
    blocks_per_mac = base.cost().multiplier_blocks // base.multipliers
    candidates = []
    for width in (w for w in _splits(spec.n_in) if w <= max_simd):
        for lanes in _splits(spec.n_out):
            dp = dense_plan(spec, lanes, base.mult_width, base.block_ram,
                            plan.artifact.biases[spec.name], width)
            candidates.append(LayerOption(lanes, width, dense_period(dp, consumer_ii),
                                          blocks_per_mac * dp.multipliers))
    # fewest blocks first; among equals the fastest, then the fewest SIMD words (narrower
    # buffers and adders); keep an option only if it is faster than every cheaper one
    candidates.sort(key=lambda o: (o.multipliers, o.period, o.simd))
    options: list[LayerOption] = []
    for option in candidates:
        if not options or option.period < options[-1].period:
            options.append(option)
    return options


def _fixed(plan: CorePlan) -> tuple[int, dict[str, int]]:
    """Multiplier blocks outside the layers, and the period of every stage that is not a
    layer (ports, latent unit, sampler, sigmoid), the slowest over the modes."""
    layer_blocks = sum(dp.cost().multiplier_blocks for dp in plan.dense)
    names = {dp.spec.name for dp in plan.dense}
    periods: dict[str, int] = {}
    for mode in MODES:
        for stage, period in stage_periods(plan, mode).items():
            if stage not in names:
                periods[stage] = max(period, periods.get(stage, 0))
    return plan.cost().multiplier_blocks - layer_blocks, periods


def _cheapest(options: list[LayerOption], period: int) -> LayerOption | None:
    return next((o for o in options if o.period <= period), None)


def _plan_with(artifact: Artifact, picks: list[LayerOption], options: dict) -> CorePlan:
    return core_plan(artifact, [pick.lanes for pick in picks],
                     simd=[pick.simd for pick in picks], **options)


def plan_for_rate(artifact: Artifact, images_per_s: float, mhz: float, **options) -> CorePlan:
    """The plan with the fewest multiplier blocks whose II gives ``images_per_s`` at
    ``mhz`` (every mode); ``options`` are :func:`hw.plan.core_plan`'s other knobs."""
    if images_per_s <= 0 or mhz <= 0:
        raise PlanError(f"the rate and the clock must be positive, not {images_per_s} images/s "
                        f"at {mhz} MHz")
    target = math.floor(mhz * 1e6 / images_per_s)
    start = core_plan(artifact, 1, **options)
    _, fixed = _fixed(start)
    for stage, period in fixed.items():
        if period > target:
            raise PlanError(f"{images_per_s:,.0f} images/s at {mhz:g} MHz needs an II of "
                            f"{target} clocks, but the {stage} stage alone takes {period}")
    picks = []
    for index, dp in enumerate(start.dense):
        choices = layer_options(start, index)
        pick = _cheapest(choices, target)
        if pick is None:
            fastest = choices[-1]
            raise PlanError(f"{images_per_s:,.0f} images/s at {mhz:g} MHz needs an II of "
                            f"{target} clocks, but layer {dp.spec.name} takes {fastest.period} "
                            f"even with {fastest.lanes} lanes x {fastest.simd} SIMD")
        picks.append(pick)
    return _plan_with(artifact, picks, options)


def plan_for_budget(artifact: Artifact, multipliers: int, **options) -> CorePlan:
    """The plan with the smallest II (every mode) whose multiplier blocks, the layers' and
    the fixed units', fit ``multipliers``; ``options`` as for :func:`plan_for_rate`."""
    if isinstance(multipliers, bool) or not isinstance(multipliers, int):
        raise TypeError(f"multipliers must be an int, not {multipliers!r}")
    start = core_plan(artifact, 1, **options)
    fixed_blocks, fixed = _fixed(start)
    per_layer = [layer_options(start, index) for index in range(len(start.dense))]
    floor = max(fixed.values())
    periods = sorted({o.period for options_ in per_layer for o in options_ if o.period >= floor}
                     | {floor})

    def blocks(period: int) -> int | None:
        picks = [_cheapest(o, period) for o in per_layer]
        return None if None in picks else fixed_blocks + sum(p.multipliers for p in picks)

    feasible = [p for p in periods if blocks(p) is not None and blocks(p) <= multipliers]
    if not feasible:
        least = fixed_blocks + sum(o[0].multipliers for o in per_layer)
        raise PlanError(f"{multipliers} multiplier blocks are fewer than the {least} of the "
                        f"smallest core (one lane per layer, {fixed_blocks} outside the layers)")
    best = min(feasible)
    return _plan_with(artifact, [_cheapest(o, best) for o in per_layer], options)


def add_plan_arguments(parser: argparse.ArgumentParser, *, freq: bool = True) -> None:
    """``--lanes`` (with ``--simd``), ``--multipliers`` and ``--target-ips`` (with
    ``--freq`` unless the command has its own clock option), one of them at most."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--lanes", type=parse_lanes, default=None,
                       help="MAC lanes (outputs at a time): one int, or one per layer, "
                            "comma-separated")
    parser.add_argument("--simd", type=parse_simd, default=None,
                        help="inputs per lane and clock, one int or one per layer (default 1; "
                             "the planner chooses its own)")
    group.add_argument("--multipliers", type=int, default=None, metavar="N",
                       help="plan the lanes for the smallest II within N multiplier blocks")
    group.add_argument("--target-ips", type=float, default=None, metavar="RATE",
                       help="plan the lanes for RATE images/s at --freq MHz with the fewest "
                            "multiplier blocks")
    if freq:
        parser.add_argument("--freq", type=float, default=100.0, metavar="MHZ",
                            help="clock for --target-ips (default: 100)")


def plan_from_args(args, artifact: Artifact, default_lanes, *, mhz: float | None = None,
                   **options) -> CorePlan:
    """The plan the command line asks for (``default_lanes`` when it names none);
    prints a planned one's lanes, multipliers and II.  ``mhz``: the clock for
    ``--target-ips`` (default ``--freq``)."""
    if args.simd is not None and (args.multipliers is not None or args.target_ips is not None):
        raise PlanError("--simd goes with --lanes; --multipliers and --target-ips plan both")
    if args.multipliers is not None:
        plan = plan_for_budget(artifact, args.multipliers, **options)
        why = f"{args.multipliers} multiplier blocks"
    elif args.target_ips is not None:
        mhz = args.freq if mhz is None else mhz
        plan = plan_for_rate(artifact, args.target_ips, mhz, **options)
        why = f"{args.target_ips:,.0f} images/s at {mhz:g} MHz"
    else:
        return core_plan(artifact, default_lanes if args.lanes is None else args.lanes,
                         simd=1 if args.simd is None else args.simd, **options)
    est = estimate(plan)
    ii = max(est.ii.values())
    print(f"lane plan for {why}: lanes {','.join(map(str, plan.lanes))} x SIMD "
          f"{','.join(map(str, plan.simd))}, "
          f"{est.multipliers} multiplier blocks, II {ii} clocks "
          f"({', '.join(f'{m} {v}' for m, v in est.ii.items())})", flush=True)
    return plan
