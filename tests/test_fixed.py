"""model.fixed against exact rational arithmetic: exhaustive for small widths,
hypothesis properties for large ones."""

from fractions import Fraction
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from model.artifact import DenseSpec
from model.fixed import (
    HORNER_GUARD_BITS, IRWIN_HALL_OFFSET, IRWIN_HALL_SPAN, LOGVAR_RANGE, SIGMOID_KINDS, Fmt,
    ReparamSpec, Span, acc_width, dense, odd_poly, odd_poly_spans, odd_poly_spec,
    odd_poly_steps, reparam, requantize, round_shift, round_shift_add, sampler_spec, saturate, shift_add,
    sigma_rom_contents, sigma_rom_index, sigma_rom_spec, sigmoid, sigmoid_spec,
)


def round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def clamp(value: int, fmt: Fmt) -> int:
    return min(max(value, fmt.min_int), fmt.max_int)


# -- exhaustive, small widths


def test_round_shift_exhaustive():
    xs = np.arange(-256, 256)
    for shift in range(-3, 7):
        got = round_shift(xs, shift)
        expected = [round_half_up(Fraction(int(x), 2 ** shift)) if shift > 0 else int(x) << -shift
                    for x in xs]
        assert got.tolist() == expected
        assert [round_shift(int(x), shift) for x in xs] == expected  # python ints agree


def test_round_shift_add_is_one_adder_for_both():
    xs = np.arange(-300, 300)
    for shift in range(-2, 6):
        for addend in (-37, 0, 5):
            assert round_shift_add(xs, shift, addend).tolist() == \
                (round_shift(xs, shift) + addend).tolist()
            assert round_shift_add(Span(-300, 299), shift, addend) == \
                Span(int(round_shift(-300, shift)) + addend, int(round_shift(299, shift)) + addend)


def test_shift_add_after_an_early_shift():
    """Dropping up to ``pre`` low bits before the adder changes no result."""
    xs = np.arange(-1000, 1000)
    for shift in range(1, 6):
        for addend in (-3, 0, 2):
            full = shift_add(shift, addend)
            for k in range(full.pre + 1):
                assert full.after_shift(k)(xs >> k).tolist() == full(xs).tolist()
            with pytest.raises(ValueError, match=f"can drop 0..{full.pre} bits early"):
                full.after_shift(full.pre + 1)


@pytest.mark.parametrize("span", [Span(0, 0), Span(0, 1), Span(0, 255), Span(-1, 0), Span(-128, 127),
                                  Span(-129, 5), Span(-5, 128), Span(3, 9), Span(-9, -3)])
def test_span_width_is_the_narrowest_word(span):
    width = span.width
    if span.signed:
        fits = lambda w: -(1 << (w - 1)) <= span.lo and span.hi < (1 << (w - 1))  # noqa: E731
    else:
        fits = lambda w: span.hi < (1 << w)  # noqa: E731
    assert fits(width) and (width == 1 or not fits(width - 1))


def test_span_arithmetic_bounds_every_value():
    a, b = Span(-7, 5), Span(-3, 11)
    xs, ys = np.meshgrid(np.arange(-7, 6), np.arange(-3, 12))
    for span, values in ((a * b, xs * ys), (a.square(), xs * xs), (a + b, xs + ys),
                         (a - b, xs - ys), (a << 3, xs << 3), (a >> 2, xs >> 2),
                         (a.clip(-2, 3), np.clip(xs, -2, 3))):
        assert (span.lo, span.hi) == (values.min(), values.max())
    assert Span(-2, 3) in a and a not in Span(-2, 3)
    assert IRWIN_HALL_SPAN == Span(-IRWIN_HALL_OFFSET, 12 * 4095 - IRWIN_HALL_OFFSET)


@pytest.mark.parametrize("poly", [odd_poly_spec(SIGMOID_KINDS["taylor5"].coeffs, 2.29, 13, 14),
                                  sampler_spec("teichroew").poly,
                                  odd_poly_spec((0.75,), 1.5, 6, 8)])
