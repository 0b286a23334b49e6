"""Verilog, ROM images and a JSON description of a :class:`hw.core.VAECore`.

Reproducibility: Verilog is produced by ``amaranth.back.verilog.convert``
with Amaranth's bundled Yosys (``AMARANTH_USE_YOSYS=builtin``; any other
setting is an error) and without ``src`` attributes by default (they hold
absolute paths of the checkout), so the same artifact and lanes give
byte-identical text on every machine.

Outputs of :func:`write_core` (``name`` defaults to ``fxvae_<preset>``):

``<name>.v``
    The core; weights, biases and the sigma ROM are inlined as memory
    initialisers, so the file is self-contained.
``<name>.json``
    Ports (:func:`hw.ports.port_map`: clock, reset, streams with their
    port names, direction and payload shape, struct fields with bit offsets;
    checked against the Verilog), mode codes, protocol summary, latency per
    mode and the analytic estimate.
``<name>_hex/*.hex`` (with ``hex_files=True``)
    The same ROM images as ``$readmemh`` files, one word per line in
    two's complement hex, for flows that want to swap the contents without
    regenerating (listed in the JSON with their depth and width).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from amaranth.lib import wiring

from model.artifact import Artifact
from model.fixed import MODES, sigma_rom_contents
from model.tables import json_default

from .core import IMAGE_MODES, MODE_CODES, VAECore
from .dense import dense_rom_images, weight_rom_words
from .plan import core_plan
from .ports import check_ports, port_map

__all__ = ["convert", "verilog_and_ports", "hex_lines", "rom_images", "describe_core",
           "write_core"]

#: Amaranth reads its Yosys choice from this variable (there is no argument for it).
YOSYS_SETTING = "AMARANTH_USE_YOSYS"


@contextlib.contextmanager
def _bundled_yosys():
    """``AMARANTH_USE_YOSYS=builtin`` for the duration of one conversion (the
    environment is restored after); any other value already set is refused."""
    setting = os.environ.get(YOSYS_SETTING)
    if setting not in (None, "builtin"):
        raise RuntimeError(f"{YOSYS_SETTING} must be 'builtin' (or unset) for reproducible "
                           f"Verilog, not {setting!r}")
    os.environ[YOSYS_SETTING] = "builtin"
    try:
        yield
    finally:
        if setting is None:
            del os.environ[YOSYS_SETTING]


def convert(component: wiring.Component, name: str, *, emit_src: bool = False) -> str:
    """Verilog text of ``component`` with Amaranth's bundled Yosys (reproducible)."""
    with _bundled_yosys():
        return verilog.convert(component, name=name, emit_src=emit_src)


def verilog_and_ports(component: wiring.Component, name: str, *,
                      emit_src: bool = False) -> tuple[str, dict]:
    """Verilog text and :func:`hw.ports.port_map`, checked against each other."""
    text = convert(component, name, emit_src=emit_src)
    ports = port_map(component)
    check_ports(ports, text, name)
    return text, ports


