"""Designs under test: an Amaranth component -> Verilog text + port map.

The Verilog comes from the hardware package's own conversion function
(reproducible: Amaranth's bundled Yosys, ``AMARANTH_USE_YOSYS=builtin``),
so the co-simulation signs off exactly the text the FPGA flow uses.
"""

from __future__ import annotations

import os

from sim.ports import check_ports, port_map
from sim.runner import Design

__all__ = ["to_verilog", "design_from_component", "sigmoid_design", "sampler_design",
           "core_design"]


def to_verilog(component, name: str) -> str:
    """The hardware package's converter when it has one, else Amaranth's, pinned
    to the bundled Yosys either way."""
    try:
        from hw.verilog import convert  # the hardware package's entry point
    except ImportError:
        try:
            from hw.streamutil import to_verilog as convert
        except ImportError:
            convert = None
    if convert is not None:
        return convert(component, name=name)
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    from amaranth.back import verilog
    return verilog.convert(component, name=name)


def design_from_component(component, toplevel: str, **meta) -> Design:
    text = to_verilog(component, toplevel)
    ports = port_map(component)
    check_ports(ports, text, toplevel)
    return Design(toplevel=toplevel, verilog=text, ports=ports, meta=meta)


def sigmoid_design(spec, *, toplevel: str = "fxvae_sigmoid") -> Design:
    from hw.arith import TaylorSigmoid
    return design_from_component(TaylorSigmoid(spec), toplevel, block="sigmoid",
                                 kind=spec.kind)


def sampler_design(spec, *, toplevel: str = "fxvae_sampler") -> Design:
    from hw.sampler import GaussianSampler, sampler_plan
    return design_from_component(GaussianSampler(sampler_plan(spec)), toplevel, block="sampler",
                                 correction=spec.correction)


def core_design(artifact, lanes, *, toplevel: str = "fxvae_core", **options) -> Design:
    """``options``: the core's knobs besides lanes (see :func:`hw.plan.core_plan`)."""
    from hw.core import VAECore
    from hw.plan import core_plan
    core = VAECore(core_plan(artifact, lanes, **options))
    return design_from_component(core, toplevel, block="core", lanes=lanes, options=options,
                                 preset=artifact.preset, latency=core.latency)
