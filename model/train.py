"""Training and evaluation of the float reference, with its baselines.

One loop (:func:`train_model`) trains both the VAE and the plain
autoencoder; :func:`run_training` is what ``fxvae train`` calls: it
trains both, fits PCA at the same latent size, and writes the checkpoints and
``train.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from model.baselines import PCA
from model.data import load_dataset
from model.tables import format_table
from model.vae import VAE, VAEConfig, batch_loss, elbo, kl_divergence, make_config, save_checkpoint

__all__ = ["TrainSettings", "TRAIN_DEFAULTS", "configure_determinism", "train_model",
           "evaluate", "run_training", "format_summary"]

#: Fixed so that runs are reproducible across machines with different core
#: counts.  One thread, because these matrices are small: measured on 2 cores
#: shared with other jobs, 2 threads took 55 s per MNIST epoch (threads wait
#: at every barrier for a descheduled sibling), 1 thread 2.4 s.
TORCH_THREADS = 1
CHECKPOINT_NAME = "checkpoint.pt"
AE_CHECKPOINT_NAME = "ae_checkpoint.pt"
METRICS_NAME = "train.json"


@dataclass
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, not {self.epochs!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {self.batch_size!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, not {self.lr!r}")


#: Per-preset defaults, sized so that MNIST (VAE + AE) trains in well under a
#: minute and IRIS in a few seconds on 2 CPU cores.  MNIST's held-out ELBO
#: gains < 1 nat from 80 to 120 epochs; IRIS's gets no better after 300.
TRAIN_DEFAULTS: dict[str, TrainSettings] = {
    "iris": TrainSettings(epochs=300, batch_size=16, lr=3e-3),
    "mnist": TrainSettings(epochs=80, batch_size=64, lr=2e-3),
}


def configure_determinism(seed: int) -> None:
    """Same seed, same weights, bit for bit (on the same torch build)."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(TORCH_THREADS)


def train_model(model: VAE, x_train: np.ndarray, settings: TrainSettings, *,
                desc: str = "train", progress: bool = True) -> list[float]:
    """Adam on :func:`model.vae.batch_loss` with seeded shuffles and noise.

    Returns the mean training loss of every epoch.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    x = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))
    history = []
    model.train()
    with tqdm(range(settings.epochs), desc=desc, unit="epoch", disable=not progress,
              leave=False) as bar:
        for _ in bar:
            order = torch.randperm(len(x), generator=generator)
            total = 0.0
            for start in range(0, len(x), settings.batch_size):
                batch = x[order[start:start + settings.batch_size]]
                loss, _, _ = batch_loss(model, batch, generator)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            history.append(total / len(x))
            bar.set_postfix(loss=f"{history[-1]:.4g}")
    model.eval()
    return history


@torch.no_grad()
def evaluate(model: VAE, x_test: np.ndarray, seed: int = 0) -> dict:
    """Test metrics: reconstruction MSE of ``decode(mu)`` per feature in
    [0, 1] units; for a VAE also the mean ELBO (one seeded sample) and KL."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(x_test, dtype=np.float32))
    mu, logvar = model.encode(x)
    metrics = {"test_recon_mse": float(torch.mean((model.decode(mu) - x) ** 2))}
    if model.config.variational:
        generator = torch.Generator().manual_seed(seed)
        metrics["test_elbo"] = float(elbo(model, x, generator).mean())
        metrics["test_kl"] = float(kl_divergence(mu, logvar).mean())
    return metrics


def _fit(config: VAEConfig, x_train: np.ndarray, settings: TrainSettings, desc: str,
         progress: bool) -> tuple[VAE, list[float], float]:
    torch.manual_seed(settings.seed)  # VAE and AE start from the same weights
    model = VAE(config)
    start = time.perf_counter()
    history = train_model(model, x_train, settings, desc=desc, progress=progress)
    return model, history, time.perf_counter() - start


def run_training(preset: str, out_dir: str | Path, *, seed: int = 0,
                 mnist_dir: str | None = None, epochs: int | None = None,
                 batch_size: int | None = None, lr: float | None = None,
                 baselines: bool = True, progress: bool = True,
                 **config_overrides) -> dict:
    """Train the VAE (and, with ``baselines``, the plain AE and PCA) for a
    preset; write ``checkpoint.pt``, ``ae_checkpoint.pt`` and ``train.json``
    under ``out_dir``; return the metrics.

    ``config_overrides`` are :class:`model.vae.VAEConfig` fields (``beta``,
    ``latent_dim``, ``hidden``, ``sigmoid``...); ``None`` keeps the preset's.
    """
    config = make_config(preset, **config_overrides)
    defaults = TRAIN_DEFAULTS[preset]
    settings = replace(defaults, seed=seed, **{
        key: value for key, value in
        {"epochs": epochs, "batch_size": batch_size, "lr": lr}.items() if value is not None})
    configure_determinism(seed)
    data = load_dataset(preset, mnist_dir=mnist_dir, seed=seed)
    config = replace(config, input_dim=data.input_dim)
    data_info = {"preset": preset, "seed": seed, "mnist_dir": mnist_dir,
                 "scaling": data.scaling, "source": data.source,
                 "feature_shape": list(data.feature_shape),
                 "n_train": len(data.x_train), "n_test": len(data.x_test)}

    model, history, seconds = _fit(config, data.x_train, settings, f"{preset} VAE", progress)
    metrics = {"preset": preset, "latent_dim": config.latent_dim, "hidden": config.hidden,
               "beta": config.beta, "sigmoid": config.sigmoid, "recon": config.recon,
               "recon_weight": config.recon_weight, **asdict(settings),
               "torch_threads": TORCH_THREADS, "train_seconds": round(seconds, 2),
               "final_train_loss": history[-1], **evaluate(model, data.x_test, seed)}
    out_dir = Path(out_dir)
    if baselines:
        ae_config = replace(config, variational=False)
        ae, ae_history, ae_seconds = _fit(ae_config, data.x_train, settings,
                                          f"{preset} AE", progress)
        metrics["ae_train_seconds"] = round(ae_seconds, 2)
        metrics["ae_test_recon_mse"] = evaluate(ae, data.x_test, seed)["test_recon_mse"]
        pca = PCA(config.latent_dim).fit(data.x_train)
        metrics["pca_test_recon_mse"] = float(np.mean(
            (pca.decode(pca.encode(data.x_test)) - data.x_test) ** 2))
        save_checkpoint(out_dir / AE_CHECKPOINT_NAME, ae, ae_config, data_info,
                        {"ae_test_recon_mse": metrics["ae_test_recon_mse"],
                         "final_train_loss": ae_history[-1]})
    metrics["data"] = data_info
    save_checkpoint(out_dir / CHECKPOINT_NAME, model, config, data_info, metrics)
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def format_summary(metrics: dict) -> str:
    """A short table of the headline numbers for the terminal."""
    rows = [("VAE", f"{metrics['test_recon_mse']:.5f}",
             f"ELBO {metrics['test_elbo']:.2f} nats, KL {metrics['test_kl']:.2f}, "
             f"{metrics['train_seconds']:.1f} s")]
    if "ae_test_recon_mse" in metrics:
        rows.append(("plain AE", f"{metrics['ae_test_recon_mse']:.5f}",
                     f"{metrics['ae_train_seconds']:.1f} s"))
        rows.append((f"PCA ({metrics['latent_dim']})", f"{metrics['pca_test_recon_mse']:.5f}", ""))
    return format_table(("model", "test recon MSE", "extra"), rows)
