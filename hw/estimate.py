"""Analytic cycle and resource model of the generated hardware.

FINN-style: every hardware op carries its own estimate beside it.  The cycle
model is *exact* for the situation it describes (one image into an idle
core, the input offered one word per clock, ``o`` always ready): it follows
every word through the pipeline timing documented in :mod:`hw.dense`
(``issue -> +3 accumulator -> capture -> +1 on o``) and the fixed latencies
of the latent unit and the sigmoid, so the simulated count must equal it;
``tests/test_hw_core.py`` checks that.  Resources are counted from the same
parameters the generator uses (lanes, passes, formats).
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

import numpy as np
from dataclasses import asdict, dataclass, field

from model.artifact import Artifact, DenseSpec
from model.fixed import MODES

from .dense import PIPELINE_DEPTH

__all__ = ["dense_timing", "normalize_lanes", "parse_lanes", "LayerEstimate", "CoreEstimate", "estimate"]


def normalize_lanes(artifact: Artifact, lanes) -> list[int]:
    """One lane count per layer (encoder then decoder) from an int or a sequence."""
    layers = artifact.layers
    if isinstance(lanes, bool):
        raise TypeError(f"lanes must be an int or a sequence of ints, not {lanes!r}")
    if isinstance(lanes, (int, np.integer)):
        lanes = [int(lanes)] * len(layers)
    else:
        try:
            lanes = list(lanes)
        except TypeError:
            raise TypeError(f"lanes must be an int or a sequence of ints, not {lanes!r}") from None
        if len(lanes) != len(layers):
            names = ", ".join(spec.name for spec in layers)
            raise ValueError(f"lanes needs one value per layer ({len(layers)}: {names}), "
                             f"not {len(lanes)}")
    for value in lanes:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"lanes must be ints, not {value!r}")
        if value < 1:
            raise ValueError(f"lanes must be at least 1, not {value}")
    return [int(value) for value in lanes]


def parse_lanes(text: str):
    """Lanes from a command line (an argparse ``type``): ``16``, or one per layer ``64,20,16,64``."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"lanes must be an int or a comma-separated list of "
                                         f"ints, not {text!r}") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"lanes must be at least 1, not {text!r}")
    return values[0] if len(values) == 1 else values


