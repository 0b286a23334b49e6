"""hw.estimate: cycle model == simulation on small shapes; resource counts == the generator's."""

import pytest

from hw.core import VAECore
from hw.estimate import estimate
from hw.plan import core_plan, normalize_lanes
from model.random_artifact import random_artifact
from model.fixed import MODES
from sim.pysim import measure_mode


@pytest.mark.parametrize("shape,lanes,simd", [
    ((6, (5,), 2), 1, 1),                      # every layer fully serial
    ((6, (9,), 3), [9, 2, 12, 4], 1),          # lanes > n_in (output-bound), lanes > n_out
    ((12, (7, 5), 2), [3, 2, 4, 1, 5, 6], 1),  # two hidden layers
    ((12, (7, 5), 2), [3, 2, 4, 1, 5, 6], [5, 2, 3, 1, 2, 4]),  # SIMD: groups < lanes
])
def test_latency_and_ii_match_simulation(shape, lanes, simd):
    art = random_artifact("iris", seed=1, shape=shape)
    core = VAECore(core_plan(art, lanes, simd=simd))
    est = core.estimate()
    for mode in MODES:
        errors, latency, gaps = measure_mode(core, mode, 5, seed=4)
        assert not errors
        assert latency == est.latency[mode], mode
        assert gaps[-2:] == [est.ii[mode]] * 2, mode   # once the stages are in step


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
    # two slots per buffer, each the next power of two deep
    buffers = sum(2 * 2 ** (p.spec.n_in - 1).bit_length() * p.spec.in_fmt.width
                  for p in plan.dense if p.passes > 1)
    sigma = art.sigma_rom.depth * art.sigma_rom.sigma_fmt.width
    assert est.memory_bits["block"] == weights + buffers + sigma
    assert est.memory_bits["logic"] == 0   # bias ROMs are case statements before registers
    assert est.register_bits == plan.cost().registers
    assert est.macs_per_image["recon_mu"] == sum(s.n_in * s.n_out for s in art.layers)
    assert est.ideal_ii["encode"] == pytest.approx(max(784 * 128 / 16, 128 * 20 / 4))
    d = est.to_dict()
    assert d["ii"] == est.ii and d["latency"] == est.latency and len(d["layers"]) == 4


def test_serial_units_trade_multipliers_for_cycles():
    art = random_artifact("iris", seed=0)
    fast, small = core_plan(art, 1), core_plan(art, 1, serial_sigmoid=True, serial_sampler=True)
    assert small.sigmoid.cost().multiplier_blocks == small.sampler.cost().multiplier_blocks == 1
    assert fast.sigmoid.cost().multiplier_blocks > 4 and fast.sampler.cost().multiplier_blocks > 8
    assert estimate(small).latency["recon_mu"] > estimate(fast).latency["recon_mu"]
    assert estimate(small).ii["recon_mu"] > estimate(fast).ii["recon_mu"]


def test_mnist_near_physical_limit():
    """Images in flight: II is the slowest layer's MACs / lanes, within 5 %."""
    art = random_artifact("mnist")
    for lanes in (4, 8, 16, 32):
        est = estimate(core_plan(art, lanes))
        for mode in ("recon_mu", "encode", "generate"):
            assert est.ii[mode] <= 1.05 * est.ideal_ii[mode], (lanes, mode)


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
