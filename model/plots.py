"""Figures of the float reference: what the latent space looks like.

Each public function returns a matplotlib ``Figure`` built without pyplot
(so no backend is chosen and nothing is shown; ``savefig`` renders PNG with
Agg by itself); :func:`save` writes it.  Models are :class:`model.vae.VAE`;
data are the float32 ``(n, input_dim)`` arrays of :class:`model.data.Dataset`.
The quantization figures (:func:`wbits_sweep_figure`,
:func:`sigmoid_error_figure`, :func:`sampler_figure`) show an artifact's
numerics.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.special import expit
from scipy.stats import norm

from model.evaluate import sigmoid_unit_curves
from model.fixed import SamplerSpec, SigmoidSpec
from model.golden import Sampler
from model.vae import VAE, kl_divergence

__all__ = ["save", "reconstruction_figure", "samples_figure", "latent_map_figure",
           "manifold_figure", "interpolation_figure", "traversal_figure", "beta_figure",
           "wbits_sweep_figure", "sigmoid_error_figure", "sampler_figure", "encode_mu", "decode",
           "subplots", "show_images", "scatter_latents"]


def save(fig: Figure, path: str | Path, **savefig_options) -> Path:
    """Write ``fig`` (PNG by the suffix); options default to 110 dpi, tight bounding box."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **{"dpi": 110, "bbox_inches": "tight", **savefig_options})
    return path


def subplots(nrows: int = 1, ncols: int = 1, *, figsize, **options):
    """A new figure and its axes, outside pyplot's registry of open figures."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **options)


@torch.no_grad()
def encode_mu(model: VAE, x: np.ndarray) -> np.ndarray:
    model.eval()
    return model.encode(torch.as_tensor(x, dtype=torch.float32))[0].numpy()


@torch.no_grad()
def decode(model: VAE, z: np.ndarray) -> np.ndarray:
    model.eval()
    return model.decode(torch.as_tensor(z, dtype=torch.float32)).numpy()


def _mosaic(images: np.ndarray, feature_shape, ncols: int, pad: int = 1) -> np.ndarray:
    """Tile ``(n, input_dim)`` rows into one grey image, ``ncols`` per row."""
    height, width = feature_shape
    nrows = -(-len(images) // ncols)
    canvas = np.ones((nrows * (height + pad) + pad, ncols * (width + pad) + pad))
    for index, image in enumerate(images):
        row, col = divmod(index, ncols)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        canvas[top:top + height, left:left + width] = image.reshape(height, width)
    return canvas


def show_images(ax, images, feature_shape, ncols, title=None):
    ax.imshow(_mosaic(images, feature_shape, ncols), cmap="gray_r", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def scatter_latents(ax, mu: np.ndarray, labels: np.ndarray, title: str, class_names=None):
    if mu.shape[1] != 2:
        raise ValueError(f"a latent map needs a 2-D latent space, not {mu.shape[1]}-D")
    classes = np.unique(labels)
    cmap = matplotlib.colormaps["tab10"]
    for label in classes:
        chosen = labels == label
        name = class_names[label] if class_names is not None else str(label)
        ax.scatter(mu[chosen, 0], mu[chosen, 1], s=6 if len(mu) > 300 else 16, color=cmap(label % 10), label=name,
                   alpha=0.7, linewidths=0)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("$\\mu_1$")
    ax.set_ylabel("$\\mu_2$")
    ax.legend(fontsize=7, markerscale=2, loc="best", ncol=2 if len(classes) > 5 else 1)


def _manifold_images(model: VAE, n: int) -> np.ndarray:
    """Decode an ``n x n`` grid of prior quantiles (5 % to 95 %), so each cell
    covers equal prior mass; top row is high ``z2``."""
    grid = norm.ppf(np.linspace(0.05, 0.95, n))
    z1, z2 = np.meshgrid(grid, grid[::-1])
    return decode(model, np.stack([z1.ravel(), z2.ravel()], axis=1))


def reconstruction_figure(x: np.ndarray, models: dict[str, VAE], feature_shape) -> Figure:
    """Ground truth (top) and each model's ``decode(mu)`` below it."""
    rows = {"ground truth": x}
    for name, model in models.items():
        rows[name] = decode(model, encode_mu(model, x))
    fig, axes = subplots(len(rows), 1, figsize=(len(x) * 0.55, 0.75 * len(rows) + 0.3),
                             squeeze=False)
    for ax, (name, images) in zip(axes[:, 0], rows.items()):
        mse = "" if name == "ground truth" else f"  (MSE {np.mean((images - x) ** 2):.4f})"
        show_images(ax, images, feature_shape, len(x), name + mse)
    return fig


