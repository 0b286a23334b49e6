"""LFSRs and the Gaussian sampler: bit-level references, periods, statistics."""

import numpy as np
import pytest
from scipy.stats import kstest

from model.fixed import (
    IRWIN_HALL_OFFSET, LFSR_BANK, N_UNIFORMS, UNIFORM_BITS, Lfsr, eps_from_uniforms, lfsr_seeds,
    lfsr_step, lfsr_stream, sampler_spec,
)
from model.golden import Sampler
from model.sampler_stats import (
    eps_distribution, exact_sampler_stats, ks_distance_to_normal, lfsr_is_maximal,
    uniform_sum_pmf,
)

SMALL_MAXIMAL = Lfsr(7, (7, 6))      # x^7 + x + 1: primitive
SMALL_NON_MAXIMAL = Lfsr(6, (6, 3))  # x^6 + x^3 + 1: irreducible, order 9


def reference_bits(lfsr: Lfsr, state: int, nbits: int) -> tuple[list[int], int]:
    """The sequence definition itself: s[t] = XOR_k s[t-k], state bit i = s[T-n+i]."""
    n = lfsr.length
    seq = [(state >> i) & 1 for i in range(n)]
    for _ in range(nbits):
        bit = 0
        for k in lfsr.taps:
            bit ^= seq[len(seq) - k]
        seq.append(bit)
    new_state = sum(bit << i for i, bit in enumerate(seq[-n:]))
    return seq[n:], new_state


@pytest.mark.parametrize("lfsr", [*LFSR_BANK[:3], LFSR_BANK[-1], SMALL_MAXIMAL])
def test_lfsr_step_matches_bit_reference(lfsr):
    nbits = min(UNIFORM_BITS, min(lfsr.taps))
    state = lfsr_seeds(7)[0] & ((1 << lfsr.length) - 1) or 1
    expected, expected_state = reference_bits(lfsr, state, 20 * nbits)
    bits = []
    for _ in range(20):
        word, state = lfsr_step(lfsr, state, nbits)
        bits += [(word >> (nbits - 1 - j)) & 1 for j in range(nbits)]  # first bit is the MSB
    assert bits == expected and state == expected_state


@pytest.mark.parametrize("lfsr", [LFSR_BANK[0], LFSR_BANK[5], LFSR_BANK[-1]])
def test_lfsr_stream_matches_step(lfsr):
    state = lfsr_seeds(3)[0] & ((1 << lfsr.length) - 1) or 1
    bits, stream_state = lfsr_stream(lfsr, state, 300 * UNIFORM_BITS)  # long enough to chunk
    words = []
    for _ in range(300):
        word, state = lfsr_step(lfsr, state)
        words.append(word)
    packed = bits.reshape(-1, UNIFORM_BITS) @ (1 << np.arange(UNIFORM_BITS - 1, -1, -1))
    assert packed.tolist() == words and stream_state == state


def test_lfsr_step_rejects_bits_past_a_tap():
    with pytest.raises(ValueError, match="taps"):
        lfsr_step(SMALL_MAXIMAL, 1, nbits=7)


def _period(lfsr: Lfsr, state: int) -> int:
    start, steps = state, 0
    while True:
        _, state = lfsr_step(lfsr, state, nbits=1)
        steps += 1
        if state == start:
            return steps


def test_small_register_full_period_and_non_maximal_detected():
    assert _period(SMALL_MAXIMAL, 1) == 2 ** 7 - 1
    states, state = set(), 1
    for _ in range(2 ** 7 - 1):
        _, state = lfsr_step(SMALL_MAXIMAL, state, nbits=1)
        states.add(state)
    assert states == set(range(1, 2 ** 7))  # every nonzero state on one cycle
    assert _period(SMALL_NON_MAXIMAL, 1) < 2 ** 6 - 1
    assert lfsr_is_maximal(SMALL_MAXIMAL) and not lfsr_is_maximal(SMALL_NON_MAXIMAL)


def test_bank_polynomials_are_primitive():
    assert all(lfsr_is_maximal(lfsr) for lfsr in LFSR_BANK)
    assert min((1 << lfsr.length) - 1 for lfsr in LFSR_BANK) >= 2 ** 41
    assert len({lfsr.length for lfsr in LFSR_BANK}) == N_UNIFORMS


def test_sampler_uniforms_are_the_registers_words():
    spec = sampler_spec("teichroew", seed=5)
    sampler = Sampler(spec)
    uniforms = sampler.uniforms(4)
    state = list(spec.seeds)
    for i, lfsr in enumerate(LFSR_BANK):
        for row in range(4):
            word, state[i] = lfsr_step(lfsr, state[i])
            assert uniforms[row, i] == word
    assert sampler.state == tuple(state)


def test_sampler_advances_only_on_draws():
    spec = sampler_spec()
    a, b = Sampler(spec), Sampler(spec)
    whole = a.draw(50)
    twin = b.copy()
    assert np.array_equal(np.concatenate([b.draw(20), b.draw(30)]), whole)
    assert twin.state == spec.seeds  # a copy is independent
    assert np.array_equal(twin.draw(50), whole)
    assert np.array_equal(eps_from_uniforms(Sampler(spec).uniform_sums(50), spec), whole)
    with pytest.raises(ValueError, match="nonzero"):
        Sampler(spec, (0,) * N_UNIFORMS)


@pytest.mark.parametrize("correction", ["teichroew", "none"])
def test_sampler_statistics_small_n(correction):
    n = 20_000
    spec = sampler_spec(correction, seed=11)
    eps = spec.eps_fmt.to_real(Sampler(spec).draw(n))
    assert abs(eps.mean()) < 4 / np.sqrt(n)
    assert abs(eps.var() - 1) < 4 * np.sqrt(2 / n)
    assert kstest(eps, "norm").statistic < 1.63 / np.sqrt(n)
    lag1 = np.corrcoef(eps[:-1], eps[1:])[0, 1]
    assert abs(lag1) < 4 / np.sqrt(n)


def test_exact_distribution():
    pmf = uniform_sum_pmf()
    assert len(pmf) == N_UNIFORMS * (2 ** UNIFORM_BITS - 1) + 1
    assert pmf.sum() == pytest.approx(1, abs=1e-12)
    assert np.allclose(pmf, pmf[::-1], atol=1e-15) and pmf.argmax() == IRWIN_HALL_OFFSET
    none = exact_sampler_stats(sampler_spec("none"))
    # Irwin-Hall of 12 uniforms on a 2**-12 lattice: variance 1 - 2**-24
    assert none["variance"] == pytest.approx(1 - 2.0 ** -24, abs=1e-12)
    assert none["reach_sigma"] == pytest.approx(6 - 0.5 / 2 ** UNIFORM_BITS * N_UNIFORMS, abs=1e-9)
    assert 2.3e-3 < none["ks"] < 2.4e-3
    teich = exact_sampler_stats(sampler_spec("teichroew"))
    assert teich["ks"] < 5e-4 and teich["reach_sigma"] >= 8.6
    values, pmf = eps_distribution(sampler_spec("teichroew"))
    assert np.all(np.diff(values) > 0)
    assert ks_distance_to_normal(np.array([0.0]), np.array([1.0])) == pytest.approx(0.5)
