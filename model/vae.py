"""The float reference VAE, its loss, and its checkpoint format.

The module layout of :class:`VAE` is a contract: :mod:`model.quantize` and
:mod:`model.golden` walk ``encoder_layers``, ``enc_head``, ``decoder_layers``
and ``dec_out`` by name.  The output activation is the same polynomial the
hardware evaluates (:data:`model.fixed.SIGMOID_KINDS`), so that
float-vs-quantized differences measure quantization only.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from model.fixed import LOGVAR_RANGE, SIGMOID_KINDS

__all__ = [
    "VAEConfig", "PRESETS", "SIGMOID_CHOICES", "make_config", "VAE", "output_activation",
    "kl_divergence", "reconstruction_loss", "batch_loss", "elbo",
    "Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint", "read_marked_torch_file",
]

SIGMOID_CHOICES = ("exact", *SIGMOID_KINDS)
RECON_CHOICES = ("bce", "mse")
CHECKPOINT_FORMAT = "fxvae-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class VAEConfig:
    """Everything that fixes the network's shape and its training objective.

    ``hidden`` lists the encoder's hidden widths; the decoder mirrors them
    (``latent -> hidden[::-1] -> input_dim``).  ``variational=False`` gives the
    plain autoencoder baseline: same layers, the decoder is fed ``mu``, no KL.
    ``recon_weight`` (C) scales the squared error of the ``mse`` loss; it is
    ``1/(2 s^2)`` of a Gaussian likelihood with per-feature noise ``s``.
    """

    preset: str
    input_dim: int
    hidden: list[int]
    latent_dim: int
    sigmoid: str = "taylor5"
    recon: str = "bce"
    recon_weight: float = 1.0
    beta: float = 1.0
    logvar_range: tuple[float, float] = LOGVAR_RANGE
    variational: bool = True

    def __post_init__(self):
        self.hidden = [int(width) for width in self.hidden]  # a copy: presets stay intact
        self.logvar_range = tuple(float(v) for v in self.logvar_range)
        if self.input_dim < 1:
            raise ValueError(f"input_dim must be >= 1, not {self.input_dim!r}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be a non-empty list of widths >= 1, not {self.hidden!r}")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, not {self.latent_dim!r}")
        if self.sigmoid not in SIGMOID_CHOICES:
            raise ValueError(f"sigmoid must be one of {', '.join(SIGMOID_CHOICES)}, "
                             f"not {self.sigmoid!r}")
        if self.recon not in RECON_CHOICES:
            raise ValueError(f"recon must be one of {', '.join(RECON_CHOICES)}, not {self.recon!r}")
        if not self.recon_weight > 0:
            raise ValueError(f"recon_weight must be > 0, not {self.recon_weight!r}")
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, not {self.beta!r}")
        low, high = self.logvar_range
        if not low < high:
            raise ValueError(f"logvar_range must be increasing, not {self.logvar_range!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Default configurations.
#:
#: ``mnist``: 784 -> 128 -> 10 latents, Bernoulli (BCE) likelihood.  All
#: weights at 8 bits are ~1.6 Mbit (784*128*2 + 128*20 + 10*128 words), 43 %
#: of the ECP5-85F's 3.7 Mbit block RAM, which leaves room to partition the
#: ROMs per lane; 4,000 training images do not support a much larger model;
#: and co-simulating 1,000 images stays fast.
#:
#: ``iris``: 4 -> 16 -> 2 latents, Gaussian (MSE) likelihood with C = 50,
#: i.e. per-feature noise s = 0.1 on the [0, 1] scale.  Measured (seed 0,
#: held-out ELBO in nats): C = 1 prices the whole squared error below one nat,
#: so the KL wins and the posterior collapses (ELBO -2.6, KL 0.0004); C = 10
#: uses one latent (0.95); C = 50 uses both and is best (2.24); C = 200
#: spends more KL than it gains (1.37).
PRESETS: dict[str, VAEConfig] = {
    "iris": VAEConfig(preset="iris", input_dim=4, hidden=[16], latent_dim=2,
                      recon="mse", recon_weight=50.0),
    "mnist": VAEConfig(preset="mnist", input_dim=784, hidden=[128], latent_dim=10,
                       recon="bce"),
}


def make_config(preset: str, **overrides) -> VAEConfig:
    """A fresh copy of a preset's configuration with ``overrides`` applied
    (``None`` values are ignored, so CLI defaults can pass through)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    changes = {key: value for key, value in overrides.items() if value is not None}
    return dataclasses.replace(PRESETS[preset], **changes)  # __post_init__ copies ``hidden``


