"""Small, deterministic artifacts for the quick co-simulation tests.

The quick tests must not depend on ``make train`` outputs, and the full
MNIST core (784 -> 128 -> 10) takes minutes to build in Verilator.  So
:func:`tiny_artifact` quantizes an *untrained*, seeded float model of the
preset's interface (same input and latent sizes, a narrow hidden layer)
with the real quantizer (:func:`model.quantize.quantize_model`), calibrated
on real data: formats, sigmoid, sigma ROM and sampler are chosen exactly as
for a trained model, and the input/output streams have their full length.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["TINY_HIDDEN", "tiny_artifact"]

#: Hidden widths of the test models (IRIS keeps its real shape).
TINY_HIDDEN = {"iris": (16,), "mnist": (16,)}


@lru_cache(maxsize=None)
def _tiny(preset: str, seed: int):
    import torch

    from model.data import load_dataset
    from model.quantize import quantize_model
    from model.vae import VAE, make_config

    torch.manual_seed(seed)
    model = VAE(make_config(preset, hidden=list(TINY_HIDDEN[preset])))
    model.eval()
    data = load_dataset(preset)
    calib = data.x_train[:512]
    artifact, *_ = quantize_model(model, calib)
    x = np.concatenate([data.x_test, data.x_train])
    return artifact, artifact.input_fmt.quantize(x)


def tiny_artifact(preset: str, seed: int = 0):
    """``(artifact, x_int)``: a quantized untrained model of ``preset`` and
    evaluation inputs (test split first) as ints in its input format."""
    if preset not in TINY_HIDDEN:
        raise ValueError(f"preset must be one of {sorted(TINY_HIDDEN)}, not {preset!r}")
    return _tiny(preset, seed)
