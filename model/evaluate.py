"""Float vs quantized: evaluation, the sigmoid unit's error, a derived error bound, reports.

:mod:`model.quantize` builds the artifact; this module measures it against
the float model it came from (the golden model's outputs vs the float64
reference on a test split), and assembles ``quant_report.json``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from model.artifact import Artifact
from model.fixed import LOGVAR_RANGE, SIGMOID_KINDS, SigmoidSpec, sigmoid
from model.golden import GoldenModel, Sampler
from model.quantize import (
    WEIGHT_RULES, Calibration, RangeCheck, build_artifact, choose_formats, float64_copy,
    modules_by_name,
)
from model.sampler_stats import exact_sampler_stats
from model.vae import VAE, kl_divergence, output_activation, reconstruction_loss

__all__ = ["sigmoid_unit_curves", "sigmoid_unit_error", "recon_error_bound", "evaluate",
           "wbits_sweep", "quant_report"]


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
    net = float64_copy(model)
    modules = modules_by_name(net)
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
    net = float64_copy(model)
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
        net = float64_copy(model)
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
