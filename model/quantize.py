"""Post-training quantization: calibrate, choose formats, build the artifact, check ranges.

Formats are per tensor and power-of-two scaled: a ``width``-bit format gets
just enough integer bits (plus sign) for the largest magnitude seen on the
TRAINING split, the rest is fraction (:func:`fmt_for`).  Calibrated tensors:
weights, biases, every layer's output, ``[mu | logvar]``, z (``mu +- 4 sigma``
and the generate range ``+-4``) and the logits.  Two clips are harmless and
are applied before taking the maximum: ReLU layers only need their positive
range (requantize and ReLU commute), and logits beyond the sigmoid's input
clamp give the same output as the clamp.  A format that cannot hold its
calibrated range (a user override) is reported, never silently wrapped.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from model.artifact import Artifact, DenseSpec
from model.fixed import LOGVAR_RANGE, SIGMOID_KINDS, Fmt, sampler_spec, sigma_rom_spec, sigmoid_spec
from model.tables import format_table
from model.vae import VAE

__all__ = ["Z_SIGMAS", "GENERATE_RANGE", "layer_modules", "modules_by_name", "float64_copy",
           "Calibration", "calibrate", "saturates", "fmt_for", "parse_override", "WEIGHT_RULES",
           "weight_fmt", "Plan", "choose_formats", "build_artifact", "RangeCheck", "range_checks",
           "range_table", "quantize_model"]

#: z must hold mu +- Z_SIGMAS * sigma (recon_sample) and +-GENERATE_RANGE (generate).
Z_SIGMAS = 4.0
GENERATE_RANGE = 4.0


def layer_modules(model: VAE) -> tuple[list, list]:
    """``(name, nn.Linear, activation)`` for the encoder and the decoder, in order."""
    encoder = [(f"enc{i}", layer, "relu") for i, layer in enumerate(model.encoder_layers)]
    decoder = [(f"dec{i}", layer, "relu") for i, layer in enumerate(model.decoder_layers)]
    return ([*encoder, ("enc_head", model.enc_head, "linear")],
            [*decoder, ("dec_out", model.dec_out, "linear")])


def modules_by_name(model: VAE) -> dict:
    """Layer name -> ``nn.Linear``."""
    encoder, decoder = layer_modules(model)
    return {name: layer for name, layer, _ in encoder + decoder}


def float64_copy(model: VAE) -> VAE:
    """An evaluation-mode float64 copy (the reference every error is measured against)."""
    return copy.deepcopy(model).double().eval()


# --------------------------------------------------------------------------
# Calibration


@dataclass
class Calibration:
    """Values the float model produces on the training split (float64), by tensor:
    ``input``, each layer's name (after the harmless clips), and ``z``."""

    values: dict[str, np.ndarray]

    def max_abs(self, name: str) -> float:
        return float(np.max(np.abs(self.values[name])))


@torch.no_grad()
def calibrate(model: VAE, x_train: np.ndarray, sigmoid_kind: str, seed: int = 0) -> Calibration:
    """Run the float model over ``x_train`` in every mode's datapath.

    The decoder sees z from all three decoding modes: ``mu``, ``mu + sigma*eps``
    and ``eps`` (generate), with ``eps`` drawn from N(0, 1) (seeded).
    """
    net = float64_copy(model)
    encoder, decoder = layer_modules(net)
    x = torch.from_numpy(np.asarray(x_train, dtype=np.float64))
    values = {"input": x}
    h = x
    for name, layer, activation in encoder:
        h = layer(h)
        h = torch.relu(h) if activation == "relu" else h
        values[name] = h
    mu, logvar = h.split(net.config.latent_dim, dim=-1)
    logvar = torch.clamp(logvar, *LOGVAR_RANGE)
    values["enc_head"] = torch.cat([mu, logvar], dim=1)  # raw logvar beyond the clamp is moot
    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed), dtype=mu.dtype)
    reach = torch.full((1, mu.shape[1]), GENERATE_RANGE, dtype=mu.dtype)
    values["z"] = torch.cat([mu + Z_SIGMAS * sigma, mu - Z_SIGMAS * sigma, reach, -reach])
    h = torch.cat([mu, mu + sigma * eps, eps])
    for name, layer, activation in decoder:
        h = layer(h)
        h = torch.relu(h) if activation == "relu" else h
        values[name] = h
    clamp = SIGMOID_KINDS[sigmoid_kind].input_clamp
    values["dec_out"] = torch.clamp(h, -clamp, clamp)
    return Calibration({name: value.numpy() for name, value in values.items()})