def samples_figure(models: dict[str, VAE], feature_shape, *, n: int = 8,
                   seed: int = 0) -> Figure:
    """``n x n`` decodings of z ~ N(0, I) for each model, side by side."""
    fig, axes = subplots(1, len(models), figsize=(3 * len(models), 3.3), squeeze=False)
    generator = torch.Generator().manual_seed(seed)
    for ax, (name, model) in zip(axes[0], models.items()):
        z = torch.randn(n * n, model.config.latent_dim, generator=generator)
        show_images(ax, decode(model, z.numpy()), feature_shape, n, name)
    return fig


def latent_map_figure(models: dict[str, VAE], x: np.ndarray, labels: np.ndarray,
                      class_names=None) -> Figure:
    """Test-set ``mu`` of 2-D models, coloured by label, side by side (e.g. a
    plain AE's irregular latent space beside the VAE's prior-shaped one)."""
    fig, axes = subplots(1, len(models), figsize=(4.2 * len(models), 4), squeeze=False)
    for ax, (name, model) in zip(axes[0], models.items()):
        scatter_latents(ax, encode_mu(model, x), labels, name, class_names)
    fig.tight_layout()
    return fig


def manifold_figure(model: VAE, feature_shape, *, n: int = 15, title: str = "") -> Figure:
    fig, ax = subplots(figsize=(5, 5))
    show_images(ax, _manifold_images(model, n), feature_shape, n,
          title or "decoded 2-D latent grid (prior quantiles 5 %..95 %)")
    return fig


def interpolation_figure(model: VAE, x_start: np.ndarray, x_end: np.ndarray, feature_shape,
                         *, steps: int = 10) -> Figure:
    """Decode the straight line between two inputs' ``mu``, inputs at the ends."""
    mu = encode_mu(model, np.stack([x_start, x_end]))
    weights = np.linspace(0.0, 1.0, steps)[:, None]
    path = decode(model, (1 - weights) * mu[0] + weights * mu[1])
    strip = np.concatenate([x_start[None], path, x_end[None]])
    fig, ax = subplots(figsize=(0.6 * len(strip), 1.0))
    show_images(ax, strip, feature_shape, len(strip),
          f"input | {steps} decodings along the line between the two mu | input")
    return fig


def traversal_figure(model: VAE, x: np.ndarray, feature_shape, *, span: float = 3.0,
                     steps: int = 9, kl_per_dim: np.ndarray | None = None) -> Figure:
    """Row i: ``mu(x)`` with latent i swept over ``[-span, span]``.  Rows of
    latents with ~0 KL stay constant: the model does not use them."""
    mu = encode_mu(model, x[None])[0]
    dims = model.config.latent_dim
    sweep = np.linspace(-span, span, steps)
    z = np.repeat(mu[None], dims * steps, axis=0)
    for dim in range(dims):
        z[dim * steps:(dim + 1) * steps, dim] = sweep
    fig, ax = subplots(figsize=(0.55 * steps + 0.8, 0.55 * dims + 0.5))
    show_images(ax, decode(model, z), feature_shape, steps,
          f"latent traversals, z_i from {-span:g} to {span:g}")
    height = feature_shape[0] + 1
    ax.set_yticks([1 + height * (dim + 0.5) for dim in range(dims)])
    ax.set_yticklabels([f"z{dim + 1}" + ("" if kl_per_dim is None else f" ({kl_per_dim[dim]:.1f})")
                        for dim in range(dims)], fontsize=7)
    if kl_per_dim is not None:
        ax.set_ylabel("latent (mean KL, nats)", fontsize=8)
    return fig


