"""Statistics of the Gaussian sampler: primitivity proofs, exact distribution, draws.

:mod:`model.golden` holds the sampler itself; this module measures it.
The exact output distribution comes from convolving the uniforms' lattice
and pushing every point through :func:`model.fixed.eps_from_uniforms`, so
its distance to N(0, 1) is measured without sampling noise; the draw
statistics test a long stretch of the actual LFSR output.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.stats import kstest, norm
from sympy import factorint

from model.fixed import LFSR_BANK, N_UNIFORMS, UNIFORM_BITS, Lfsr, SamplerSpec, eps_from_uniforms
from model.golden import Sampler

__all__ = ["MAX_LAG", "lfsr_is_maximal", "lfsr_periods", "uniform_sum_pmf", "eps_distribution",
           "exact_sampler_stats", "ks_distance_to_normal", "draw_stats"]

#: Autocorrelation lags that :func:`draw_stats` measures.
MAX_LAG = 64


def _gf2_mulmod(a: int, b: int, poly: int, n: int) -> int:
    """a*b mod poly over GF(2), polynomials as bit masks (bit i = x**i)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        b >>= 1
        a <<= 1
        if (a >> n) & 1:
            a ^= poly
    return out


def _gf2_powmod_x(exponent: int, poly: int, n: int) -> int:
    result, base = 1, 2  # 2 is the polynomial x
    while exponent:
        if exponent & 1:
            result = _gf2_mulmod(result, base, poly, n)
        base = _gf2_mulmod(base, base, poly, n)
        exponent >>= 1
    return result


def lfsr_is_maximal(lfsr: Lfsr) -> bool:
    """Period ``2**n - 1`` proved by the primitive-polynomial test.

    The recurrence's characteristic polynomial ``p = x**n + sum_k x**(n-k)`` is
    primitive iff ``x**(2**n-1) = 1 (mod p)`` and ``x**((2**n-1)/q) != 1`` for
    every prime ``q | 2**n-1``; then every nonzero state lies on one cycle of
    length ``2**n - 1``.
    """
    n = lfsr.length
    poly = 1 << n
    for k in lfsr.taps:
        poly ^= 1 << (n - k)
    order = (1 << n) - 1
    if _gf2_powmod_x(order, poly, n) != 1:
        return False
    return all(_gf2_powmod_x(order // q, poly, n) != 1 for q in factorint(order))


def uniform_sum_pmf() -> np.ndarray:
    """Exact pmf of the sum of the 12 uniforms on ``[0, 2**12)``, index = sum.

    Each convolution with a 4096-wide box is a difference of cumulative sums
    (exact to float64 rounding, ~1e-16 absolute).
    (Over a full period a maximal LFSR's 12-bit window misses the all-zero
    pattern once in ``2**(n-12)``: a deviation below ``2**-29``, ignored.)
    """
    width = 1 << UNIFORM_BITS
    pmf = np.full(width, 1.0 / width)
    for _ in range(N_UNIFORMS - 1):
        pad = np.zeros(width - 1)
        cum = np.concatenate([np.zeros(1), np.cumsum(np.concatenate([pad, pmf, pad]))])
        pmf = (cum[width:] - cum[:len(pmf) + width - 1]) / width
    return np.maximum(pmf, 0.0)  # cancellation leaves ~1e-17 noise where it is ~0


def eps_distribution(spec: SamplerSpec) -> tuple[np.ndarray, np.ndarray]:
    """The sampler's exact output distribution: (distinct eps ints ascending, pmf)."""
    pmf = uniform_sum_pmf()
    eps = eps_from_uniforms(np.arange(len(pmf), dtype=np.int64), spec)
    values, inverse = np.unique(eps, return_inverse=True)
    return values, np.bincount(inverse, weights=pmf)


def exact_sampler_stats(spec: SamplerSpec) -> dict:
    """KS distance to N(0, 1), reach, mean and variance of the exact eps distribution."""
    values, pmf = eps_distribution(spec)
    real = spec.eps_fmt.to_real(values)
    mean = float(np.sum(pmf * real))
    return {"correction": spec.correction, "eps_fmt": str(spec.eps_fmt),
            "ks": ks_distance_to_normal(real, pmf), "reach_sigma": float(np.abs(real).max()),
            "mean": mean, "variance": float(np.sum(pmf * (real - mean) ** 2)),
            "n_atoms": int(len(values))}


def ks_distance_to_normal(values: np.ndarray, pmf: np.ndarray) -> float:
    """sup |F - Phi| for a discrete distribution (atoms ``values``, ascending)."""
    cdf = np.cumsum(pmf)
    phi = norm.cdf(values)
    return float(max(np.max(np.abs(cdf - phi)), np.max(np.abs(cdf - pmf - phi))))


def draw_stats(sampler: Sampler, n: int, latent_dim: int) -> dict:
    """Statistics of the next ``n`` draws in hardware order (image-major, latent-minor):
    KS against N(0, 1), mean, variance, autocorrelation at lags 1..MAX_LAG and the
    correlation between latent dimensions, each with its 4-standard-error limit."""
    start = time.perf_counter()
    eps = sampler.spec.eps_fmt.to_real(sampler.draw(n))
    seconds = time.perf_counter() - start
    centred = eps - eps.mean()
    var = float(np.mean(centred ** 2))
    autocorr = [float(np.dot(centred[:-lag], centred[lag:]) / ((n - lag) * var))
                for lag in range(1, MAX_LAG + 1)]
    images = eps[: n - n % latent_dim].reshape(-1, latent_dim)
    cross = np.corrcoef(images, rowvar=False)[~np.eye(latent_dim, dtype=bool)]
    ks = kstest(eps, "norm")
    return {"n": n, "draw_seconds": round(seconds, 2), "ks_statistic": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue), "ks_limit": 1.63 / math.sqrt(n),
            "mean": float(eps.mean()), "mean_limit": 4 / math.sqrt(n),
            "variance": float(eps.var()), "variance_limit": 4 * math.sqrt(2 / (n - 1)),
            "max_lag": MAX_LAG, "max_abs_autocorr": float(np.max(np.abs(autocorr))),
            "worst_lag": int(np.argmax(np.abs(autocorr)) + 1), "autocorr_limit": 4 / math.sqrt(n),
            "max_abs_cross_corr": float(np.max(np.abs(cross))), "cross_corr_rows": len(images),
            "cross_corr_limit": 4 / math.sqrt(len(images))}


def lfsr_periods() -> dict:
    """Every register of :data:`model.fixed.LFSR_BANK` proven maximal, and the periods
    (log2) of one register, of its draws and of the whole sampler."""
    maximal = [lfsr_is_maximal(lfsr) for lfsr in LFSR_BANK]
    # a draw takes UNIFORM_BITS bits: the draw sequence repeats after (2^n-1)/gcd(2^n-1, 12)
    draws = [((1 << lfsr.length) - 1) // math.gcd((1 << lfsr.length) - 1, UNIFORM_BITS)
             for lfsr in LFSR_BANK]
    return {"all_primitive": all(maximal), "lengths": [lfsr.length for lfsr in LFSR_BANK],
            "min_period_log2": math.log2(min((1 << l.length) - 1 for l in LFSR_BANK)),
            "min_draw_period_log2": math.log2(min(draws)),
            "sampler_period_log2": math.log2(math.lcm(*draws))}
