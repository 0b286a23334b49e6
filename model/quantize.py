"""Post-training quantization: calibrate, choose formats, build the artifact, report.

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
from model.fixed import (
    LOGVAR_RANGE, SIGMOID_KINDS, Fmt, SigmoidSpec, sampler_spec, sigma_rom_spec, sigmoid,
    sigmoid_spec,
)
from model.golden import GoldenModel, Sampler, exact_sampler_stats
from model.vae import VAE, kl_divergence, output_activation, reconstruction_loss

__all__ = ["Z_SIGMAS", "GENERATE_RANGE", "layer_modules", "Calibration", "calibrate", "fmt_for",
           "parse_override", "WEIGHT_RULES", "weight_fmt", "Plan", "choose_formats",
           "build_artifact", "RangeCheck",
           "range_checks", "format_table", "sigmoid_unit_curves", "sigmoid_unit_error",
           "recon_error_bound", "evaluate", "wbits_sweep", "quantize_model", "quant_report"]

#: z must hold mu +- Z_SIGMAS * sigma (recon_sample) and +-GENERATE_RANGE (generate).
Z_SIGMAS = 4.0
GENERATE_RANGE = 4.0


def layer_modules(model: VAE) -> tuple[list, list]:
    """``(name, nn.Linear, activation)`` for the encoder and the decoder, in order."""
    encoder = [(f"enc{i}", layer, "relu") for i, layer in enumerate(model.encoder_layers)]
    decoder = [(f"dec{i}", layer, "relu") for i, layer in enumerate(model.decoder_layers)]
    return ([*encoder, ("enc_head", model.enc_head, "linear")],
            [*decoder, ("dec_out", model.dec_out, "linear")])


def _modules_by_name(model: VAE) -> dict:
    encoder, decoder = layer_modules(model)
    return {name: layer for name, layer, _ in encoder + decoder}


def _float64(model: VAE) -> VAE:
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
    net = _float64(model)
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


def fmt_for(max_abs: float, width: int) -> Fmt:
    """The ``width``-bit format with the most fraction bits in which ``+-max_abs``
    round without saturating."""
    int_bits = math.floor(math.log2(max_abs)) + 1 if max_abs > 0 else 0
    fmt = Fmt(width, width - 1 - int_bits)
    while math.floor(max_abs * 2.0 ** fmt.frac + 0.5) > fmt.max_int:  # rounds up past the top
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
    modules = _modules_by_name(model)
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
    scaled = np.floor(np.asarray(values, dtype=np.float64) * 2.0 ** fmt.frac + 0.5)
    n_sat = int(np.count_nonzero((scaled > fmt.max_int) | (scaled < fmt.min_int)))
    return RangeCheck(tensor, fmt, float(np.max(np.abs(values))), n_sat, int(np.size(values)),
                      intended)


def range_checks(model: VAE, plan: Plan, calib: Calibration) -> list[RangeCheck]:
    """Every calibrated tensor against its format (weights, biases, activations, z)."""
    modules = _modules_by_name(model)
    checks = [_check("input", calib.values["input"], plan.input_fmt),
              _check("z", calib.values["z"], plan.decoder[0].in_fmt)]
    for spec in plan.layers:
        layer = modules[spec.name]
        checks += [_check(f"{spec.name}.weight", layer.weight.detach().double().numpy(), spec.w_fmt,
                          spec.name in plan.clipped),
                   _check(f"{spec.name}.bias", layer.bias.detach().double().numpy(), spec.bias_fmt),
                   _check(f"{spec.name}.out", calib.values[spec.name], spec.out_fmt)]
    return checks


def format_table(checks: list[RangeCheck]) -> str:
    rows = [("tensor", "format", "range", "calib max", "saturated")]
    rows += [(c.tensor, str(c.fmt), f"[{c.fmt.min_real:.4g}, {c.fmt.max_real:.4g}]",
              f"{c.max_abs:.4g}", f"{c.n_saturated}/{c.n_values}") for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


# --------------------------------------------------------------------------
# Error analysis


def _approx(x: np.ndarray, kind: str) -> np.ndarray:
    return output_activation(torch.from_numpy(np.asarray(x, dtype=np.float64)), kind).numpy()


def sigmoid_unit_curves(spec: SigmoidSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(every representable input, the unit's output, the real approximant), all real."""
    x_int = np.arange(spec.in_fmt.min_int, spec.in_fmt.max_int + 1)
    x = spec.in_fmt.to_real(x_int)
    return x, spec.out_fmt.to_real(sigmoid(x_int, spec)), _approx(x, spec.kind)


