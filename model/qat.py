"""Quantization-aware fine-tuning with the golden model's rounding.

:class:`QATVAE` runs the hardware datapath in PyTorch with fake quantization:
every tensor the golden model holds as an integer is rounded exactly as
:meth:`model.fixed.Fmt.quantize` does (``floor(x * 2**f + 0.5)``, saturate).
Gradients pass straight through the rounding; for activations they stop
where the value saturates (clipped STE), for weights and biases they do not,
so a parameter pushed past its format's range can come back.  In float64
and eval mode the logits equal the golden model's bit for bit (products and
sums are exact under :func:`model.golden.float64_exact`'s bound).  The
formats stay those of the float model's calibration.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from model.artifact import Artifact, DenseSpec
from model.fixed import LOGVAR_RANGE, Fmt
from model.quantize import layer_modules
from model.train import TrainSettings, train_model
from model.vae import VAE, output_activation

__all__ = ["fake_quant", "QATVAE", "finetune"]


def fake_quant(x: torch.Tensor, fmt: Fmt, clip_grad: bool = True) -> torch.Tensor:
    """Round half up and saturate to ``fmt`` in the forward pass; straight-through
    gradient (zero where saturated when ``clip_grad``)."""
    scale = 2.0 ** fmt.frac
    q = torch.clamp(torch.floor(x * scale + 0.5), fmt.min_int, fmt.max_int) / scale
    if clip_grad:
        x = torch.where((x >= fmt.min_real) & (x <= fmt.max_real), x, x.detach())
    return x + (q - x).detach()


class QATVAE(nn.Module):
    """A VAE whose forward pass is the quantized datapath of ``artifact``'s formats.

    Same interface as :class:`model.vae.VAE` for training (``config``,
    ``forward(x, generator)`` -> ``(x_hat, mu, logvar)``).
    """

    def __init__(self, model: VAE, artifact: Artifact):
        super().__init__()
        self.model = copy.deepcopy(model)
        self.config = self.model.config
        self.artifact = artifact
        encoder, decoder = layer_modules(self.model)
        specs = {spec.name: spec for spec in artifact.layers}
        self._encoder = [(specs[name], layer) for name, layer, _ in encoder]
        self._decoder = [(specs[name], layer) for name, layer, _ in decoder]

    @staticmethod
    def _dense(spec: DenseSpec, layer: nn.Linear, h: torch.Tensor) -> torch.Tensor:
        w = fake_quant(layer.weight, spec.w_fmt, clip_grad=False)
        b = fake_quant(layer.bias, spec.bias_fmt, clip_grad=False)
        out = fake_quant(nn.functional.linear(h, w, b), spec.out_fmt)
        return torch.relu(out) if spec.activation == "relu" else out

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) as the head emits them (logvar unclamped, like the hardware)."""
        h = fake_quant(x, self.artifact.input_fmt)
        for spec, layer in self._encoder:
            h = self._dense(spec, layer, h)
        return h.split(self.config.latent_dim, dim=-1)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        for spec, layer in self._decoder:
            h = self._dense(spec, layer, h)
        return h

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        art = self.artifact
        mu, logvar = self.encode(x)
        logvar = torch.clamp(logvar, *LOGVAR_RANGE)
        if self.training:
            sigma = fake_quant(torch.exp(0.5 * logvar), art.sigma_rom.sigma_fmt)
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
            z = fake_quant(mu + sigma * fake_quant(eps, art.sampler.eps_fmt), art.z_fmt)
        else:
            z = fake_quant(mu, art.z_fmt)
        x_hat = output_activation(self.decode_logits(z), art.sigmoid.kind)
        return fake_quant(x_hat, art.sigmoid.out_fmt), mu, logvar


def finetune(model: VAE, artifact: Artifact, x_train: np.ndarray, epochs: int,
             lr: float = 5e-4, batch_size: int = 64, seed: int = 0,
             progress: bool = True) -> VAE:
    """Fine-tune a copy of ``model`` under ``artifact``'s formats; returns the float VAE
    whose quantization (with the same formats) is the QAT result."""
    torch.manual_seed(seed)
    qat = QATVAE(model, artifact)
    train_model(qat, x_train, TrainSettings(epochs, batch_size, lr, seed), desc="QAT",
                progress=progress)
    return qat.model.eval()
