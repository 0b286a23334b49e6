"""Quick co-simulation: the generated Verilog equals the golden model, bit for bit,
in Icarus Verilog and in Verilator.

Small artifacts (``conftest.py``'s ``*_untrained``: the real quantizer on a
seeded untrained model; IRIS at its real 4-16-2 shape, MNIST 784-16-10)
so that nothing depends on ``make train``.  Each (design, simulator) is
built once per session (``sim.runner`` caches builds on disk, keyed by the
Verilog text, and locks against concurrent pytest-xdist workers); each test
runs one simulation streaming many vectors.  A test skips only when its
simulator is genuinely not installed, and says how to install it.

The full sign-off (every MNIST test image and IRIS sample, every mode) is
``fxvae cosim`` / ``make sim``.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.fixed import MODES
from sim.runner import SIMULATORS, simulator_problem

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def need(sim: str) -> None:
    problem = simulator_problem(sim)
    if problem:
        pytest.skip(f"{sim} not available: {problem}")


@pytest.fixture(scope="module", params=SIMULATORS)
def sim(request):
    need(request.param)
    return request.param


def _check(results: dict) -> None:
    assert results["protocol_errors"] == [], results["protocol_errors"]
    assert results["mismatches"] == 0, results.get("reports")


# --------------------------------------------------------------------------
# Infrastructure on a tiny stream component (registered adder)


def _adder():
    from amaranth.hdl import Module, signed
    from amaranth.lib import stream, wiring
    from amaranth.lib.wiring import In, Out

    class Increment(wiring.Component):
        """o = i + 1, one register stage, with back-pressure."""

        def __init__(self):
            super().__init__({"i": In(stream.Signature(signed(8))),
                              "o": Out(stream.Signature(signed(9)))})

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
            with m.If(self.o.ready):
                m.d.sync += self.o.valid.eq(0)
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(self.i.payload + 1)]
            return m

    return Increment()


def test_port_map_names_match_verilog():
    from sim.designs import design_from_component
    design = design_from_component(_adder(), "tiny_increment")
    streams = design.ports["streams"]
    assert streams["i"]["payload"] == "i__payload" and streams["o"]["ready"] == "o__ready"
    assert streams["i"]["shape"] == {"width": 8, "signed": True, "fields": None}


def test_stream_infrastructure_icarus(tmp_path):
    """Driver gaps + monitor stalls on a 1-stage component: nothing lost,
    duplicated or reordered (Icarus only: the build is instant)."""
    need("icarus")
    from sim import exchange
    from sim.designs import design_from_component
    from sim.runner import Simulation
    x = np.random.default_rng(0).integers(-128, 128, 3000)
    vectors = exchange.save_vectors(tmp_path / "v.npz", x=x, y=x + 1)
    config = {"vectors": str(vectors), "in_stream": "i", "out_stream": "o",
              "phases": [{"inputs": "x", "expected": "y"}],
              "stall_in": 0.4, "stall_out": 0.4, "burst": 5, "seed": 3}
    sim = Simulation(design_from_component(_adder(), "tiny_increment"), "icarus")
    results = sim.run("sim.cocotb_blocks", "stream_map", config, workdir=tmp_path, quiet=True)
    assert results["mismatched_words"] == 0 and results["protocol_errors"] == []
    assert results["sent"] == results["received"] == len(x)


# --------------------------------------------------------------------------
# Blocks on their own


def test_sigmoid_unit(sim, mnist_untrained, tmp_path):
    """Every input code, then random inputs under random stalls."""
    from sim.cosim import run_sigmoid
    artifact, _ = mnist_untrained
    results = run_sigmoid(artifact.sigmoid, sim, workdir=tmp_path)
    assert results["mismatched_words"] == 0, results["phases"]
    assert results["protocol_errors"] == []
    assert results["words"] >= 2 ** min(artifact.sigmoid.in_fmt.width, 16)


def test_gaussian_sampler(sim, mnist_untrained, tmp_path):
    """Draws under random ready stalls, a reset in mid-stream, fresh draws after it."""
    from sim.cosim import run_sampler
    artifact, _ = mnist_untrained
    results = run_sampler(artifact.sampler, sim, workdir=tmp_path, n=3000)
    assert results["mismatched_words"] == 0, results["phases"]
    assert results["protocol_errors"] == []


# --------------------------------------------------------------------------
# The core: every mode, both presets


CORE_IMAGES = {"iris": 40, "mnist": 3}


@pytest.mark.parametrize("preset", ["iris", "mnist"])
def test_core_every_mode(sim, preset, request, tmp_path):
    """A few images of every mode, back to back, no stalls (the speed path):
    exact, and every job takes exactly the analytic model's cycles."""
    from sim.cosim import CoreCosim
    artifact, x = request.getfixturevalue(f"{preset}_untrained")
    cosim = CoreCosim(artifact, sim)
    n = CORE_IMAGES[preset]
    for mode in MODES:
        results, rtl = cosim.run(mode, x=x[:n], n=n, workdir=tmp_path / mode, quiet=True)
        _check(results)
        assert results["images"] == n and rtl.shape[0] == n
        assert results["latency_agrees"], (mode, results["cycles"], results["latency_model"])