def dense_timing(spec: DenseSpec, lanes: int, in_times) -> list[int]:
    """Cycle of every output word of one vector into an idle :class:`hw.dense.Dense`.

    ``in_times[i]``: the cycle input word ``i`` is offered (and, in pass 0,
    taken).  ``o`` is assumed always ready.  Pass ``p`` becomes ready to
    capture at ``r_p`` (``r_0 = last input + 3``, ``r_p = c_{p-1} + n_in``),
    is captured at ``c_p = max(r_p, bank free)``, the bank is free again at
    ``c_p + cnt_p + 1`` and its words leave at ``c_p + 1 .. c_p + cnt_p``.
    """
    n_in = spec.n_in
    if len(in_times) != n_in:
        raise ValueError(f"need {n_in} input times, not {len(in_times)}")
    times = list(in_times)
    for a, b in zip(times, times[1:]):
        if b <= a:
            raise ValueError("input times must increase")
    passes = -(-spec.n_out // lanes)
    out = []
    free = -1
    capture = None
    for p in range(passes):
        ready = times[-1] + PIPELINE_DEPTH if p == 0 else capture + n_in
        capture = max(ready, free)
        count = lanes if p < passes - 1 else spec.n_out - (passes - 1) * lanes
        out.extend(capture + 1 + q for q in range(count))
        free = capture + count + 1
    return out


@dataclass
class LayerEstimate:
    name: str
    n_in: int
    n_out: int
    lanes: int
    passes: int
    macs: int
    first_in: int          # cycle of the first input word (relative to job start)
    last_out: int          # cycle of the last output word
    cycles: int            # last_out - first_in + 1
    ideal_cycles: float    # macs / lanes
    multipliers: dict      # "AxB" -> count
    weight_rom_bits: int
    bias_rom_bits: int
    buffer_bits: int
    register_bits: int


@dataclass
class CoreEstimate:
    lanes: list[int]
    layers: list[LayerEstimate]
    cycles: dict           # mode -> cycles from cmd accept to last output, one image
    macs_per_image: dict   # mode -> MACs
    ideal_cycles: dict     # mode -> sum over its layers of macs / lanes
    multipliers: dict
    rom_bits: dict
    ram_bits: int
    register_bits: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------
# Block figures


def _silenced(component):
    """Mark a component built only to read its figures as intentionally unused."""
    component._MustUse__silence = True
    return component


def _bits(n: int) -> int:
    """Register bits of a counter over ``range(n)``."""
    return max(1, (max(n, 2) - 1).bit_length())


def _poly_figures(poly, x_span) -> tuple[list[str], int]:
    """Multipliers ("AxB", signed widths) and register bits of ``hw.arith.odd_poly_stages``.

    Mirrors that function's span analysis: ``u = x*x``, one ``u*acc`` per
    Horner step (the first against a constant, not counted), ``x*acc``.
    """
    from .arith import Span
    cf = poly.coef_frac
    mults: list[str] = []
    regs = 0
    acc_span = Span(poly.coeffs_int[-1], poly.coeffs_int[-1])
    x_w = x_span.shape().width
    if len(poly.coeffs_int) > 1:
        mults.append(f"{x_w}x{x_w}")
        u_span = x_span.square().round_shift(2 * poly.v_frac - cf)
        u_w = u_span.shape().width
        regs += u_w + x_w
        for step, coeff in enumerate(reversed(poly.coeffs_int[:-1])):
            if step:
                mults.append(f"{u_w}x{acc_span.shape().width}")
            acc_span = (u_span * acc_span).round_shift(cf) + coeff
            regs += acc_span.shape().width + u_w + x_w
    mults.append(f"{x_w}x{acc_span.shape().width}")
    y_span = (x_span * acc_span).round_shift(poly.v_frac + cf - poly.out_frac)
    regs += y_span.shape().width
    return mults, regs


def _dense_registers(spec: DenseSpec, lanes: int) -> int:
    passes = -(-spec.n_out // lanes)
    prod_w = spec.in_fmt.width + spec.w_fmt.width
    per_lane = prod_w + spec.acc_width                           # product, accumulator
    # output bank: bank[0] holds the requantized output word, bank[1:] raw sums
    bank = spec.out_fmt.width + (lanes - 1) * spec.acc_width
    counters = _bits(spec.n_in) + 4 * _bits(passes) + _bits(passes * spec.n_in) + _bits(lanes + 1)
    control = 8                                                  # valid/first/last/done flags
    return lanes * per_lane + bank + spec.in_fmt.width + counters + control


def estimate(artifact: Artifact, lanes) -> CoreEstimate:
    """Cycles, multipliers, memory and register bits of ``VAECore(artifact, lanes)``.

    ``cycles[mode]`` is the job period for one image: from the clock the
    ``cmd`` is taken (cycle 0) to the clock the next ``cmd`` can be taken
    (one after the last output), with the input offered one word per clock
    from cycle 1 and ``o`` always ready.  ``ideal_cycles[mode]`` is the
    physical limit ``sum(MACs_layer / lanes_layer)`` over the layers the mode
    uses (layers run one after another within an image).
    """
    from .arith import Reparam, SigmaRom, Span, TaylorSigmoid
    from .sampler import GaussianSampler
    from model.fixed import IRWIN_HALL_OFFSET, N_UNIFORMS, UNIFORM_BITS

    lanes = normalize_lanes(artifact, lanes)
    art = artifact
    L = art.latent_dim
    n_enc = len(art.encoder)
    sig = _silenced(TaylorSigmoid(art.sigmoid))
    rom = _silenced(SigmaRom(art.sigma_rom))
    smp = _silenced(GaussianSampler(art.sampler))
    rep = _silenced(Reparam(art.mu_fmt, art.sigma_rom.sigma_fmt, art.sampler.eps_fmt, art.z_fmt))
    latent_latency = rom.latency + rep.latency

    def chain(specs, lane_list, times, records):
        for spec, ln in zip(specs, lane_list):
            out = dense_timing(spec, ln, times)
            records[spec.name] = (times[0], out[-1])
            times = out
        return times

    cycles, macs, ideal = {}, {}, {}
    spans: dict[str, tuple[int, int]] = {}
    for mode in MODES:
        records: dict[str, tuple[int, int]] = {}
        used = []
        if mode == "generate":
            z_in = [1 + L + d + latent_latency for d in range(L)]
        else:
            head = chain(art.encoder, lanes[:n_enc], [1 + j for j in range(art.input_dim)], records)
            used += list(range(n_enc))
            if mode == "encode":
                last = head[-1]
            z_in = [t + latent_latency for t in head[L:]]
        if mode != "encode":
            logits = chain(art.decoder, lanes[n_enc:], z_in, records)
            used += list(range(n_enc, len(art.layers)))
            last = logits[-1] + sig.latency
        cycles[mode] = last + 1
        layer_list = [art.layers[k] for k in used]
        macs[mode] = sum(s.n_in * s.n_out for s in layer_list)
        ideal[mode] = sum(art.layers[k].n_in * art.layers[k].n_out / min(lanes[k], art.layers[k].n_out)
                          for k in used)
        if mode in ("recon_mu",):
            spans.update(records)
        if mode == "generate":
            spans.update({k: v for k, v in records.items() if k not in spans})

    layers = []
    mults: Counter = Counter()
    weight_bits = bias_bits = buffer_bits = regs = 0
    for spec, ln in zip(art.layers, lanes):
        ln = min(ln, spec.n_out)  # as hw.dense.Dense clamps it
        passes = -(-spec.n_out // ln)
        first_in, last_out = spans[spec.name]
        mult = Counter({f"{spec.in_fmt.width}x{spec.w_fmt.width}": ln})
        wb = ln * passes * spec.n_in * spec.w_fmt.width
        bb = ln * passes * (spec.acc_width - 1)
        buf = spec.n_in * spec.in_fmt.width if passes > 1 else 0
        rb = _dense_registers(spec, ln)
        layers.append(LayerEstimate(
            name=spec.name, n_in=spec.n_in, n_out=spec.n_out, lanes=ln, passes=passes,
            macs=spec.n_in * spec.n_out, first_in=first_in, last_out=last_out,
            cycles=last_out - first_in + 1, ideal_cycles=spec.n_in * spec.n_out / ln,
            multipliers=dict(mult), weight_rom_bits=wb, bias_rom_bits=bb, buffer_bits=buf,
            register_bits=rb))
        mults.update(mult)
        weight_bits += wb
        bias_bits += bb
        buffer_bits += buf
        regs += rb

    # latent unit: sigma ROM, reparam multiplier, mu registers, sampler
    mults[f"{art.sigma_rom.sigma_fmt.width}x{art.sampler.eps_fmt.width}"] += 1
    sigma_bits = art.sigma_rom.depth * art.sigma_rom.sigma_fmt.width
    prod_w = art.sigma_rom.sigma_fmt.width + art.sampler.eps_fmt.width
    regs += L * art.mu_fmt.width + prod_w + art.mu_fmt.width + art.z_fmt.width + 2 * _bits(2 * L) + 4
    sig_in = Span(-art.sigmoid.clamp_int, art.sigmoid.clamp_int)
    sm, sr = _poly_figures(art.sigmoid.poly, sig_in)
    mults.update(sm)
    regs += sr + sig_in.shape().width + art.sigmoid.out_fmt.width + sig.latency
    regs += sum(lfsr_len for lfsr_len in (41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63))
    regs += N_UNIFORMS // 2 * (UNIFORM_BITS + 1) + N_UNIFORMS // 4 * (UNIFORM_BITS + 2) + 17
    if art.sampler.poly is not None:
        s_span = Span(-IRWIN_HALL_OFFSET, N_UNIFORMS * ((1 << UNIFORM_BITS) - 1) - IRWIN_HALL_OFFSET)
        pm, pr = _poly_figures(art.sampler.poly, s_span)
        mults.update(pm)
        regs += pr
    regs += smp.latency
    # core control: mode, busy, counters
    regs += 3 + _bits(art.input_dim + 1) + _bits(2 * L + 1) + _bits(max(art.input_dim, 2 * L) + 1)

    notes = [
        "cycles: cmd taken at cycle 0, input offered densely from cycle 1, o always ready; "
        "exact for the RTL (tests/test_hw_core.py), assuming the sampler is primed "
        f"({smp.latency} clocks after reset)",
        "multipliers 'AxB' are signed operand widths; constant multiplies are not counted",
        "rom_bits: weights and biases per lane (biases of single-pass layers are constants), "
        "sigma ROM; ram_bits: input buffers of multi-pass layers",
        "register_bits excludes memory read-port data registers (inside block RAM)",
    ]
    return CoreEstimate(
        lanes=lanes, layers=layers, cycles=cycles, macs_per_image=macs, ideal_cycles=ideal,
        multipliers=dict(sorted(mults.items())),
        rom_bits={"weights": weight_bits, "biases": bias_bits, "sigma": sigma_bits,
                  "total": weight_bits + bias_bits + sigma_bits},
        ram_bits=buffer_bits, register_bits=regs, notes=notes)