def sigmoid_unit_error(spec: SigmoidSpec) -> dict:
    """The integer sigmoid unit over every representable input vs the exact sigmoid.

    Also the approximant's own worst error (on the same inputs, and over all
    reals: a fine grid inside the clamp plus the constant tails beyond it),
    and the arithmetic's error: unit vs the real approximant at the same input.
    """
    from scipy.special import expit

    x, unit, approx = sigmoid_unit_curves(spec)
    clamp = SIGMOID_KINDS[spec.kind].input_clamp
    grid = np.linspace(-clamp, clamp, 2_000_001)
    tail = abs(1.0 - _approx(np.array([clamp]), spec.kind)[0])  # |x| -> inf beyond the clamp
    unit_err = float(np.max(np.abs(unit - expit(x))))
    approx_on_inputs = float(np.max(np.abs(approx - expit(x))))
    arith = float(np.max(np.abs(unit - approx)))
    return {"kind": spec.kind, "in_fmt": str(spec.in_fmt), "out_fmt": str(spec.out_fmt),
            "out_lsb": spec.out_fmt.lsb, "n_inputs": int(x.size),
            "unit_max_error": unit_err,
            "approx_max_error_on_inputs": approx_on_inputs,
            "approx_max_error_all_reals": max(float(np.max(np.abs(_approx(grid, spec.kind)
                                                                   - expit(grid)))), tail),
            "arith_max_error": arith, "arith_max_error_lsb": arith / spec.out_fmt.lsb,
            "unit_within_approx_plus_1lsb": unit_err <= approx_on_inputs + spec.out_fmt.lsb}


def _approx_lipschitz(kind: str) -> float:
    """max |p'(x)| over the clamp range: p' = c1 + 3 c3 u + 5 c5 u^2 with u = x^2."""
    (c1, c3, c5), clamp = SIGMOID_KINDS[kind].coeffs, SIGMOID_KINDS[kind].input_clamp
    candidates = [0.0, clamp ** 2]
    if c5 != 0 and 0 < -3 * c3 / (10 * c5) < clamp ** 2:
        candidates.append(-3 * c3 / (10 * c5))
    return max(abs(c1 + 3 * c3 * u + 5 * c5 * u * u) for u in candidates)