@pytest.mark.parametrize("preset", ["iris", "mnist"])
def test_core_random_stalls(sim, preset, request, tmp_path):
    """Long random valid/ready stall patterns (general, two-phase path)."""
    from sim.cosim import CoreCosim
    artifact, x = request.getfixturevalue(f"{preset}_untrained")
    cosim = CoreCosim(artifact, sim)
    n = {"iris": 30, "mnist": 2}[preset]
    results, _ = cosim.run("recon_sample", x=x[:n], n=n, workdir=tmp_path, stall=0.5,
                           burst=8, seed=7, quiet=True)
    _check(results)
    assert results["sent_words"] == n * artifact.input_dim
    assert results["received_words"] == n * artifact.input_dim


@pytest.mark.parametrize("mode", ["recon_sample", "encode"])
def test_core_reset_mid_image(sim, mode, iris_untrained, tmp_path):
    """Reset during a job's input, computation and output; the next images are
    still exact (the sampler restarts from its seeds: fresh golden sampler)."""
    from sim.cosim import CoreCosim
    artifact, x = iris_untrained
    cosim = CoreCosim(artifact, sim)
    results, _ = cosim.run(mode, x=x[:12], n=12, workdir=tmp_path, stall=0.2, burst=3,
                           test="reset_mid_image", quiet=True)
    _check(results)
    assert results["aborted"]["output_prefix_exact"]


# --------------------------------------------------------------------------
# The core: queues of mixed modes, several images in flight


QUEUE_MODES = ["recon_sample", "encode", "generate", "recon_mu", "generate", "generate",
               "encode", "recon_sample", "recon_mu", "encode", "recon_sample", "generate"]


def _queue(artifact, x, modes):
    return [(mode, None if mode == "generate" else x[k]) for k, mode in enumerate(modes)]


def test_core_job_queue(sim, iris_untrained, tmp_path):
    """Mixed modes back to back (ragged outputs: encode 2L words, the others input_dim)
    under random cmd/i/o stalls, then without stalls from a primed sampler: every word
    and ``last`` exact, and the first job takes exactly the model's latency."""
    from sim.cosim import CoreCosim
    artifact, x = iris_untrained
    cosim = CoreCosim(artifact, sim)
    jobs = _queue(artifact, x, QUEUE_MODES)
    lengths = [2 * artifact.latent_dim if m == "encode" else artifact.input_dim
               for m in QUEUE_MODES]
    results, rtl = cosim.run_jobs(jobs, workdir=tmp_path / "stalls", stall_cmd=0.5,
                                  stall_in=0.3, stall_out=0.4, burst=4, seed=3, quiet=True)
    _check(results)
    assert results["images"] == len(jobs) and results["lengths"] == lengths
    assert results["received_words"] == sum(lengths) and rtl.shape == (len(jobs), max(lengths))
    results, _ = cosim.run_jobs(jobs, workdir=tmp_path / "free", settle=True, quiet=True)
    _check(results)
    assert results["latency_agrees"], (results["latency_measured"], results["latency_model"])


def test_core_reset_in_flight(sim, iris_untrained, tmp_path):
    """Several jobs in flight (four commands taken, images in different layers, some
    output taken or none), a reset, then a mixed queue exact against golden outputs
    from a fresh sampler."""
    from sim.cosim import CoreCosim
    artifact, x = iris_untrained
    cosim = CoreCosim(artifact, sim)
    in_flight = _queue(artifact, x[20:], ["recon_sample", "generate", "encode", "recon_mu"])
    jobs = _queue(artifact, x, QUEUE_MODES[:8])
    for take, stall in ((0, 0.0), (2 * artifact.input_dim + 1, 0.3)):
        results, _ = cosim.run_reset_in_flight(in_flight, jobs, workdir=tmp_path / str(take),
                                               take=take, stall=stall, burst=3, seed=take,
                                               quiet=True)
        _check(results)
        aborted = results["aborted"]
        assert aborted["cmd_taken"] == 4 and aborted["prefix_exact"], aborted
        assert aborted["output_words_taken"] == take
        assert results["images"] == len(jobs) and results["sent_cmd"] == len(jobs)
