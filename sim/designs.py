"""Designs under test: an Amaranth component -> Verilog text + port map, cached on disk.

The Verilog comes from :func:`hw.verilog.verilog_and_ports` (Amaranth's
bundled Yosys, ports checked against the signature), so the co-simulation
signs off exactly the text the FPGA flow uses.  Converting the MNIST core
takes ~15 s, so every design is memoised on disk under a key of its
parameters and a hash of the ``hw``/``model`` sources.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import amaranth

from hw.arith import TaylorSigmoid
from hw.core import VAECore
from hw.plan import core_plan
from hw.presets import default_lanes
from hw.sampler import GaussianSampler, sampler_plan
from hw.verilog import verilog_and_ports
from model.artifact import artifact_digest
from sim.runner import Design, default_build_root

__all__ = ["design_from_component", "cached_design", "sigmoid_design", "sampler_design",
           "core_design"]


def design_from_component(component, toplevel: str, **meta) -> Design:
    text, ports = verilog_and_ports(component, toplevel)
    return Design(toplevel=toplevel, verilog=text, ports=ports, meta=meta)


def _source_digest() -> str:
    """Hash of everything that can change the generated Verilog."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for folder in ("hw", "model"):
        for path in sorted((root / folder).glob("*.py")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    h.update(amaranth.__version__.encode())
    return h.hexdigest()


def cached_design(key: dict, make, *, build_root: Path | None = None) -> Design:
    """``make()`` -> Design, memoised on disk under ``key`` (+ the hw/model sources)."""
    root = Path(build_root) if build_root is not None else default_build_root()
    full = json.dumps({**key, "sources": _source_digest()}, sort_keys=True, default=str)
    digest = hashlib.sha256(full.encode()).hexdigest()[:16]
    path = root / "designs" / f"{key['toplevel']}-{digest}.json"
    if path.exists():
        return Design(**json.loads(path.read_text()))
    design = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(vars(design)))
    tmp.replace(path)
    return design


def sigmoid_design(spec, *, build_root=None) -> Design:
    toplevel = "fxvae_sigmoid"
    return cached_design({"toplevel": toplevel, "spec": repr(spec)},
                         lambda: design_from_component(TaylorSigmoid(spec), toplevel,
                                                       block="sigmoid", kind=spec.kind),
                         build_root=build_root)


def sampler_design(spec, *, build_root=None) -> Design:
    toplevel = "fxvae_sampler"
    return cached_design({"toplevel": toplevel, "spec": repr(spec)},
                         lambda: design_from_component(GaussianSampler(sampler_plan(spec)),
                                                       toplevel,
                                                       block="sampler",
                                                       correction=spec.correction),
                         build_root=build_root)


def core_design(artifact, lanes=None, *, build_root=None, **options) -> Design:
    """The core at ``lanes`` (default: :func:`hw.presets.default_lanes` of the
    artifact's preset) and the other knobs of :func:`hw.plan.core_plan` (``options``);
    ``meta`` holds the lanes, the options, the preset, the latency and the II per mode."""
    lanes = default_lanes(artifact.preset) if lanes is None else lanes
    toplevel = "fxvae_core"

    def make():
        core = VAECore(core_plan(artifact, lanes, **options))
        # (meta is stored as JSON: a block RAM by its primitive's name)
        shown = {k: getattr(v, "primitive", v) for k, v in options.items()}
        return design_from_component(core, toplevel, block="core", lanes=lanes, options=shown,
                                     preset=artifact.preset, latency=core.latency,
                                     ii=core.estimate().ii)

    key = {"toplevel": toplevel, "artifact": artifact_digest(artifact), "lanes": lanes,
           "options": options}
    return cached_design(key, make, build_root=build_root)