# --------------------------------------------------------------------------
# Formats


def saturates(values, fmt: Fmt) -> np.ndarray:
    """Which ``values`` (reals) :meth:`Fmt.quantize` would saturate in ``fmt``: those
    that round (by its rule) outside ``fmt``'s range, read in a format one bit wider."""
    rounded = Fmt(fmt.width + 1, fmt.frac).quantize(values)
    return (rounded > fmt.max_int) | (rounded < fmt.min_int)


def fmt_for(max_abs: float, width: int) -> Fmt:
    """The ``width``-bit format with the most fraction bits in which ``+-max_abs``
    round without saturating."""
    int_bits = math.floor(math.log2(max_abs)) + 1 if max_abs > 0 else 0
    fmt = Fmt(width, width - 1 - int_bits)
    while saturates([max_abs, -max_abs], fmt).any():  # max_abs may round up past the top
        fmt = Fmt(width, fmt.frac - 1)
    return fmt


def _parse_choice(text: str, where: str) -> int | Fmt | None:
    """``""`` (default), ``"8"`` (a width; integer bits from calibration) or ``"8.7"``
    (width.frac, taken as given)."""
    if not text:
        return None
    try:
        parts = [int(part) for part in text.split(".")]
        if len(parts) == 1:
            return Fmt(parts[0], 0).width
        if len(parts) == 2:
            return Fmt(*parts)
    except (ValueError, TypeError):
        pass
    raise ValueError(f"{where}: {text!r} is neither a width (8) nor width.frac (8.7)")


def parse_override(text: str) -> tuple[str, int | Fmt | None, int | Fmt | None]:
    """``"LAYER:W,A"`` -> (layer, weight choice, output choice); W and A are each a
    width, ``width.frac`` or empty (keep the default)."""
    layer, sep, rest = text.partition(":")
    weights, comma, acts = rest.partition(",")
    if not (sep and comma and layer):
        raise ValueError(f"override {text!r} is not LAYER:WBITS,ABITS (e.g. dec_out:6,12.9)")
    return layer, _parse_choice(weights, text), _parse_choice(acts, text)


#: How a weight format's integer bits are chosen: ``max`` holds the largest
#: weight; ``mse`` picks, among that format and up to MSE_EXTRA_FRAC_BITS finer
#: ones, the one with the least squared quantization error, clipping outliers
#: (much better at 4 bits; the clipping shows up in the range report).
WEIGHT_RULES = ("max", "mse")
MSE_EXTRA_FRAC_BITS = 3


def weight_fmt(weight: np.ndarray, width: int, rule: str = "max") -> Fmt:
    if rule not in WEIGHT_RULES:
        raise ValueError(f"weight rule must be one of {WEIGHT_RULES}, not {rule!r}")
    fmt = fmt_for(float(np.max(np.abs(weight))), width)
    if rule == "max":
        return fmt
    candidates = [Fmt(width, fmt.frac + extra) for extra in range(MSE_EXTRA_FRAC_BITS + 1)]
    return min(candidates,
               key=lambda f: float(np.sum((f.to_real(f.quantize(weight)) - weight) ** 2)))


