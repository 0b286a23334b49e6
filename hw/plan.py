"""The plan of a whole core: every block's plan, chosen by a few knobs, and its cost.

Knobs (FINN calls this the folding configuration):

``lanes``
    MAC lanes per dense layer (one int for all, or one per layer): outputs
    computed at a time (FINN's PE).
``simd``
    Inputs each lane takes per clock (FINN's SIMD; default 1): ``lanes *
    simd`` multipliers per layer, so a layer whose outputs are already split
    as far as they go (784 -> 128 at 64 lanes: 2 passes) still gets faster.
``mult_width``
    Signed operand width of the FPGA's multiplier blocks (18: ECP5, 16:
    iCE40); products wider than that are split into limbs (:mod:`hw.mult`).
``block_ram``
    The FPGA's block RAM (:data:`hw.cost.BLOCK_RAMS`): weight ROMs are cut into
    columns one of them deep (:class:`hw.dense.Dense`); None keeps whole words.
``serial_sigmoid`` / ``serial_sampler``
    Run the sigmoid's / the Gaussian correction's Horner steps on one
    multiplier block instead of a pipeline of them (:class:`hw.arith.OddPolyUnit`).
    A serial sampler fills a buffer of ``latent_dim`` draws ahead of demand.

:func:`core_plan` builds a :class:`CorePlan` from an artifact and the knobs
without building hardware; :class:`hw.core.VAECore` elaborates from it and
:mod:`hw.estimate` reads its figures.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from model.artifact import Artifact

from .arith import DEFAULT_MULT_WIDTH, PolyPlan, Reparam, SigmaRom, sigmoid_plan
from .cost import BlockRam, Cost, counter_bits
from .dense import DensePlan, dense_plan
from .estimate import jobs_in_flight
from .sampler import SamplerPlan, sampler_plan
from .streamutil import RegisterFifo, RegisterSlice

__all__ = ["normalize_lanes", "per_layer_parser", "parse_lanes", "parse_simd", "CorePlan",
           "core_plan"]


def normalize_lanes(artifact: Artifact, lanes, what: str = "lanes") -> list[int]:
    """One value per layer (encoder then decoder) from an int or a sequence (``what``
    names the knob in errors: lanes, simd)."""
    layers = artifact.layers
    if isinstance(lanes, bool):
        raise TypeError(f"{what} must be an int or a sequence of ints, not {lanes!r}")
    if isinstance(lanes, (int, np.integer)):
        lanes = [int(lanes)] * len(layers)
    else:
        try:
            lanes = list(lanes)
        except TypeError:
            raise TypeError(f"{what} must be an int or a sequence of ints, "
                            f"not {lanes!r}") from None
        if len(lanes) != len(layers):
            names = ", ".join(spec.name for spec in layers)
            raise ValueError(f"{what} needs one value per layer ({len(layers)}: {names}), "
                             f"not {len(lanes)}")
    for value in lanes:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{what} must be ints, not {value!r}")
        if value < 1:
            raise ValueError(f"{what} must be at least 1, not {value}")
    return [int(value) for value in lanes]


def per_layer_parser(what: str):
    """An argparse ``type`` for a per-layer knob: ``16``, or one per layer ``64,20,16,64``."""
    def parse(text: str):
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an int or a comma-separated list "
                                             f"of ints, not {text!r}") from None
        if min(values) < 1:
            raise argparse.ArgumentTypeError(f"{what} must be at least 1, not {text!r}")
        return values[0] if len(values) == 1 else values
    parse.__name__ = what   # argparse names the type in its messages
    return parse


#: ``--lanes`` and ``--simd`` on the command lines.
parse_lanes = per_layer_parser("lanes")
parse_simd = per_layer_parser("simd")


@dataclass(frozen=True)
class CorePlan:
    """Every block of a :class:`hw.core.VAECore` as planned, and the core's own control."""

    artifact: Artifact
    dense: tuple[DensePlan, ...]
    sigmoid: PolyPlan
    sampler: SamplerPlan
    mult_width: int

    @property
    def lanes(self) -> list[int]:
        """Lanes per layer as built (requests above ``n_out`` are clamped)."""
        return [plan.lanes for plan in self.dense]

    @property
    def simd(self) -> list[int]:
        """Inputs per lane and clock, per layer as built (clamped to ``n_in``)."""
        return [plan.simd for plan in self.dense]

    @property
    def block_ram(self) -> str | None:
        """The primitive the weight ROMs are cut for."""
        ram = self.dense[0].block_ram
        return ram.primitive if ram else None

    @property
    def encoder(self) -> tuple[DensePlan, ...]:
        return self.dense[:len(self.artifact.encoder)]

    @property
    def decoder(self) -> tuple[DensePlan, ...]:
        return self.dense[len(self.artifact.encoder):]

    @property
    def latent_latency(self) -> int:
        """Clocks from a log-variance word entering the latent unit to its z word leaving:
        the head's slice, the join's slice, sigma, the reparameterization, the output slice."""
        return 3 * RegisterSlice.latency + SigmaRom.latency + Reparam.latency

    @property
    def out_width(self) -> int:
        """Width of ``o.payload.data``: sigmoid outputs or encoder head outputs."""
        return max(self.artifact.sigmoid.out_fmt.width, self.artifact.mu_fmt.width)

    def latent_cost(self) -> Cost:
        """The latent unit: sigma ROM, reparameterization, sampler, mu registers, counters."""
        art = self.artifact
        L = art.latent_dim
        # mu registers, word counters and the in-mu flag, the mu and eps beside the sigma
        # ROM's stages; slices: the head's words, the joined (logvar, mu, eps), z
        own = (L * art.mu_fmt.width + counter_bits(2 * L) + counter_bits(L) + 1
               + SigmaRom.latency * (art.mu_fmt.width + art.sampler.eps_fmt.width))
        return (SigmaRom.cost(art.sigma_rom) + Reparam.cost(art.reparam, self.mult_width)
                + self.sampler.cost()).plus_registers(
                    own + RegisterSlice.register_bits(art.mu_fmt.width + 1)
                    + RegisterSlice.register_bits(2 * art.mu_fmt.width
                                                      + art.sampler.eps_fmt.width)
                    + RegisterSlice.register_bits(art.z_fmt.width))

    @cached_property
    def queue_depth(self) -> int:
        """Jobs the core takes ahead of its output (:func:`hw.estimate.jobs_in_flight`):
        enough to keep the slowest stage busy; more would only wait at the first layer."""
        return jobs_in_flight(self)

    def control_registers(self) -> int:
        """The core's job control (three job queues, the input's image count, four word
        counters, two of them with a last-word flag) and its output slice."""
        art = self.artifact
        L = art.latent_dim
        depth = self.queue_depth
        return (2 * RegisterFifo.cost(depth, 1).registers + RegisterFifo.cost(depth, 2).registers
                + counter_bits(depth + 1) + counter_bits(art.input_dim)
                + 2 * (counter_bits(2 * L) + 1) + counter_bits(max(art.input_dim, 2 * L))
                + RegisterSlice.register_bits(self.out_width + 1))

    def cost(self) -> Cost:
        total = Cost(registers=self.control_registers())
        for plan in self.dense:
            total = total + plan.cost()
        return total + self.latent_cost() + self.sigmoid.cost()


def core_plan(artifact: Artifact, lanes, *, simd=1, mult_width: int = DEFAULT_MULT_WIDTH,
              block_ram: BlockRam | None = None, serial_sigmoid: bool = False,
              serial_sampler: bool = False) -> CorePlan:
    if not isinstance(artifact, Artifact):
        raise TypeError(f"artifact must be a model.artifact.Artifact, not {artifact!r}")
    if isinstance(mult_width, bool) or not isinstance(mult_width, int) or mult_width < 2:
        raise ValueError(f"mult_width must be an int >= 2, not {mult_width!r}")
    lanes = normalize_lanes(artifact, lanes)
    simd = normalize_lanes(artifact, simd, "simd")
    dense = tuple(dense_plan(spec, ln, mult_width, block_ram, artifact.biases[spec.name], sd)
                  for spec, ln, sd in zip(artifact.layers, lanes, simd))
    return CorePlan(
        artifact=artifact, dense=dense,
        sigmoid=sigmoid_plan(artifact.sigmoid, serial=serial_sigmoid, mult_width=mult_width),
        sampler=sampler_plan(artifact.sampler, serial=serial_sampler,
                             buffer=artifact.latent_dim, mult_width=mult_width),
        mult_width=mult_width)
