"""Shared fixtures of the quantization tests: a tiny IRIS VAE trained in ~1 s."""

from __future__ import annotations

from functools import lru_cache

import torch

from model.data import load_dataset
from model.train import TrainSettings, train_model
from model.vae import make_config, VAE


torch.set_num_threads(1)  # two xdist workers share two cores


@lru_cache(maxsize=None)
def iris():
    return load_dataset("iris", seed=0)


@lru_cache(maxsize=None)
def tiny_iris_vae() -> VAE:
    """4 -> 8 -> 2 VAE, 60 epochs on IRIS; cached per test process (do not mutate)."""
    torch.manual_seed(0)
    model = VAE(make_config("iris", hidden=[8]))
    train_model(model, iris().x_train, TrainSettings(epochs=60, batch_size=16, lr=1e-2),
                progress=False)
    return model