@dataclass(frozen=True)
class Plan:
    """Every format of an artifact, before any weight is quantized.

    ``clipped``: layers whose weight format clips on purpose (rule ``mse``).
    """

    input_fmt: Fmt
    encoder: tuple[DenseSpec, ...]
    decoder: tuple[DenseSpec, ...]
    sigma_fmt: Fmt
    sigmoid_out_fmt: Fmt
    clipped: frozenset = frozenset()

    @property
    def layers(self) -> tuple[DenseSpec, ...]:
        return (*self.encoder, *self.decoder)


def choose_formats(model: VAE, calib: Calibration, wbits: int = 8, abits: int = 16,
                   overrides: list[tuple] | None = None, weight_rule: str = "max") -> Plan:
    """Per-tensor formats from the calibration; ``overrides`` from :func:`parse_override`
    (an explicit ``width.frac`` is taken as given)."""
    encoder, decoder = layer_modules(model)
    names = [name for name, _, _ in encoder + decoder]
    chosen = {}
    for name, w_choice, a_choice in overrides or []:
        if name not in names:
            raise ValueError(f"override names layer {name!r}; layers are {', '.join(names)}")
        chosen[name] = (w_choice, a_choice)
    clipped = set()

    def chain(modules, in_fmt: Fmt) -> tuple[DenseSpec, ...]:
        specs = []
        for name, layer, activation in modules:
            w_choice, a_choice = chosen.get(name, (None, None))
            if isinstance(w_choice, Fmt):
                w_fmt = w_choice
            else:
                w_fmt = weight_fmt(layer.weight.detach().double().numpy(),
                                   wbits if w_choice is None else w_choice, weight_rule)
                if weight_rule == "mse":
                    clipped.add(name)
            out_fmt = a_choice if isinstance(a_choice, Fmt) else fmt_for(
                calib.max_abs(name), abits if a_choice is None else a_choice)
            specs.append(DenseSpec(name, layer.in_features, layer.out_features, in_fmt, w_fmt,
                                   out_fmt, activation))
            in_fmt = out_fmt
        return tuple(specs)

    input_fmt = fmt_for(1.0, abits)  # features are scaled to [0, 1]
    return Plan(input_fmt, chain(encoder, input_fmt),
                chain(decoder, fmt_for(calib.max_abs("z"), abits)),
                sigma_fmt=fmt_for(math.exp(LOGVAR_RANGE[1] / 2), abits),
                sigmoid_out_fmt=Fmt(abits, abits - 2), clipped=frozenset(clipped))


def build_artifact(model: VAE, plan: Plan, sigmoid_kind: str, correction: str = "teichroew",
                   seed: int = 1, meta: dict | None = None) -> Artifact:
    """Quantize the weights (round half up, saturate) into ``plan``'s formats."""
    if tuple(model.config.logvar_range) != LOGVAR_RANGE:
        raise ValueError(f"the model clamps logvar to {model.config.logvar_range}, the hardware "
                         f"to {LOGVAR_RANGE}")
    modules = modules_by_name(model)
    weights, biases = {}, {}
    for spec in plan.layers:
        layer = modules[spec.name]
        weights[spec.name] = spec.w_fmt.quantize(layer.weight.detach().double().numpy())
        biases[spec.name] = spec.bias_fmt.quantize(layer.bias.detach().double().numpy())
    head = plan.encoder[-1]
    return Artifact(
        preset=model.config.preset, input_dim=model.config.input_dim,
        latent_dim=model.config.latent_dim, input_fmt=plan.input_fmt,
        encoder=list(plan.encoder), decoder=list(plan.decoder), weights=weights, biases=biases,
        sigmoid=sigmoid_spec(sigmoid_kind, plan.decoder[-1].out_fmt, plan.sigmoid_out_fmt),
        sigma_rom=sigma_rom_spec(head.out_fmt, plan.sigma_fmt),
        sampler=sampler_spec(correction, seed), meta=dict(meta or {}))


