"""Linear baseline: PCA, the closed-form optimum of a linear autoencoder.

A VAE that cannot beat PCA's reconstruction at the same latent size is not
using its nonlinearity; this gives the number to compare against.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PCA"]


class PCA:
    """Project onto the ``latent_dim`` leading right singular vectors of the
    centred training data (Eckart–Young: the best rank-k linear reconstruction
    in squared error)."""

    def __init__(self, latent_dim: int):
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, not {latent_dim!r}")
        self.latent_dim = latent_dim
        self.mean: np.ndarray | None = None
        self.components: np.ndarray | None = None  # (latent_dim, n_features)

    def fit(self, x: np.ndarray) -> "PCA":
        x = np.asarray(x, dtype=np.float64)
        if self.latent_dim > min(x.shape):
            raise ValueError(f"latent_dim {self.latent_dim} exceeds the data's rank bound "
                             f"{min(x.shape)} for shape {x.shape}")
        self.mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        self.components = vt[:self.latent_dim]
        return self

    def _check_fitted(self):
        if self.components is None:
            raise RuntimeError("PCA is not fitted; call fit(x_train) first")

    def encode(self, x: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return (np.asarray(x, dtype=np.float64) - self.mean) @ self.components.T

    def decode(self, z: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.asarray(z, dtype=np.float64) @ self.components + self.mean
