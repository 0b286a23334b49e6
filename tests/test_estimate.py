"""hw.estimate: cycle model == simulation on small shapes; resource counts == the generator's."""

import pytest

from hw.core import VAECore
from hw.estimate import estimate
from hw.plan import core_plan, normalize_lanes
from model.random_artifact import random_artifact
from sim.pysim import job_errors, random_jobs, run_core


@pytest.mark.parametrize("shape,lanes", [
    ((6, (5,), 2), 1),                     # every layer fully serial
    ((6, (9,), 3), [9, 2, 12, 4]),         # lanes > n_in (output-bound), lanes > n_out
    ((12, (7, 5), 2), [3, 2, 4, 1, 5, 6]),  # two hidden layers
])
def test_cycles_match_simulation(shape, lanes):
    art = random_artifact("iris", seed=1, shape=shape)
    core = VAECore(core_plan(art, lanes))
    jobs = random_jobs(art, ["recon_mu", "recon_sample", "generate", "encode"], seed=4)
    outputs, timing = run_core(core, jobs)
    assert not job_errors(art, jobs, outputs)
    got = {mode: c1 - c0 + 1 for (mode, _), (c0, c1) in zip(jobs, timing)}
    assert got == core.estimate().cycles


def test_resources_add_up_from_the_blocks():
    art = random_artifact("mnist", seed=0)
    lanes = [16, 4, 8, 32]
    plan = core_plan(art, lanes)
    est = estimate(plan)
    assert [layer.lanes for layer in est.layers] == lanes
    # one 16x8 multiplier block per lane (9x8 for the 9-bit input layer), then the sigmoid's
    # pipeline, the sampler's and the reparameterization's
    assert sum(layer.multipliers for layer in est.layers) == sum(lanes)
    assert est.multipliers == sum(lanes) + len(plan.sigmoid.cost().multipliers) \
        + len(plan.sampler.cost().multipliers) + 1
    assert est.multiplier_ports["9x8"] == 16
    weights = sum(p.passes * p.lanes * p.spec.n_in * p.spec.w_fmt.width for p in plan.dense)
    buffers = sum(p.spec.n_in * p.spec.in_fmt.width for p in plan.dense if p.passes > 1)
    sigma = art.sigma_rom.depth * art.sigma_rom.sigma_fmt.width
    assert est.memory_bits["block"] == weights + buffers + sigma
    assert est.memory_bits["logic"] == 0   # bias ROMs are case statements before registers
    assert est.register_bits == plan.cost().registers
    assert est.macs_per_image["recon_mu"] == sum(s.n_in * s.n_out for s in art.layers)
    assert est.ideal_cycles["encode"] == pytest.approx(784 * 128 / 16 + 128 * 20 / 4)
    d = est.to_dict()
    assert d["cycles"] == est.cycles and len(d["layers"]) == 4


def test_serial_units_trade_multipliers_for_cycles():
    art = random_artifact("iris", seed=0)
    fast, small = core_plan(art, 1), core_plan(art, 1, serial_sigmoid=True, serial_sampler=True)
    assert small.sigmoid.cost().multiplier_blocks == small.sampler.cost().multiplier_blocks == 1
    assert fast.sigmoid.cost().multiplier_blocks > 4 and fast.sampler.cost().multiplier_blocks > 8
    assert estimate(small).cycles["recon_mu"] > estimate(fast).cycles["recon_mu"]


def test_mnist_near_physical_limit():
    """Up to 32 lanes the pipeline reaches sum(MACs/lanes) within 5 % (pass 0 overlaps)."""
    art = random_artifact("mnist")
    for lanes in (4, 8, 16, 32):
        est = estimate(core_plan(art, lanes))
        for mode in ("recon_mu", "encode", "generate"):
            assert est.cycles[mode] <= 1.05 * est.ideal_cycles[mode], (lanes, mode)


def test_normalize_lanes_errors():
    art = random_artifact("iris")
    assert normalize_lanes(art, 3) == [3, 3, 3, 3]
    assert normalize_lanes(art, (1, 2, 3, 4)) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"one value per layer \(4: enc_0, enc_head, dec_0, dec_out\)"):
        normalize_lanes(art, [1, 2, 3])
    with pytest.raises(ValueError, match="at least 1"):
        normalize_lanes(art, [1, 0, 3, 4])
    with pytest.raises(TypeError, match="ints"):
        normalize_lanes(art, [1, 2.5, 3, 4])
    with pytest.raises(TypeError, match="int or a sequence"):
        normalize_lanes(art, True)
    with pytest.raises(TypeError, match="int or a sequence"):
        normalize_lanes(art, 2.0)
