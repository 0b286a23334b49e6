"""VAECore vs GoldenModel.run, bit for bit, in every mode, with random stalls, in Amaranth's
simulator (sim.pysim); cycles vs hw.estimate."""

from __future__ import annotations

import pytest
import torch

from hw.core import VAECore
from hw.cost import BlockRam
from hw.plan import core_plan
from model.data import load_dataset
from model.golden import GoldenModel
from model.quantize import quantize_model
from model.random_artifact import random_artifact
from model.vae import VAE, make_config
from sim.pysim import job_errors, measure_mode, random_jobs, run_core


MODES_MIX = ["recon_sample", "encode", "generate", "recon_mu", "recon_sample", "generate",
             "encode", "recon_mu"]


@pytest.mark.parametrize("lanes,p,options", [
    (16, 0.0, {}),
    (3, 0.4, {}),
    ([5, 1, 2, 7], 0.3, {}),
    (1, 0.0, {"mult_width": 16, "serial_sigmoid": True, "serial_sampler": True}),  # iCE40 shape
    (2, 0.3, {"mult_width": 9, "serial_sigmoid": True}),    # every product split into limbs
    (2, 0.0, {"block_ram": BlockRam("tiny", ((8, 8), (2, 32)))}),  # ROMs in 2-bit columns
    ([3, 2, 5, 4], 0.3, {"simd": [2, 3, 1, 4]}),                  # SIMD, ragged last groups
    ([1, 4, 16, 1], 0.0, {"simd": [4, 16, 2, 16]}),               # one group per pass
])
def test_iris_core_all_modes_vs_golden(lanes, p, options):
    art = random_artifact("iris", seed=3)
    core = VAECore(core_plan(art, lanes, **options))
    jobs = random_jobs(art, MODES_MIX, seed=11)
    outputs, timing = run_core(core, jobs, p_gap=p, p_stall=p, p_cmd_gap=p, seed=5)
    assert not job_errors(art, jobs, outputs)
    if p == 0.0:  # no stalls: the first job (into the idle core) takes the model's latency
        assert timing[0][1] - timing[0][0] == core.estimate().latency[jobs[0][0]]


def test_iris_core_minimax_no_correction():
    art = random_artifact("iris", seed=8, sigmoid_kind="minimax5", correction="none")
    core = VAECore(core_plan(art, 4))
    jobs = random_jobs(art, ["generate", "recon_sample", "recon_mu", "encode"], seed=2)
    outputs, _ = run_core(core, jobs, p_gap=0.2, p_stall=0.2, seed=1)
    assert not job_errors(art, jobs, outputs)


def test_mnist_core_every_mode_vs_golden_and_cycles():
    """The MNIST shape at 64 lanes: three jobs of each mode back to back, exact, with the
    model's latency and II."""
    art = random_artifact("mnist", seed=4)
    core = VAECore(core_plan(art, 64))
    est = core.estimate()
    for mode in ("recon_sample", "encode", "generate"):
        errors, latency, gaps = measure_mode(core, mode, 3, seed=6)
        assert not errors
        assert (latency, gaps) == (est.latency[mode], [est.ii[mode]] * 2), mode


def test_mnist_core_stalls():
    art = random_artifact("mnist", seed=5)
    core = VAECore(core_plan(art, [128, 20, 16, 112]))
    jobs = random_jobs(art, ["recon_sample", "encode"], seed=7)
    outputs, _ = run_core(core, jobs, p_gap=0.2, p_stall=0.2, seed=3)
    assert not job_errors(art, jobs, outputs)


def test_plan_argument_errors():
    """Knobs are checked by core_plan, before any hardware object exists."""
    art = random_artifact("iris")
    with pytest.raises(ValueError, match="one value per layer"):
        core_plan(art, [1, 2])
    with pytest.raises(ValueError, match="at least 1"):
        core_plan(art, 0)
    with pytest.raises(TypeError, match="Artifact"):
        core_plan("art", 4)
    with pytest.raises(ValueError, match="mult_width must be an int >= 2"):
        core_plan(art, 4, mult_width=1)


def test_iris_core_from_quantizer():
    """An artifact from model.quantize (random-initialised VAE, real IRIS data)."""
    torch.manual_seed(0)
    data = load_dataset("iris")
    art, *_ = quantize_model(VAE(make_config("iris")), data.x_train)
    core = VAECore(core_plan(art, [3, 2, 5, 4]))
    x = GoldenModel(art).quantize_input(data.x_test[:6])
    modes = ["recon_sample", "encode", "generate", "recon_mu", "recon_sample", "generate"]
    jobs = [(m, None if m == "generate" else x[k]) for k, m in enumerate(modes)]
    outputs, _ = run_core(core, jobs, p_gap=0.3, p_stall=0.3, p_cmd_gap=0.2, seed=2)
    assert not job_errors(art, jobs, outputs)
