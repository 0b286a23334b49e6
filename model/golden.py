"""Bit-exact numpy integer model of the hardware core.

Every arithmetic step is a call into :mod:`model.fixed`; this module only
vectorises them over a batch and holds the sampler's LFSR state, so that
sampled reconstructions and generated images are bit-exact too.  The
hardware datapath it mirrors:

* ``encode``: the encoder's head outputs ``[mu | logvar]`` (logvar unclamped;
  only the sigma ROM clamps it).
* ``recon_mu``: ``decode(reparam(mu, sigma, eps=0))``.
* ``recon_sample``: ``decode(reparam(mu, sigma_rom(logvar), eps))``.
* ``generate``: ``decode(reparam(0, sigma_rom(logvar=0) = 1.0, eps))``.
* ``decode``: dense layers, then the sigmoid unit on the logits.

The sampler draws ``eps`` image-major, latent-dim-minor, and advances only on
draws.
"""

from __future__ import annotations

import numpy as np

from model.artifact import Artifact, DenseSpec
from model.fixed import (
    LFSR_BANK, MODES, N_UNIFORMS, UNIFORM_BITS, Fmt, SamplerSpec, dense,
    eps_from_uniforms, lfsr_stream, reparam, requantize, sigma_rom_contents,
    sigma_rom_index, sigmoid,
)

__all__ = ["FLOAT64_EXACT_LIMIT", "float64_exact", "GoldenModel", "Sampler"]

#: Every integer of magnitude <= 2**53 is a float64, so sums of such stay exact.
FLOAT64_EXACT_LIMIT = 2 ** 53
#: Logit formats up to this width get the sigmoid unit as a lookup table.
SIGMOID_TABLE_MAX_WIDTH = 20


def float64_exact(layer: DenseSpec) -> bool:
    """True when the layer's accumulator is exact in float64 (so BLAS may sum it).

    Each product is an integer with ``|x*w| <= 2**(wx-1) * 2**(ww-1)`` and the
    bias one in ``layer.bias_fmt``, so ``|b| <= 2**(bias width - 1)``; any
    partial sum, in any order BLAS picks, is bounded by the sum of all those
    magnitudes.  When that is at most ``2**53`` every term and every partial
    sum is an integer that float64 holds exactly, so no addition rounds.
    """
    bound = (layer.n_in * 2 ** (layer.in_fmt.width - 1) * 2 ** (layer.w_fmt.width - 1)
             + 2 ** (layer.bias_fmt.width - 1))
    return bound <= FLOAT64_EXACT_LIMIT


# --------------------------------------------------------------------------
# Sampler


class Sampler:
    """The hardware's Gaussian sampler with explicit LFSR state.

    Register i yields uniform i; each draw takes ``UNIFORM_BITS`` fresh bits
    from every register (first bit = MSB), sums the twelve uniforms and maps
    the sum through :func:`model.fixed.eps_from_uniforms`.
    """

    def __init__(self, spec: SamplerSpec, state: tuple[int, ...] | None = None):
        self.spec = spec
        self.state = tuple(spec.seeds if state is None else state)
        if len(self.state) != N_UNIFORMS or not all(
                0 < s < 1 << lfsr.length for s, lfsr in zip(self.state, LFSR_BANK)):
            raise ValueError(f"sampler state must be {N_UNIFORMS} nonzero register states, "
                             f"not {self.state!r}")

    def copy(self) -> "Sampler":
        return Sampler(self.spec, self.state)

    def uniforms(self, n: int) -> np.ndarray:
        """The next ``n`` draws' uniforms, ``(n, N_UNIFORMS)`` ints in ``[0, 2**12)``."""
        out = np.zeros((n, N_UNIFORMS), dtype=np.int64)
        state = list(self.state)
        for i, lfsr in enumerate(LFSR_BANK):
            bits, state[i] = lfsr_stream(lfsr, state[i], n * UNIFORM_BITS)
            for j in range(UNIFORM_BITS):
                out[:, i] = (out[:, i] << 1) | bits[j::UNIFORM_BITS]
        self.state = tuple(state)
        return out

    def uniform_sums(self, n: int) -> np.ndarray:
        return self.uniforms(n).sum(axis=1)

    def draw(self, n: int) -> np.ndarray:
        """The next ``n`` eps values, ints in ``spec.eps_fmt``."""
        return eps_from_uniforms(self.uniform_sums(n), self.spec)