def output_activation(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The output sigmoid: exact, or the hardware's clamped odd quintic."""
    if kind == "exact":
        return torch.sigmoid(logits)
    approx = SIGMOID_KINDS[kind]
    c1, c3, c5 = approx.coeffs
    x = torch.clamp(logits, -approx.input_clamp, approx.input_clamp)
    u = x * x
    return torch.clamp(0.5 + x * (c1 + u * (c3 + u * c5)), 0.0, 1.0)


class VAE(nn.Module):
    """MLP VAE: ``[Linear, ReLU]* -> enc_head = [mu | logvar]``, then
    ``[Linear, ReLU]* -> dec_out -> output_activation``."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        widths = [config.input_dim, *config.hidden]
        self.encoder_layers = nn.ModuleList(
            nn.Linear(n_in, n_out) for n_in, n_out in zip(widths, widths[1:]))
        self.enc_head = nn.Linear(config.hidden[-1], 2 * config.latent_dim)
        widths = [config.latent_dim, *config.hidden[::-1]]
        self.decoder_layers = nn.ModuleList(
            nn.Linear(n_in, n_out) for n_in, n_out in zip(widths, widths[1:]))
        self.dec_out = nn.Linear(config.hidden[0], config.input_dim)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x
        for layer in self.encoder_layers:
            h = torch.relu(layer(h))
        mu, logvar = self.enc_head(h).split(self.config.latent_dim, dim=-1)
        return mu, torch.clamp(logvar, *self.config.logvar_range)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        for layer in self.decoder_layers:
            h = torch.relu(layer(h))
        return self.dec_out(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return output_activation(self.decode_logits(z), self.config.sigmoid)

    def latent(self, mu, logvar, generator=None) -> torch.Tensor:
        """The decoder's input: a posterior sample while training a VAE, else
        ``mu`` (evaluation, and always for the plain autoencoder)."""
        if self.training and self.config.variational:
            return self.reparameterize(mu, logvar, generator)
        return mu

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        mu, logvar = self.encode(x)
        return self.decode(self.latent(mu, logvar, generator)), mu, logvar


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, in nats (closed form)."""
    return 0.5 * torch.sum(mu * mu + torch.exp(logvar) - 1.0 - logvar, dim=-1)


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, config: VAEConfig) -> torch.Tensor:
    """Per-sample negative log-likelihood up to a constant: BCE summed over
    features (probabilities clamped so the polynomial's exact 0/1 is finite),
    or C times the summed squared error."""
    if config.recon == "bce":
        p = torch.clamp(x_hat, 1e-6, 1 - 1e-6)
        return -torch.sum(x * torch.log(p) + (1 - x) * torch.log1p(-p), dim=-1)
    return config.recon_weight * torch.sum((x_hat - x) ** 2, dim=-1)


def batch_loss(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None):
    """The training objective, averaged over the batch: recon + beta * KL
    (recon only for the plain autoencoder).  Returns (loss, recon, kl)."""
    x_hat, mu, logvar = model(x, generator)
    recon = reconstruction_loss(x_hat, x, model.config).mean()
    if not model.config.variational:
        return recon, recon, torch.zeros(())
    kl = kl_divergence(mu, logvar).mean()
    return recon + model.config.beta * kl, recon, kl


@torch.no_grad()
def elbo(model: VAE, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample ELBO in nats with one posterior sample (beta = 1, whatever
    the training beta).  For ``mse`` the Gaussian likelihood's normalising
    constant is included: ``log N(x; x_hat, 1/(2C))``."""
    mu, logvar = model.encode(x)
    x_hat = model.decode(model.reparameterize(mu, logvar, generator))
    nll = reconstruction_loss(x_hat, x, model.config)
    if model.config.recon == "mse":
        nll = nll + 0.5 * x.shape[-1] * math.log(math.pi / model.config.recon_weight)
    return -(nll + kl_divergence(mu, logvar))


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file."""


@dataclass
class Checkpoint:
    model: VAE
    config: VAEConfig
    data_info: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def save_checkpoint(path: str | Path, model: VAE, config: VAEConfig,
                    data_info: dict, metrics: dict) -> None:
    """Write a self-describing checkpoint (plain types only, so it loads with
    ``weights_only=True``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "config": config.to_dict(), "state_dict": model.state_dict(),
                "data_info": data_info, "metrics": metrics}, path)


def read_marked_torch_file(path: str | Path, marker: str, what: str, error: type) -> dict:
    """The dict a ``torch.save`` wrote with ``{"format": marker, ...}`` (plain types,
    loaded with ``weights_only=True``); anything else raises ``error`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError,
            zipfile.BadZipFile) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{path}: not a readable torch {what} ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != marker:
        raise error(f"{path}: not an fxvae {what} (no {marker!r} marker)")
    return payload


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`; the model is in
    eval mode.  Anything unusable raises :class:`CheckpointError`."""
    payload = read_marked_torch_file(path, CHECKPOINT_FORMAT, "checkpoint", CheckpointError)
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')!r}, "
                              f"this code reads version {CHECKPOINT_VERSION}")
    try:
        config = VAEConfig(**payload["config"])
        model = VAE(config)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not match the stored configuration "
                              f"({type(exc).__name__}: {reason})") from None
    model.eval()
    return Checkpoint(model, config, payload.get("data_info", {}), payload.get("metrics", {}))
