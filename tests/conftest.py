"""Shared fixtures: the IRIS data set, a tiny IRIS VAE trained in ~1 s, and small
quantized untrained models for the co-simulation tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.data import load_dataset
from model.quantize import quantize_model
from model.train import TrainSettings, train_model
from model.vae import VAE, make_config


def pytest_configure(config):
    torch.set_num_threads(1)  # two xdist workers share two cores


@pytest.fixture(scope="session")
def iris_data():
    return load_dataset("iris", seed=0)


@pytest.fixture(scope="session")
def tiny_iris_vae(iris_data) -> VAE:
    """4 -> 8 -> 2 VAE, 60 epochs on IRIS; one per test process (do not mutate)."""
    torch.manual_seed(0)
    model = VAE(make_config("iris", hidden=[8]))
    train_model(model, iris_data.x_train, TrainSettings(epochs=60, batch_size=16, lr=1e-2),
                progress=False)
    return model


@pytest.fixture(scope="session")
def quantize_tiny(tiny_iris_vae, iris_data):
    """``quantize_tiny(wbits=8, abits=16)``: the tiny VAE's artifact, calibrated on IRIS."""
    def quantize(wbits: int = 8, abits: int = 16):
        return quantize_model(tiny_iris_vae, iris_data.x_train, wbits=wbits, abits=abits)[0]
    return quantize


#: Hidden widths of the co-simulation tests' models (IRIS keeps its real shape).
COSIM_HIDDEN = {"iris": (16,), "mnist": (16,)}


def _untrained_artifact(preset: str):
    """``(artifact, x_int)``: a seeded *untrained* model of ``preset``'s interface (a
    narrow hidden layer: the full MNIST core takes minutes to build in Verilator),
    quantized by the real quantizer calibrated on real data, so formats, sigmoid,
    sigma ROM and sampler are chosen as for a trained model; and the evaluation
    inputs (test split first) as ints in its input format."""
    torch.manual_seed(0)
    model = VAE(make_config(preset, hidden=list(COSIM_HIDDEN[preset]))).eval()
    data = load_dataset(preset)
    artifact, *_ = quantize_model(model, data.x_train[:512])
    return artifact, artifact.input_fmt.quantize(np.concatenate([data.x_test, data.x_train]))


@pytest.fixture(scope="session")
def iris_untrained():
    return _untrained_artifact("iris")


@pytest.fixture(scope="session")
def mnist_untrained():
    return _untrained_artifact("mnist")