def hex_lines(values, width: int) -> str:
    """``$readmemh`` text: one two's-complement word of ``width`` bits per line."""
    digits = -(-width // 4)
    mask = (1 << width) - 1
    return "".join(f"{int(v) & mask:0{digits}x}\n" for v in np.asarray(values).reshape(-1))


def rom_images(core: VAECore) -> dict[str, dict]:
    """Every ROM of ``core``: file name -> ``{"values", "width", "depth", "what"}``."""
    art = core.artifact
    out = {}
    for plan in core.plan.dense:
        spec, lanes, simd = plan.spec, plan.lanes, plan.simd
        w_image, b_image = dense_rom_images(spec, art.weights[spec.name], art.biases[spec.name],
                                            lanes, simd)
        ww = spec.w_fmt.width
        out[f"{spec.name}_w.hex"] = {
            "values": weight_rom_words(w_image, ww), "width": ww * plan.multipliers,
            "depth": plan.depth,
            "what": f"layer {spec.name} weights, all {lanes} lanes x {simd} SIMD in one word: "
                    f"entry p*{plan.groups}+g, bits [{ww}s, {ww}s+{ww}) with s = k*{simd}+j "
                    f"= W[p*{lanes}+k, g*{simd}+j] (0 past the matrix)"}
        for k in range(lanes):
            out[f"{spec.name}_b{k}.hex"] = {
                "values": b_image[k], "width": plan.bias_span.width, "depth": plan.passes,
                "what": f"layer {spec.name} lane {k} bias + rounding half at acc_frac "
                        f"{spec.acc_frac}, entry p"}
    rom = art.sigma_rom
    out["sigma_rom.hex"] = {"values": sigma_rom_contents(rom), "width": rom.sigma_fmt.width,
                            "depth": rom.depth,
                            "what": "sigma = exp(logvar/2), model.fixed.sigma_rom_contents"}
    return out


def describe_core(core: VAECore, name: str) -> dict:
    """The JSON description of a core (no Verilog needed)."""
    art = core.artifact
    est = core.estimate()
    return {
        "module": name,
        "preset": art.preset,
        "lanes": {layer.name: layer.lanes for layer in est.layers},  # as built (<= n_out)
        "simd": {layer.name: layer.simd for layer in est.layers},    # as built (<= n_in)
        "config": {"mult_width": est.mult_width, "block_ram": est.block_ram,
                   "serial_sigmoid": est.serial_sigmoid, "serial_sampler": est.serial_sampler},
        "ports": port_map(core),
        "modes": dict(MODE_CODES),
        "image_modes": list(IMAGE_MODES),
        "formats": {
            "input": art.input_fmt.to_json(),
            "output_sigmoid": art.sigmoid.out_fmt.to_json(),
            "output_encode": art.mu_fmt.to_json(),
            "o_data_width": core.out_width,
        },
        "words": {"input": art.input_dim, "output": {m: 2 * art.latent_dim if m == "encode"
                                                     else art.input_dim for m in MODES}},
        "protocol": [
            "jobs are pipelined: cmd (payload.mode = mode code) is taken while earlier jobs "
            "are in flight, up to queue_depth jobs ahead of the output",
            "modes recon_mu, recon_sample, encode: send input_dim words on i per job, in "
            "command order (i.ready is low while no commanded job still owes input)",
            "generate takes no input",
            "o carries each job's words in command order; payload.last marks a job's last word",
            "sampler draws: image-major, dim-minor over recon_sample and generate jobs since reset",
        ],
        "queue_depth": core.plan.queue_depth,
        "latency": core.latency,
        "cycles_per_image": est.ii,
        "estimate": est.to_dict(),
    }


def write_core(artifact: Artifact, lanes, out_dir, *, name: str | None = None,
               hex_files: bool = False, emit_src: bool = False, **options) -> dict[str, Path]:
    """Write ``<name>.v``, ``<name>.json`` (and ROM ``.hex`` files); returns the paths.

    ``options`` are :class:`hw.core.VAECore`'s knobs (``mult_width``, ``serial_sigmoid``,
    ``serial_sampler``)."""
    core = VAECore(core_plan(artifact, lanes, **options))
    name = name or f"fxvae_{artifact.preset}"
    if not name.isidentifier():
        raise ValueError(f"module name must be a Verilog identifier, not {name!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    desc = describe_core(core, name)
    paths = {}
    if hex_files:
        hex_dir = out_dir / f"{name}_hex"
        hex_dir.mkdir(exist_ok=True)
        roms = {}
        for fname, rom in rom_images(core).items():
            (hex_dir / fname).write_text(hex_lines(rom["values"], rom["width"]))
            roms[fname] = {k: v for k, v in rom.items() if k != "values"}
        desc["hex"] = {"dir": hex_dir.name, "roms": roms}
        paths["hex"] = hex_dir
    text, _ = verilog_and_ports(core, name, emit_src=emit_src)
    paths["verilog"] = out_dir / f"{name}.v"
    paths["verilog"].write_text(text)
    paths["json"] = out_dir / f"{name}.json"
    paths["json"].write_text(json.dumps(desc, indent=1, default=json_default) + "\n")
    return paths
