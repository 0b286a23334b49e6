"""hw.estimate: cycle model == simulation on small shapes; resource counts == the generator's."""

import pytest

from hw.core import VAECore
from hw.dense import Dense
from hw.estimate import estimate, normalize_lanes
from model.random_artifact import random_artifact
from sim.pysim import job_errors, random_jobs, run_core


@pytest.mark.parametrize("shape,lanes", [
    ((6, (5,), 2), 1),                     # every layer fully serial
    ((6, (9,), 3), [9, 2, 12, 4]),         # lanes > n_in (output-bound), lanes > n_out
    ((12, (7, 5), 2), [3, 2, 4, 1, 5, 6]),  # two hidden layers
])
def test_cycles_match_simulation(shape, lanes):
    art = random_artifact("iris", seed=1, shape=shape)
    core = VAECore(art, lanes)
    jobs = random_jobs(art, ["recon_mu", "recon_sample", "generate", "encode"], seed=4)
    outputs, timing = run_core(core, jobs)
    assert not job_errors(art, jobs, outputs)
    est = estimate(art, lanes)
    got = {mode: c1 - c0 + 1 for (mode, _), (c0, c1) in zip(jobs, timing)}
    assert got == est.cycles


def test_resources_match_generator():
    art = random_artifact("mnist", seed=0)
    lanes = [16, 4, 8, 32]
    est = estimate(art, lanes)
    assert [layer.lanes for layer in est.layers] == lanes
    weight_bits = bias_bits = 0
    for spec, ln, layer in zip(art.layers, lanes, est.layers):
        unit = Dense(spec, art.weights[spec.name], art.biases[spec.name], ln)
        unit._MustUse__silence = True
        assert layer.passes == unit.passes
        assert layer.weight_rom_bits == unit.rom_bits["weights"]
        assert layer.bias_rom_bits == unit.rom_bits["bias"]
        weight_bits += unit.rom_bits["weights"]
        bias_bits += unit.rom_bits["bias"]
    assert est.rom_bits["weights"] == weight_bits and est.rom_bits["biases"] == bias_bits
    # MAC multipliers: one per lane, in_width x w_width
    assert est.multipliers["9x8"] == 16 and est.multipliers["16x8"] == 4 + 8 + 32
    assert est.ram_bits == sum(s.n_in * s.in_fmt.width for s, ln in zip(art.layers, lanes)
                               if -(-s.n_out // ln) > 1)
    assert est.macs_per_image["recon_mu"] == sum(s.n_in * s.n_out for s in art.layers)
    assert est.ideal_cycles["encode"] == pytest.approx(784 * 128 / 16 + 128 * 20 / 4)
    d = est.to_dict()
    assert d["cycles"] == est.cycles and len(d["layers"]) == 4


def test_mnist_near_physical_limit():
    """Up to 32 lanes the pipeline reaches sum(MACs/lanes) within 5 % (pass 0 overlaps)."""
    art = random_artifact("mnist")
    for lanes in (4, 8, 16, 32):
        est = estimate(art, lanes)
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