def beta_figure(models: dict[str, VAE], x: np.ndarray, labels: np.ndarray, feature_shape,
                *, n: int = 12) -> Figure:
    """2-D models trained with different beta: latent map above, decoded grid
    below; titles carry the test reconstruction MSE and KL."""
    fig, axes = subplots(2, len(models), figsize=(4.2 * len(models), 8.4), squeeze=False)
    x_t = torch.as_tensor(x, dtype=torch.float32)
    for column, (name, model) in enumerate(models.items()):
        with torch.no_grad():
            mu, logvar = model.encode(x_t)
        kl = float(kl_divergence(mu, logvar).mean())
        mu = mu.numpy()
        mse = float(np.mean((decode(model, mu) - x) ** 2))
        scatter_latents(axes[0, column], mu, labels, f"{name}: MSE {mse:.4f}, KL {kl:.2f}")
        show_images(axes[1, column], _manifold_images(model, n), feature_shape, n,
              f"{name}: decoded latent grid")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------
# Quantization figures

#: Draws in :func:`sampler_figure`'s histogram and Q-Q plot.
SAMPLER_FIGURE_DRAWS = 200_000


def wbits_sweep_figure(sweep: list[dict], preset: str) -> Figure:
    """Quantized / float MSE against weight bits, one line per weight rule
    (rows of :func:`model.evaluate.wbits_sweep`)."""
    fig, ax = subplots(figsize=(5, 3.5))
    for rule in dict.fromkeys(r["rule"] for r in sweep):
        rows = [r for r in sweep if r["rule"] == rule]
        ax.plot([r["wbits"] for r in rows], [r["mse_ratio"] for r in rows], "o-",
                label=f"weight rule {rule}")
    ax.axhline(1.01, color="grey", ls="--", lw=0.8, label="1.01 x float")
    ax.set(yscale="log", xlabel="weight bits", ylabel="quantized / float MSE",
           title=f"{preset}: re-quantization sweep (no retraining)")
    ax.legend()
    fig.tight_layout()
    return fig


def sigmoid_error_figure(spec: SigmoidSpec) -> Figure:
    """The integer sigmoid unit's and its approximant's error over every input."""
    x, unit, approx = sigmoid_unit_curves(spec)
    fig, ax = subplots(figsize=(5, 3.5))
    ax.plot(x, approx - expit(x), lw=2, label=f"{spec.kind} approximant")
    ax.plot(x, unit - expit(x), lw=0.8, label=f"integer unit ({spec.out_fmt} out)")
    ax.set(xlabel=f"logit ({spec.in_fmt})", ylabel="error vs exact sigmoid",
           title="sigmoid unit over every representable input")
    ax.legend()
    fig.tight_layout()
    return fig


def sampler_figure(spec: SamplerSpec, draws: int = SAMPLER_FIGURE_DRAWS) -> Figure:
    """Histogram and Q-Q plot of the LFSR sampler's first ``draws`` values."""
    eps = spec.eps_fmt.to_real(Sampler(spec).draw(draws))
    fig, (hist, qq) = subplots(1, 2, figsize=(9, 3.5))
    grid = np.linspace(-5, 5, 401)
    # Bins 1/16 wide hold the same number of eps lattice points each (no aliasing spikes).
    hist.hist(eps, bins=160, range=(-5, 5), density=True, alpha=0.6, label="LFSR sampler")
    hist.plot(grid, norm.pdf(grid), "k", lw=1, label="N(0, 1)")
    hist.set(xlabel="eps", title=f"{draws:,} draws ({spec.correction})")
    hist.legend()
    probs = (np.arange(1, 1001) - 0.5) / 1000
    qq.plot(norm.ppf(probs), np.quantile(eps, probs), ".", ms=3)
    qq.plot([-4, 4], [-4, 4], "k", lw=0.8)
    qq.set(xlabel="N(0, 1) quantile", ylabel="sampler quantile", title="Q-Q plot")
    fig.tight_layout()
    return fig