# --------------------------------------------------------------------------
# The core


class GoldenModel:
    """Vectorised integer model of an :class:`~model.artifact.Artifact`.

    ``matmul``: ``"auto"`` uses float64 BLAS for every layer that
    :func:`float64_exact` proves exact and int64 for the rest; ``"int64"``
    forces the slow exact path (the two give identical ints).
    """

    def __init__(self, artifact: Artifact, matmul: str = "auto"):
        if matmul not in ("auto", "int64"):
            raise ValueError(f"matmul must be 'auto' or 'int64', not {matmul!r}")
        self.artifact = artifact
        self.latent_dim = artifact.latent_dim
        self.float_layers = {layer.name for layer in artifact.layers
                             if matmul == "auto" and float64_exact(layer)}
        self._w_float = {name: np.vstack([artifact.weights[name].T, artifact.biases[name]])
                         .astype(np.float64) for name in self.float_layers}
        self._rom = sigma_rom_contents(artifact.sigma_rom)
        # The sigmoid unit is a pure function of one logit: tabulate it over its whole
        # domain, entry i holding logit i mod 2**width, so a negative logit indexes from the end.
        self._sigmoid_table = None
        width = artifact.sigmoid.in_fmt.width
        if width <= SIGMOID_TABLE_MAX_WIDTH:
            logits = np.arange(1 << width)
            logits[logits >= 1 << (width - 1)] -= 1 << width
            self._sigmoid_table = sigmoid(logits, artifact.sigmoid)

    # -- building blocks

    def quantize_input(self, x_real) -> np.ndarray:
        return self.artifact.input_fmt.quantize(x_real)

    def dense(self, layer: DenseSpec, x: np.ndarray) -> np.ndarray:
        """One layer, as :func:`model.fixed.dense` computes it: the accumulator (bias
        included) from float64 BLAS where :func:`float64_exact` allows, then the same
        requantize."""
        w, b = self.artifact.weights[layer.name], self.artifact.biases[layer.name]
        if layer.name not in self.float_layers:
            return dense(x, w, b, layer.in_fmt, layer.w_fmt, layer.out_fmt, layer.activation)
        x_one = np.empty((len(x), layer.n_in + 1))  # [x | 1] @ [W^T ; b] = x W^T + b
        x_one[:, :-1] = x
        x_one[:, -1] = 1.0
        acc = (x_one @ self._w_float[layer.name]).astype(np.int64)
        out = requantize(acc, layer.acc_frac, layer.out_fmt)
        return np.maximum(out, 0, out=out) if layer.activation == "relu" else out

    def _check_input(self, x_int) -> np.ndarray:
        x = np.asarray(x_int)
        fmt = self.artifact.input_fmt
        if x.ndim != 2 or x.shape[1] != self.artifact.input_dim:
            raise ValueError(f"inputs must be (batch, {self.artifact.input_dim}), not {x.shape}")
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"inputs must be ints in {fmt} (see quantize_input), not {x.dtype}")
        if x.size and (x.min() < fmt.min_int or x.max() > fmt.max_int):
            raise ValueError(f"inputs outside {fmt} [{fmt.min_int}, {fmt.max_int}]")
        return np.asarray(x, dtype=np.int64)

    def encode(self, x_int) -> tuple[np.ndarray, np.ndarray]:
        """(mu, logvar) ints in the encoder head's format."""
        h = self._check_input(x_int)
        for layer in self.artifact.encoder:
            h = self.dense(layer, h)
        return h[:, :self.latent_dim], h[:, self.latent_dim:]

    def sigma(self, logvar: np.ndarray) -> np.ndarray:
        return self._rom[sigma_rom_index(logvar, self.artifact.sigma_rom)]

    def reparam(self, mu, sigma, eps) -> np.ndarray:
        return reparam(mu, sigma, eps, self.artifact.reparam)

    def decode_logits(self, z_int) -> np.ndarray:
        h = np.asarray(z_int, dtype=np.int64)
        for layer in self.artifact.decoder:
            h = self.dense(layer, h)
        return h

    def sigmoid(self, logits: np.ndarray) -> np.ndarray:
        """:func:`model.fixed.sigmoid`, read from its table when there is one."""
        if self._sigmoid_table is None:
            return sigmoid(logits, self.artifact.sigmoid)
        return self._sigmoid_table[logits]

    def decode(self, z_int) -> np.ndarray:
        """Sigmoid-unit outputs (ints in ``sigmoid.out_fmt``) for z in ``z_fmt``."""
        return self.sigmoid(self.decode_logits(z_int))

    def latent(self, mode: str, x_int=None, n: int | None = None,
               sampler: Sampler | None = None) -> np.ndarray:
        """The decoder's input z for ``recon_mu``, ``recon_sample`` or ``generate``."""
        if mode == "generate":
            if x_int is not None or n is None or n < 0:
                raise ValueError("mode 'generate' takes n (images), not x_int")
            mu = np.zeros((n, self.latent_dim), dtype=np.int64)
            return self._z(mode, mu, np.zeros_like(mu), sampler)
        if x_int is None or n is not None:
            raise ValueError(f"mode {mode!r} takes x_int, not n")
        return self._z(mode, *self.encode(x_int), sampler)

    def _z(self, mode: str, mu, logvar, sampler: Sampler | None) -> np.ndarray:
        sigma = self.sigma(logvar)
        if mode == "recon_mu":
            return self.reparam(mu, sigma, 0)
        sampler = Sampler(self.artifact.sampler) if sampler is None else sampler
        eps = sampler.draw(mu.size).reshape(mu.shape)  # image-major, dim-minor
        return self.reparam(mu, sigma, eps)

    def run(self, mode: str, x_int=None, n: int | None = None,
            sampler: Sampler | None = None) -> np.ndarray:
        """One of :data:`model.fixed.MODES`: images (ints in ``sigmoid.out_fmt``), or
        for ``encode`` the head outputs ``[mu | logvar]``.  ``sampler`` (advanced
        in place) defaults to a fresh one at the artifact's seeds."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "encode":
            if n is not None:
                raise ValueError("mode 'encode' takes x_int, not n")
            return np.concatenate(self.encode(x_int), axis=1)
        return self.decode(self.latent(mode, x_int, n, sampler))

    def trace(self, x_int, sampler: Sampler | None = None) -> dict[str, dict]:
        """Every stage's ints, reals and format, like hls4ml's trace.

        The path is ``recon_mu``, or ``recon_sample`` when ``sampler`` is given.
        """
        art = self.artifact
        out: dict[str, dict] = {}

        def record(name: str, ints: np.ndarray, fmt: Fmt) -> np.ndarray:
            out[name] = {"int": ints, "real": fmt.to_real(ints), "fmt": fmt}
            return ints

        h = record("input", self._check_input(x_int), art.input_fmt)
        for layer in art.encoder:
            h = record(layer.name, self.dense(layer, h), layer.out_fmt)
        mu = record("mu", h[:, :self.latent_dim], art.mu_fmt)
        logvar = record("logvar", h[:, self.latent_dim:], art.mu_fmt)
        record("sigma", self.sigma(logvar), art.sigma_rom.sigma_fmt)
        mode = "recon_mu" if sampler is None else "recon_sample"
        h = record("z", self._z(mode, mu, logvar, sampler), art.z_fmt)
        for layer in art.decoder:
            h = record(layer.name, self.dense(layer, h), layer.out_fmt)
        record("output", self.sigmoid(h), art.sigmoid.out_fmt)
        return out

