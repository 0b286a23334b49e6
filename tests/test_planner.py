"""hw.planner: lanes from a multiplier budget or a target rate; its plans' II in simulation."""

import argparse

import pytest

from hw.core import VAECore
from hw.estimate import estimate
from hw.plan import core_plan
from hw.planner import (MAX_SIMD, PlanError, add_plan_arguments, layer_options, plan_for_budget,
                        plan_for_rate, plan_from_args)
from model.random_artifact import random_artifact
from sim.pysim import measure_mode


def test_budget_plans_fit_and_get_faster():
    art = random_artifact("mnist", seed=0)
    iis = []
    for budget in (40, 80, 156):
        plan = plan_for_budget(art, budget)
        est = estimate(plan)
        assert est.multipliers <= budget
        ii = max(est.ii.values())
        # balanced: within 5 % of the slowest layer's MACs / lanes
        assert ii <= 1.05 * max(est.ideal_ii.values())
        iis.append(ii)
        # every layer takes the fewest blocks that keep it within the II
        for index, layer in enumerate(plan.dense):
            options = layer_options(plan, index)
            blocks = layer.cost().multiplier_blocks
            assert all(o.period > ii for o in options if o.multipliers < blocks)
            assert layer.simd <= MAX_SIMD
    assert iis == sorted(iis, reverse=True) and iis[0] > iis[-1]
    # the ECP5-85F's 156 blocks reach 60,000 images/s at 100 MHz
    assert 100e6 / iis[-1] >= 60_000


def test_rate_plan_is_the_cheapest_that_meets_it():
    art = random_artifact("mnist", seed=0)
    plan = plan_for_rate(art, 40_000, 100.0)
    est = estimate(plan)
    assert max(est.ii.values()) <= 100e6 / 40_000
    assert plan_for_budget(art, est.multipliers).lanes == plan.lanes or \
        max(estimate(plan_for_budget(art, est.multipliers)).ii.values()) <= 2500


def test_planned_core_ii_in_simulation():
    """A planned IRIS core: the simulated II and latency are the estimate's."""
    art = random_artifact("iris", seed=2)
    plan = plan_for_budget(art, 40)
    core = VAECore(plan)
    est = core.estimate()
    errors, latency, gaps = measure_mode(core, "recon_sample", 7, seed=3)
    assert not errors
    assert latency == est.latency["recon_sample"]
    # two layers share the slowest period here: the pipeline settles after two images
    assert gaps[-3:] == [est.ii["recon_sample"]] * 3


def test_plan_errors_name_the_problem():
    art = random_artifact("mnist", seed=0)
    with pytest.raises(PlanError, match="fewer than the 30 of the smallest core"):
        plan_for_budget(art, 10)
    with pytest.raises(PlanError, match="the input stage alone takes 784"):
        plan_for_rate(art, 1e6, 100.0)
    with pytest.raises(PlanError, match="must be positive"):
        plan_for_rate(art, 0, 100.0)
    with pytest.raises(TypeError, match="multipliers must be an int"):
        plan_for_budget(art, 15.5)


def test_command_line_arguments():
    parser = argparse.ArgumentParser()
    add_plan_arguments(parser)
    art = random_artifact("iris", seed=0)
    assert plan_from_args(parser.parse_args([]), art, 3).lanes == core_plan(art, 3).lanes
    assert plan_from_args(parser.parse_args(["--lanes", "1,2,3,4"]), art, 3).lanes == [1, 2, 3, 4]
    planned = plan_from_args(parser.parse_args(["--multipliers", "40"]), art, 3)
    assert planned.lanes == plan_for_budget(art, 40).lanes
    rate = plan_from_args(parser.parse_args(["--target-ips", "2e6", "--freq", "100"]), art, 3)
    assert rate.lanes == plan_for_rate(art, 2e6, 100.0).lanes
    with pytest.raises(SystemExit):   # one way to choose the lanes at a time
        parser.parse_args(["--lanes", "2", "--multipliers", "40"])