def test_odd_poly_spans_bound_every_register(poly):
    """The range analysis the hardware sizes registers from holds every value the program makes."""
    x_span = Span(-(3 << poly.x_frac) // 2, (3 << poly.x_frac) // 2)
    xs = np.arange(x_span.lo, x_span.hi + 1)
    regs = {"x": xs, "acc": np.full_like(xs, poly.coeffs_int[-1])}
    spans = odd_poly_spans(poly, x_span)
    steps = odd_poly_steps(poly)
    assert len(spans) == len(steps) + 1
    for step, before in zip(steps, spans):
        for name, values in regs.items():
            assert before[name].lo <= values.min() and values.max() <= before[name].hi, name
        regs[step.dest] = step.apply(regs[step.a], regs[step.b])
    assert regs["y"].tolist() == odd_poly(xs, poly).tolist()
    assert spans[-1]["y"].lo <= regs["y"].min() and regs["y"].max() <= spans[-1]["y"].hi


def test_saturate_exhaustive():
    xs = np.arange(-100, 100)
    for width in range(2, 7):
        fmt = Fmt(width, 0)
        assert saturate(xs, fmt).tolist() == [clamp(int(x), fmt) for x in xs]
        assert [saturate(int(x), fmt) for x in xs] == [clamp(int(x), fmt) for x in xs]


def test_requantize_exhaustive():
    xs = np.arange(-512, 512)
    for from_frac in range(0, 7):
        for fmt in (Fmt(4, 0), Fmt(4, 2), Fmt(5, 3), Fmt(6, 7), Fmt(3, -1)):
            got = requantize(xs, from_frac, fmt)
            expected = [clamp(round_half_up(Fraction(int(x), 2 ** from_frac) * 2 ** fmt.frac),
                              fmt) for x in xs]
            assert got.tolist() == expected, (from_frac, fmt)


def test_fmt_quantize_matches_fractions():
    fmt = Fmt(6, 3)
    reals = [Fraction(k, 64) for k in range(-400, 400)]
    got = fmt.quantize(np.array([float(r) for r in reals]))
    assert got.tolist() == [clamp(round_half_up(r * 8), fmt) for r in reals]
    assert fmt.to_real(got).tolist() == [v / 8 for v in got.tolist()]
    assert (fmt.min_int, fmt.max_int, fmt.min_real, fmt.max_real) == (-32, 31, -4.0, 3.875)


def _odd_poly_fraction(x: int, poly) -> int:
    """Horner's steps of model.fixed.odd_poly, each rounded as an exact rational."""
    two = Fraction(2)
    u = round_half_up(x * x / two ** (2 * poly.v_frac - poly.coef_frac))
    acc = poly.coeffs_int[-1]
    for coeff in reversed(poly.coeffs_int[:-1]):
        acc = coeff + round_half_up(u * acc / two ** poly.coef_frac)
    return round_half_up(x * acc / two ** (poly.v_frac + poly.coef_frac - poly.out_frac))


@pytest.mark.parametrize("kind", sorted(SIGMOID_KINDS))
def test_odd_poly_steps_exhaustive(kind):
    approx = SIGMOID_KINDS[kind]
    poly = odd_poly_spec(approx.coeffs, approx.input_clamp, x_frac=6, out_frac=8)
    xs = np.arange(-int(approx.input_clamp * 64), int(approx.input_clamp * 64) + 1)
    got = odd_poly(xs, poly)
    assert got.tolist() == [_odd_poly_fraction(int(x), poly) for x in xs]
    # the guard bits keep the arithmetic within 0.53 output LSB of the real polynomial
    real = [sum(c * (x / 64) ** (2 * i + 1) for i, c in enumerate(approx.coeffs)) for x in xs]
    assert np.max(np.abs(got / 2 ** 8 - np.array(real))) <= 0.53 / 2 ** 8
    assert poly.coef_frac == 8 + HORNER_GUARD_BITS


def test_sigmoid_unit_shape():
    spec = sigmoid_spec("taylor5", Fmt(10, 6), Fmt(10, 8))
    xs = np.arange(spec.in_fmt.min_int, spec.in_fmt.max_int + 1)
    out = sigmoid(xs, spec)
    assert np.all(np.diff(out) >= 0)                               # monotone
    assert out[xs == 0][0] == spec.half_int                         # sigma(0) = 1/2
    assert out.min() >= 0 and out.max() <= spec.one_int
    inner = xs[1:]  # symmetric around 0 up to the round-half-up tie: within one LSB
    assert np.max(np.abs(sigmoid(inner, spec) + sigmoid(-inner, spec) - spec.one_int)) <= 1


def test_sigma_rom_exact_to_half_lsb():
    spec = sigma_rom_spec(Fmt(16, 11), Fmt(16, 12))
    rom = sigma_rom_contents(spec)
    logvar = (spec.lo_index + np.arange(spec.depth)) / 2 ** spec.index_frac
    assert np.max(np.abs(rom / 2 ** 12 - np.exp(logvar / 2))) <= 0.5 / 2 ** 12
    assert logvar[0] == LOGVAR_RANGE[0] and logvar[-1] == LOGVAR_RANGE[1]
    assert rom[sigma_rom_index(np.array([0]), spec)][0] == 1 << 12   # sigma(0) is exactly 1
    # out-of-range logvar is clamped, not wrapped
    assert sigma_rom_index(np.array([spec.logvar_fmt.min_int, spec.logvar_fmt.max_int]),
                           spec).tolist() == [0, spec.depth - 1]


def test_reparam_exhaustive_small():
    mu_fmt, sigma_fmt, eps_fmt, z_fmt = Fmt(5, 2), Fmt(4, 2), Fmt(5, 3), Fmt(5, 1)
    mus, sigmas, epss = np.meshgrid(np.arange(-16, 16), np.arange(0, 8), np.arange(-16, 16))
    spec = ReparamSpec(mu_fmt, sigma_fmt, eps_fmt, z_fmt)
    got = reparam(mus, sigmas, epss, spec)
    sums = (mus << spec.mu_shift) + ((sigmas * epss) << spec.prod_shift)
    # acc_frac 5: mu << 3 in [-128, 120]; sigma*eps over the whole formats in [-120, 128]
    assert spec.sum_span() == Span(-128 - 120, 120 + 128)
    assert spec.sum_span().lo <= sums.min() and sums.max() <= spec.sum_span().hi
    expected = [clamp(round_half_up((Fraction(m, 4) + Fraction(s * e, 32)) * 2), z_fmt)
                for m, s, e in zip(mus.ravel().tolist(), sigmas.ravel().tolist(),
                                   epss.ravel().tolist())]
    assert got.ravel().tolist() == expected


# -- properties, large widths


@settings(max_examples=300, deadline=None)
@given(st.integers(-2 ** 62, 2 ** 62), st.integers(1, 62))
def test_round_shift_large(x, shift):
    assert round_shift(x, shift) == round_half_up(Fraction(x, 2 ** shift))
    assert int(round_shift(np.int64(x), shift)) == round_half_up(Fraction(x, 2 ** shift))


@settings(max_examples=300, deadline=None)
@given(st.integers(-2 ** 60, 2 ** 60), st.integers(0, 40), st.integers(2, 32), st.integers(-8, 40))
def test_requantize_large(x, from_frac, width, frac):
    fmt = Fmt(width, frac)
    expected = clamp(round_half_up(Fraction(x, 2 ** from_frac) * 2 ** frac), fmt)
    assert int(requantize(np.array([x]), from_frac, fmt)[0]) == expected
    assert requantize(x, from_frac, fmt) == expected


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 24), st.integers(2, 24), st.integers(1, 4096))
def test_acc_width_cannot_overflow(wx, ww, n_in):
    """The extreme sum (every product at its largest, bias at its format's edge) fits."""
    spec = DenseSpec("l", n_in, 1, Fmt(wx, 0), Fmt(ww, 0), Fmt(8, 0), "linear")
    extreme = n_in * Fmt(wx, 0).min_int * Fmt(ww, 0).min_int + spec.bias_fmt.max_int
    assert extreme <= Fmt(acc_width(spec.in_fmt, spec.w_fmt, n_in), 0).max_int
    assert -extreme - 1 >= Fmt(spec.acc_width, 0).min_int


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_dense_matches_fractions(data):
    n_in, n_out = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    x_fmt, w_fmt = Fmt(data.draw(st.integers(4, 20)), 6), Fmt(data.draw(st.integers(3, 12)), 5)
    out_fmt = Fmt(data.draw(st.integers(3, 16)), data.draw(st.integers(-2, 14)))
    ints = lambda fmt, n: data.draw(st.lists(st.integers(fmt.min_int, fmt.max_int),  # noqa: E731
                                             min_size=n, max_size=n))
    x = np.array([ints(x_fmt, n_in)])
    w = np.array([ints(w_fmt, n_in) for _ in range(n_out)])
    b = np.array(ints(Fmt(12, 0), n_out))
    for activation in ("linear", "relu"):
        got = dense(x, w, b, x_fmt, w_fmt, out_fmt, activation)[0].tolist()
        acc = [sum(Fraction(int(xi) * int(wi), 2 ** 11) for xi, wi in zip(x[0], row))
               + Fraction(int(bi), 2 ** 11) for row, bi in zip(w, b)]
        expected = [clamp(round_half_up(a * 2 ** out_fmt.frac), out_fmt) for a in acc]
        assert got == (expected if activation == "linear" else [max(v, 0) for v in expected])