@torch.no_grad()
def recon_error_bound(artifact: Artifact, model: VAE, x_real: np.ndarray,
                      sigmoid_arith_error: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature bound on |golden recon_mu - float64 model|, and the images it covers.

    With ``e`` the input error (``|x_q - x|``) each dense layer gives
    ``e' = |W| e + |W_q - W| |x_q| + |b_q - b| + r`` (``r`` = half an output LSB
    when requantizing drops bits; ReLU is 1-Lipschitz), mu -> z adds half a z
    LSB when z is coarser, and the sigmoid unit gives ``L e_logits + A``
    (``L`` = the approximant's largest slope, ``A`` = the unit's worst
    arithmetic error over all its inputs, ``sigmoid_arith_error``).  The
    reference uses the artifact's sigmoid kind.  Valid for images where no
    value saturates harmfully; returns (bound, per-image covered mask).
    """
    gm = GoldenModel(artifact)
    trace = gm.trace(gm.quantize_input(x_real))
    net = _float64(model)
    modules = _modules_by_name(net)
    covered = np.ones(len(x_real), dtype=bool)
    e = np.abs(trace["input"]["real"] - x_real)
    prev = "input"
    for spec in artifact.layers:
        if spec is artifact.decoder[0]:
            mu_fmt, z_fmt = artifact.mu_fmt, artifact.z_fmt
            e = e[:, :artifact.latent_dim] + (z_fmt.lsb / 2 if z_fmt.frac < mu_fmt.frac else 0)
            covered &= ~np.any(np.abs(trace["z"]["int"]) >= z_fmt.max_int, axis=1)
            prev = "z"
        w = modules[spec.name].weight.numpy()
        b = modules[spec.name].bias.numpy()
        w_err = np.abs(spec.w_fmt.to_real(artifact.weights[spec.name]) - w)
        b_err = np.abs(spec.bias_fmt.to_real(artifact.biases[spec.name]) - b)
        r = spec.out_fmt.lsb / 2 if spec.acc_frac > spec.out_fmt.frac else 0.0
        e = e @ np.abs(w).T + np.abs(trace[prev]["real"]) @ w_err.T + b_err + r
        out = trace[spec.name]["int"]
        if spec is artifact.encoder[-1]:
            out = out[:, :artifact.latent_dim]  # recon_mu never reads logvar
        harmless_logits = (spec is artifact.decoder[-1]  # saturating beyond the clamp is moot
                           and spec.out_fmt.max_int >= artifact.sigmoid.clamp_int)
        if not harmless_logits:
            saturated = out >= spec.out_fmt.max_int
            if spec.activation == "linear":
                saturated |= out <= spec.out_fmt.min_int
            covered &= ~np.any(saturated, axis=1)
        prev = spec.name
    bound = _approx_lipschitz(artifact.sigmoid.kind) * e + sigmoid_arith_error
    return bound, covered


# --------------------------------------------------------------------------
# Evaluation


def _psnr(mse: float) -> float:
    return 10 * math.log10(1.0 / mse) if mse > 0 else math.inf


def _elbo(x, x_hat, mu, logvar, model: VAE) -> float:
    """Mean ELBO in nats for given reconstructions (as :func:`model.vae.elbo`)."""
    x, x_hat, mu, logvar = (torch.from_numpy(np.asarray(a, dtype=np.float64))
                            for a in (x, x_hat, mu, logvar))
    nll = reconstruction_loss(x_hat, x, model.config)
    if model.config.recon == "mse":
        nll = nll + 0.5 * x.shape[-1] * math.log(math.pi / model.config.recon_weight)
    return float(-(nll + kl_divergence(mu, logvar)).mean())


@torch.no_grad()
def evaluate(artifact: Artifact, model: VAE, x_test: np.ndarray) -> dict:
    """Float vs quantized on ``x_test``: MSE, PSNR, ELBO (same eps for both: the
    sampler's), worst per-pixel error, encoder error, and the derived error bound."""
    net = _float64(model)
    x = np.asarray(x_test, dtype=np.float64)
    gm = GoldenModel(artifact)
    x_int = gm.quantize_input(x)
    out_fmt = artifact.sigmoid.out_fmt
    mu_f, logvar_f = (t.numpy() for t in net.encode(torch.from_numpy(x)))
    recon_f = net.decode(torch.from_numpy(mu_f)).numpy()
    recon_q = out_fmt.to_real(gm.run("recon_mu", x_int))
    mu_q, logvar_q = (artifact.mu_fmt.to_real(t) for t in gm.encode(x_int))
    logvar_q = np.clip(logvar_q, *LOGVAR_RANGE)

    sampler = Sampler(artifact.sampler)
    eps = artifact.sampler.eps_fmt.to_real(sampler.copy().draw(mu_f.size)).reshape(mu_f.shape)
    sample_q = out_fmt.to_real(gm.run("recon_sample", x_int, sampler=sampler))
    sample_f = net.decode(torch.from_numpy(mu_f + np.exp(logvar_f / 2) * eps)).numpy()

    float_mse = float(np.mean((recon_f - x) ** 2))
    quant_mse = float(np.mean((recon_q - x) ** 2))
    sig = sigmoid_unit_error(artifact.sigmoid)
    bound, covered = recon_error_bound(artifact, model, x, sig["arith_max_error"])
    ref = output_activation(net.decode_logits(torch.from_numpy(mu_f)), artifact.sigmoid.kind)
    diff = np.abs(recon_q - ref.numpy())
    return {
        "n_images": len(x), "float_mse": float_mse, "quant_mse": quant_mse,
        "mse_ratio": quant_mse / float_mse, "float_psnr": _psnr(float_mse),
        "quant_psnr": _psnr(quant_mse),
        "float_elbo": _elbo(x, sample_f, mu_f, logvar_f, model),
        "quant_elbo": _elbo(x, sample_q, mu_q, logvar_q, model),
        "float_sample_mse": float(np.mean((sample_f - x) ** 2)),
        "quant_sample_mse": float(np.mean((sample_q - x) ** 2)),
        "worst_pixel_error_vs_float": float(np.max(np.abs(recon_q - recon_f))),
        "worst_pixel_error_vs_input": float(np.max(np.abs(recon_q - x))),
        "mu_max_error": float(np.max(np.abs(mu_q - mu_f))),
        "logvar_max_error": float(np.max(np.abs(logvar_q - logvar_f))),
        "error_bound": {
            "reference": f"float64 model with the {artifact.sigmoid.kind} sigmoid",
            "images_covered": int(covered.sum()),
            "max_bound": float(bound[covered].max()) if covered.any() else None,
            "max_error": float(diff[covered].max()) if covered.any() else None,
            "holds": bool(np.all(diff[covered] <= bound[covered] + 1e-9))},
    }


def wbits_sweep(model: VAE, calib: Calibration, x_test: np.ndarray, bits, abits: int,
                sigmoid_kind: str, rules=WEIGHT_RULES) -> list[dict]:
    """Re-quantize (no retraining) at each weight width and weight rule; recon_mu MSE
    vs the float model's."""
    x = np.asarray(x_test, dtype=np.float64)
    with torch.no_grad():
        net = _float64(model)
        float_mse = float(np.mean((net(torch.from_numpy(x))[0].numpy() - x) ** 2))
    rows = []
    for rule in rules:
        for wbits in bits:
            plan = choose_formats(model, calib, wbits, abits, weight_rule=rule)
            art = build_artifact(model, plan, sigmoid_kind)
            gm = GoldenModel(art)
            recon = art.sigmoid.out_fmt.to_real(gm.run("recon_mu", gm.quantize_input(x)))
            mse = float(np.mean((recon - x) ** 2))
            rows.append({"rule": rule, "wbits": wbits, "quant_mse": mse,
                         "mse_ratio": mse / float_mse})
    return rows


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


def quant_report(artifact: Artifact, model: VAE, x_test: np.ndarray,
                 checks: list[RangeCheck]) -> dict:
    """Everything ``quant_report.json`` holds, measured on ``x_test``."""
    art = artifact
    units = {"sigma": str(art.sigma_rom.sigma_fmt), "eps": str(art.sampler.eps_fmt),
             "sigmoid_in": str(art.sigmoid.in_fmt), "sigmoid_out": str(art.sigmoid.out_fmt),
             "sigma_rom_depth": art.sigma_rom.depth}
    return {**evaluate(art, model, x_test),
            "sigmoid_max_error": sigmoid_unit_error(art.sigmoid),
            "gaussian_ks": exact_sampler_stats(art.sampler),
            "formats": [check.to_json() for check in checks], "unit_formats": units,
            "range_warnings": [check.message() for check in checks
                               if check.narrow and not check.intended],
            "range_notes": [check.message() for check in checks if check.narrow and check.intended]}
