"""``fxvae host`` without a board: its clear errors and its figures.

(The client code it drives, hw.host, runs against the simulated board in
tests/test_uart.py.)
"""

from __future__ import annotations

import pytest

from model.random_artifact import random_artifact
from model.artifact import save_artifact
from model.fixed import MODES
from model.golden import GoldenModel, Sampler
from scripts import host as host_script


@pytest.fixture(scope="module")
def host():
    return host_script


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("art") / "iris"
    save_artifact(random_artifact("iris"), path)
    return path


def test_errors_are_one_line_and_exit_2(host, iris_dir, tmp_path, capsys):
    cases = [
        (["--port", "/dev/null", "--artifact", str(tmp_path / "none")],
         f"error: no artifact at {tmp_path / 'none'}\n"),
        (["--port", str(tmp_path / "ttyUSB9"), "--artifact", str(iris_dir)],
         f"error: cannot open serial port '{tmp_path / 'ttyUSB9'}' at 3,000,000 baud: "),
        (["--port", "x", "--artifact", str(iris_dir), "--images", "31"],
         "error: the iris test split has 30 images, --images asks for 31\n"),
        (["--port", "x", "--artifact", str(iris_dir), "--images", "0"],
         "error: --images must be >= 1, not 0\n"),
        (["--port", "x", "--artifact", str(iris_dir), "--board", "icebreaker"],
         "error: --board, --lanes and --clock-mhz describe a simulated board (--sim); a real "
         "one reports its own in INFO\n"),
    ]
    for argv, message in cases:
        assert host.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err


@pytest.mark.parametrize("preset", ["iris", "mnist"])
def test_figures_for_every_mode(host, preset, tmp_path):
    art = random_artifact(preset)
    x, labels, shape = host.load_inputs(art, 6)
    assert x.shape == (6, art.input_dim) and len(set(labels.tolist())) > 1   # spread over classes
    golden, sampler = GoldenModel(art), Sampler(art.sampler)
    for mode in MODES:
        out = golden.run(mode, n=6, sampler=sampler) if mode == "generate" else \
            golden.run(mode, x, sampler=sampler)
        png = host.save(host.figure(art, mode, x, out, labels, shape), tmp_path / f"{mode}.png")
        assert png.stat().st_size > 1000


def test_simulated_board(host, iris_dir, tmp_path, capsys):
    """--sim: the same session against the frontend's Verilog (Icarus; 12 MHz makes
    the divisor 4 at 3 Mbaud, so the run is short)."""
    from sim.runner import simulator_problem
    if simulator_problem("icarus"):
        pytest.skip(simulator_problem("icarus"))
    argv = ["--sim", "icarus", "--artifact", str(iris_dir), "--mode", "recon_sample",
            "--images", "3", "--clock-mhz", "12", "--out", str(tmp_path)]
    assert host.main(argv) == 0
    out = capsys.readouterr().out
    assert "recon_sample: 3 images, 0 mismatches" in out and out.endswith(
        "3 images, 0 mismatches\n")
    assert (tmp_path / "recon_sample.png").stat().st_size > 1000


def test_simulated_icebreaker(host, iris_dir, tmp_path, capsys):
    """--sim --board: the core and frontend exactly as the iCEBreaker bitstream holds them
    (one lane, serial sigmoid and sampler, 16-bit limbs, its clock)."""
    from hw.boards import BOARDS
    from sim.runner import simulator_problem
    if simulator_problem("icarus"):
        pytest.skip(simulator_problem("icarus"))
    argv = ["--sim", "icarus", "--board", "icebreaker", "--artifact", str(iris_dir),
            "--mode", "recon_mu", "--images", "2", "--out", str(tmp_path)]
    assert host.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"simulated board icebreaker: lanes 1, "
                          f"{BOARDS['icebreaker'].clock_mhz:g} MHz, 3,000,000 baud, icarus")
    assert out.endswith("2 images, 0 mismatches\n")