# --------------------------------------------------------------------------
# Range report


@dataclass(frozen=True)
class RangeCheck:
    """A tensor's calibrated range against its format's."""

    tensor: str
    fmt: Fmt
    max_abs: float
    n_saturated: int
    n_values: int
    intended: bool = False  # weights clipped by the ``mse`` rule

    @property
    def narrow(self) -> bool:
        return self.n_saturated > 0

    def message(self) -> str:
        why = " (clipped on purpose by the mse weight rule)" if self.intended else ""
        return (f"{self.tensor}: calibrated range +-{self.max_abs:.4g} exceeds {self.fmt} "
                f"[{self.fmt.min_real:.4g}, {self.fmt.max_real:.4g}]: {self.n_saturated} of "
                f"{self.n_values} calibration values saturate{why}")

    def to_json(self) -> dict:
        return {"tensor": self.tensor, "fmt": str(self.fmt), "range": [self.fmt.min_real,
                self.fmt.max_real], "lsb": self.fmt.lsb, "calibrated_max_abs": self.max_abs,
                "n_saturated": self.n_saturated, "n_values": self.n_values,
                "intended": self.intended}


def _check(tensor: str, values: np.ndarray, fmt: Fmt, intended: bool = False) -> RangeCheck:
    n_sat = int(np.count_nonzero(saturates(values, fmt)))
    return RangeCheck(tensor, fmt, float(np.max(np.abs(values))), n_sat, int(np.size(values)),
                      intended)


def range_checks(model: VAE, plan: Plan, calib: Calibration) -> list[RangeCheck]:
    """Every calibrated tensor against its format (weights, biases, activations, z)."""
    modules = modules_by_name(model)
    checks = [_check("input", calib.values["input"], plan.input_fmt),
              _check("z", calib.values["z"], plan.decoder[0].in_fmt)]
    for spec in plan.layers:
        layer = modules[spec.name]
        checks += [_check(f"{spec.name}.weight", layer.weight.detach().double().numpy(), spec.w_fmt,
                          spec.name in plan.clipped),
                   _check(f"{spec.name}.bias", layer.bias.detach().double().numpy(), spec.bias_fmt),
                   _check(f"{spec.name}.out", calib.values[spec.name], spec.out_fmt)]
    return checks


def range_table(checks: list[RangeCheck]) -> str:
    """Every tensor's format, its range and its calibrated range, as text."""
    return format_table(("tensor", "format", "range", "calib max", "saturated"), [
        (c.tensor, c.fmt, f"[{c.fmt.min_real:.4g}, {c.fmt.max_real:.4g}]", f"{c.max_abs:.4g}",
         f"{c.n_saturated}/{c.n_values}") for c in checks])


# --------------------------------------------------------------------------
# The in-memory entry point


def quantize_model(model: VAE, x_train: np.ndarray, *, wbits: int = 8, abits: int = 16,
                   overrides: list[tuple] | None = None, sigmoid_kind: str | None = None,
                   correction: str = "teichroew", seed: int = 1, meta: dict | None = None,
                   calib: Calibration | None = None, weight_rule: str = "max"
                   ) -> tuple[Artifact, Plan, Calibration, list[RangeCheck]]:
    """Calibrate on ``x_train``, choose formats, quantize: the in-memory entry point.

    ``sigmoid_kind`` defaults to the model's own (``minimax5`` for an
    ``exact`` model: the hardware has no exact sigmoid).
    """
    if sigmoid_kind is None:
        sigmoid_kind = model.config.sigmoid if model.config.sigmoid in SIGMOID_KINDS else "minimax5"
    calib = calibrate(model, x_train, sigmoid_kind) if calib is None else calib
    plan = choose_formats(model, calib, wbits, abits, overrides, weight_rule)
    artifact = build_artifact(model, plan, sigmoid_kind, correction, seed, meta)
    return artifact, plan, calib, range_checks(model, plan, calib)
