# amaranth: UnusedElaboratable=no
"""The UART frontend end to end: the host client's own code, over the simulated pins.

``UartFrontend`` around a 2-lane IRIS core (a random artifact: no training
needed) is converted to Verilog and run in cocotb (``sim/tb_uart.py``); the
client (:mod:`hw.host`) talks to it through a transport that bit-bangs the
``rx``/``tx`` pins, at 4 clocks per bit.  Every output word is compared with
the golden model; every kind of malformed frame must get its error reply,
and the next frame must succeed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hw.plan import core_plan
from hw.frontend import frontend_plan
from model.random_artifact import random_artifact, random_inputs
from model.artifact import save_artifact
from model.data import load_dataset
from model.fixed import MODES
from model.golden import GoldenModel
from sim.runner import CLOCK_PERIOD_NS, SIMULATORS, simulator_problem
from sim.uart_cosim import run_session, uart_design

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CLK_HZ = 10 ** 9 // CLOCK_PERIOD_NS      # the testbench's clock, so board time = sim time
DIVISOR = 4
TIMEOUT_US = 2                           # 200 clocks: 5 characters


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """The frontend's design, its artifact on disk and the inputs (IRIS test split
    first, then rows with the input format's extreme values)."""
    art = random_artifact("iris")
    root = tmp_path_factory.mktemp("uart")
    save_artifact(art, root / "artifact")
    x = np.concatenate([GoldenModel(art).quantize_input(load_dataset("iris").x_test[:10]),
                        random_inputs(art, 2)])
    design = uart_design(art, 2, clk_hz=CLK_HZ, baud=CLK_HZ // DIVISOR, timeout_us=TIMEOUT_US)
    return design, root / "artifact", x


def run(board, sim, scenario, tmp_path, **options):
    problem = simulator_problem(sim)
    if problem:
        pytest.skip(f"{sim} not available: {problem}")
    design, artifact_dir, x = board
    return run_session(design, sim, artifact_dir, x, scenario=scenario, workdir=tmp_path,
                       timeout_s=1e-4, **options)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_images_every_mode(board, sim, tmp_path, monkeypatch):
    design, artifact_dir, x = board
    n = len(x)
    # relative paths, like the host client's defaults (the simulator runs elsewhere)
    monkeypatch.chdir(artifact_dir.parent)
    results, outputs = run((design, Path(artifact_dir.name), x), sim, "images",
                           Path(os.path.relpath(tmp_path)), modes=MODES, images=n,
                           reset_check=True)
    assert results["mismatches"] == 0
    assert {mode: r["images"] for mode, r in results["modes"].items()} == {
        "recon_mu": n, "recon_sample": n, "generate": n, "encode": n,
        "recon_sample_after_reset": n}
    # the board's words came back too, and the sampler restarted at the reset
    assert np.array_equal(outputs["recon_sample"], outputs["recon_sample_after_reset"])
    assert outputs["encode"].shape == (n, 4)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_malformed_frames_then_success(board, sim, tmp_path):
    results, _ = run(board, sim, "errors", tmp_path)
    assert results["failures"] == [] and results["mismatches"] == 0
    names = [c[0] for c in results["checks"]]
    assert names[:8] == ["unknown command", "unknown mode", "wrong count for the mode",
                         "count disagrees with the words", "words for generate", "runt",
                         "bad checksum", "frame cut off"]
    assert names[8:11] == ["client timeout", "late reply", "wrong bitstream named"]
    assert results["images"] == 11 and results["framing_errors"] == 0


def test_frontend_validation():
    core = core_plan(random_artifact("iris"), 2)
    with pytest.raises(ValueError, match=r"timeout_us=3 is 300 clocks, less than two "
                                         r"characters \(320 clocks at 6,250,000 baud\)"):
        frontend_plan(core, clk_hz=CLK_HZ, baud=CLK_HZ // 16, timeout_us=3)
    with pytest.raises(ValueError, match="1.01 % off"):
        frontend_plan(core, clk_hz=100_000_000, baud=3_000_000)
    with pytest.raises(TypeError, match="core must be a hw.plan.CorePlan"):
        frontend_plan(object(), clk_hz=CLK_HZ)
    with pytest.raises(ValueError, match="slots must be an int in"):
        frontend_plan(core, clk_hz=48_000_000, slots=0)


def test_frontend_cost_is_read_from_its_blocks():
    plan = frontend_plan(core_plan(random_artifact("iris"), 2), clk_hz=48_000_000)
    cost = plan.cost()
    info_bytes = len(plan.info.to_bytes())
    assert cost["store"]["block_memory_bits"] == 2 * 4 * 9        # slots x words x width
    assert cost["reply"]["logic_memory_bits"] == 8 * info_bytes   # the info ROM (async read)
    assert sum(c["block_memory_bits"] + c["logic_memory_bits"] for c in cost.values()) == \
        2 * 4 * 9 + 8 * info_bytes
    assert 200 < sum(c["register_bits"] for c in cost.values()) < 600
