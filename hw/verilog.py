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
    Ports (name, direction, width; payload fields with bit offsets), mode
    codes, protocol summary, latency per mode and the analytic estimate.
``<name>_hex/*.hex`` (with ``hex_files=True``)
    The same ROM images as ``$readmemh`` files, one word per line in
    two's complement hex, for flows that want to swap the contents without
    regenerating (listed in the JSON with their depth and width).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring

from model.artifact import Artifact
from model.fixed import MODES, sigma_rom_contents

from .core import IMAGE_MODES, MODE_CODES, VAECore
from .dense import dense_rom_images, weight_rom_words
from .plan import core_plan

__all__ = ["convert", "port_list", "hex_lines", "rom_images", "describe_core", "write_core"]


def convert(component: wiring.Component, name: str, *, emit_src: bool = False) -> str:
    """Verilog text of ``component`` with Amaranth's bundled Yosys (reproducible)."""
    setting = os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    if setting != "builtin":
        raise RuntimeError("AMARANTH_USE_YOSYS must be 'builtin' for reproducible Verilog, "
                           f"not {setting!r}")
    return verilog.convert(component, name=name, emit_src=emit_src)


def _shape_desc(shape) -> dict:
    if isinstance(shape, data.StructLayout):
        fields = {}
        for fname, field in shape:
            sub = Shape.cast(field.shape)
            fields[fname] = {"offset": field.offset, "width": sub.width, "signed": sub.signed}
        return {"width": shape.size, "signed": False, "fields": fields}
    plain = Shape.cast(shape)
    return {"width": plain.width, "signed": plain.signed}


def port_list(component: wiring.Component) -> list[dict]:
    """Every Verilog port of ``component``: ``{"name", "direction", "width", ...}``.

    Names follow ``amaranth.back.verilog`` (signature path joined by ``__``);
    ``clk`` and ``rst`` come first.  Stream payloads carry ``signed`` and, for
    struct payloads, ``fields`` with bit offsets.
    """
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1}]
    for name, member in component.signature.members.items():
        if member.is_signature and isinstance(member.signature, stream.Signature):
            sink = member.flow == wiring.In
            fwd, back = ("input", "output") if sink else ("output", "input")
            payload_shape = getattr(component, name).payload.shape()
            ports.append({"name": f"{name}__payload", "direction": fwd,
                          **_shape_desc(payload_shape)})
            ports.append({"name": f"{name}__valid", "direction": fwd, "width": 1})
            ports.append({"name": f"{name}__ready", "direction": back, "width": 1})
        elif member.is_port:
            shape = Shape.cast(member.shape)
            ports.append({"name": name, "direction": "input" if member.flow == wiring.In else
                          "output", "width": shape.width, "signed": shape.signed})
    return ports


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
        spec, lanes = plan.spec, plan.lanes
        w_image, b_image = dense_rom_images(spec, art.weights[spec.name], art.biases[spec.name],
                                            lanes)
        ww = spec.w_fmt.width
        out[f"{spec.name}_w.hex"] = {
            "values": weight_rom_words(w_image, ww), "width": ww * lanes, "depth": plan.depth,
            "what": f"layer {spec.name} weights, all {lanes} lanes in one word: entry "
                    f"p*{spec.n_in}+i, bits [{ww}k, {ww}k+{ww}) = W[p*{lanes}+k, i]"}
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
        "config": {"mult_width": est.mult_width, "serial_sigmoid": est.serial_sigmoid,
                   "serial_sampler": est.serial_sampler},
        "ports": port_list(core),
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
            "one job at a time: cmd (payload.mode = mode code) is taken only while idle",
            "modes recon_mu, recon_sample, encode: send input words on i (i.ready is low "
            "outside the job and after its input words)",
            "generate takes no input",
            "collect o words until payload.last; the next cmd is taken one clock later",
            "sampler draws: image-major, dim-minor over recon_sample and generate jobs since reset",
        ],
        "latency": core.latency,
        "cycles_per_image": est.cycles,
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
    text = convert(core, name, emit_src=emit_src)
    paths["verilog"] = out_dir / f"{name}.v"
    paths["verilog"].write_text(text)
    paths["json"] = out_dir / f"{name}.json"
    paths["json"].write_text(json.dumps(desc, indent=1, default=_json_default) + "\n")
    return paths


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    raise TypeError(f"not JSON serialisable: {obj!r}")
