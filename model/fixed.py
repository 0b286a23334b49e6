"""The numerics specification of fxvae: every rule that decides a bit.

Both the golden model (:mod:`model.golden`) and the Amaranth generator
(:mod:`hw`) import this module; neither re-derives a constant or a rounding
rule of its own.  The float reference model (:mod:`model.vae`) imports the
real-valued approximants from here too, so that float-vs-quantized measures
quantization only.

The rules, on one page
----------------------
* A value is two's complement ``Fmt(width, frac)``: ``real = int / 2**frac``.
* Every right shift that drops bits rounds half up: ``(x + 2**(s-1)) >> s``
  with an arithmetic shift (:func:`round_shift`).
* Every narrowing saturates to the destination range (:func:`saturate`).
  Nothing wraps.  :func:`requantize` = round then saturate; a dense layer
  adds the rounding half with its bias (:func:`requantize_halved`).
* Dense layer: ``acc = sum(x*w) + b`` at full precision, fraction
  ``fx + fw`` (the bias is stored already aligned to it), accumulator width
  from :func:`acc_width` so no sum can overflow; then one :func:`requantize`
  to the output format, with ReLU as its lower bound (the two commute).
* Odd polynomials (output sigmoid, Gaussian correction) run Horner's rule on
  ``u = x*x`` with coefficients and intermediates ``HORNER_GUARD_BITS``
  fractional bits wider than the output: a short program of integer steps
  ``dest = addend + round_shift(a*b, shift)`` (:func:`odd_poly_steps`) that the
  golden model runs on numbers and the hardware on registers.
* sigma = exp(logvar/2) comes from a ROM indexed by the clamped logvar
  rounded to ``index_frac`` bits (:func:`sigma_rom_contents`).
* z = mu + sigma*eps is summed exactly at the finer of the two fractions,
  then requantized once (:class:`ReparamSpec`, :func:`reparam`).
* Range analysis (:class:`Span`) bounds every intermediate, so the hardware
  sizes each register to the values it can hold and no step can wrap.

The rules are written once, on operators that Python ints, numpy arrays and
the generator's range-tracked Amaranth expressions (``hw.arith.Ranged``) all
provide (``+ - * << >>`` and ``.clip``), so the generator builds its logic by
calling these very functions.
* eps: twelve maximal-length Fibonacci LFSRs (lengths 43..65, XAPP052 taps)
  each give 12 fresh bits a draw; the 12 uniforms are summed (Irwin-Hall,
  unit variance) and optionally bent by Teichroew's odd polynomial
  (:func:`sample_eps`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SigmoidApprox", "SIGMOID_KINDS", "LOGVAR_RANGE", "HORNER_GUARD_BITS",
    "Fmt", "Span", "round_shift", "rounding_bias", "ShiftAdd", "shift_add", "round_shift_add",
    "saturate", "rounding_half",
    "requantize",
    "requantize_halved", "acc_width",
    "dense", "OddPoly", "odd_poly_spec", "PolyStep", "odd_poly_steps", "odd_poly_spans",
    "odd_poly", "SigmoidSpec", "sigmoid_spec", "sigmoid",
    "SigmaRomSpec", "sigma_rom_spec", "sigma_rom_contents", "sigma_rom_index",
    "ReparamSpec", "reparam", "Lfsr", "LFSR_BANK", "lfsr_seeds", "lfsr_step", "lfsr_stream",
    "UNIFORM_BITS", "N_UNIFORMS", "IRWIN_HALL_FRAC", "IRWIN_HALL_OFFSET", "IRWIN_HALL_SPAN",
    "TEICHROEW_COEFFS", "SamplerSpec", "sampler_spec", "eps_from_uniforms", "MODES",
]

# --------------------------------------------------------------------------
# Real-valued approximants shared with the float model


@dataclass(frozen=True)
class SigmoidApprox:
    """An odd quintic around 0 for the output sigmoid.

    ``sigma(x) ~= 1/2 + x*(c1 + u*(c3 + u*c5))`` with ``u = x*x``, evaluated on
    the input clamped to ``[-input_clamp, input_clamp]``.  For ``taylor5`` the
    clamp 2.29 minimises the worst error over all reals (0.0465); for
    ``minimax5`` the clamp is where the polynomial reaches exactly 1, so the
    output saturates there (worst error 0.0096).
    """

    coeffs: tuple[float, float, float]
    input_clamp: float


SIGMOID_KINDS: dict[str, SigmoidApprox] = {
    "taylor5": SigmoidApprox(coeffs=(1 / 4, -1 / 48, 1 / 480), input_clamp=2.29),
    "minimax5": SigmoidApprox(coeffs=(0.232432, -0.0109205, 2.3631e-4),
                              input_clamp=4.692952946289555),
}

#: log sigma^2 is clamped to this range in the float model and in hardware:
#: sigma = exp(logvar/2) then spans [0.018, 7.39], which the sigma ROM covers.
LOGVAR_RANGE: tuple[float, float] = (-8.0, 4.0)

#: Extra fractional bits of polynomial coefficients and Horner intermediates
#: beyond the output format; 10 keeps the arithmetic error <= 0.53 output LSB.
HORNER_GUARD_BITS = 10

# --------------------------------------------------------------------------
# Formats and the three primitive operations


@dataclass(frozen=True)
class Fmt:
    """Two's-complement fixed point: ``width`` bits, ``frac`` of them fractional."""

    width: int
    frac: int

    def __post_init__(self):
        if not isinstance(self.width, int) or not isinstance(self.frac, int):
            raise TypeError(f"Fmt width and frac must be int, not {self.width!r}, {self.frac!r}")
        if self.width < 2:
            raise ValueError(f"Fmt width must be at least 2 (sign + 1 bit), not {self.width}")

    @property
    def min_int(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def max_int(self) -> int:
        return (1 << (self.width - 1)) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac

    @property
    def max_real(self) -> float:
        return self.max_int * self.lsb

    @property
    def min_real(self) -> float:
        return self.min_int * self.lsb

    def quantize(self, real) -> np.ndarray:
        """Real -> int: round half up, saturate (never wraps)."""
        scaled = np.floor(np.asarray(real, dtype=np.float64) * 2.0 ** self.frac + 0.5)
        return np.clip(scaled, self.min_int, self.max_int).astype(np.int64)

    def to_real(self, ints) -> np.ndarray:
        return np.asarray(ints, dtype=np.float64) * self.lsb

    def to_json(self) -> list[int]:
        return [self.width, self.frac]

    @classmethod
    def from_json(cls, value) -> "Fmt":
        if not (isinstance(value, (list, tuple)) and len(value) == 2):
            raise ValueError(f"a format is [width, frac], not {value!r}")
        return cls(int(value[0]), int(value[1]))

    def __str__(self) -> str:
        return f"Q{self.width}.{self.frac}"


@dataclass(frozen=True)
class Span:
    """The closed integer interval ``[lo, hi]`` a value can take (range analysis).

    The hardware sizes each register from the span of its expression, so no
    intermediate wraps and no bit holds a value that cannot occur.
    """

    lo: int
    hi: int

    def __post_init__(self):
        if self.lo > self.hi:
            raise ValueError(f"empty span [{self.lo}, {self.hi}]")

    @classmethod
    def of_fmt(cls, fmt: Fmt) -> "Span":
        return cls(fmt.min_int, fmt.max_int)

    @classmethod
    def point(cls, value: int) -> "Span":
        return cls(value, value)

    @property
    def signed(self) -> bool:
        return self.lo < 0

    @property
    def width(self) -> int:
        """Bits of the narrowest two's-complement (or, when ``lo >= 0``, unsigned) word."""
        if self.lo >= 0:
            return max(self.hi.bit_length(), 1)
        return max((-self.lo - 1).bit_length(), self.hi.bit_length()) + 1

    def square(self) -> "Span":
        """Span of ``x*x`` (tighter than ``self * self``: a square is never negative)."""
        lo = 0 if self.lo <= 0 <= self.hi else min(self.lo ** 2, self.hi ** 2)
        return Span(lo, max(self.lo ** 2, self.hi ** 2))

    def __mul__(self, other: "Span") -> "Span":
        corners = [a * b for a in (self.lo, self.hi) for b in (other.lo, other.hi)]
        return Span(min(corners), max(corners))

    def __add__(self, other: "Span | int") -> "Span":
        if isinstance(other, int):
            return Span(self.lo + other, self.hi + other)
        return Span(self.lo + other.lo, self.hi + other.hi)

    def __neg__(self) -> "Span":
        return Span(-self.hi, -self.lo)

    def __sub__(self, other: "Span | int") -> "Span":
        return self + (-other)

    def __lshift__(self, shift: int) -> "Span":
        return Span(self.lo << shift, self.hi << shift)

    def __rshift__(self, shift: int) -> "Span":  # floor division: monotone
        return Span(self.lo >> shift, self.hi >> shift)

    def clip(self, lo: int, hi: int) -> "Span":
        return Span(min(max(self.lo, lo), hi), max(min(self.hi, hi), lo))

    def __contains__(self, other: "Span") -> bool:
        return self.lo <= other.lo and other.hi <= self.hi


def round_shift(x, shift: int):
    """Arithmetic shift right by ``shift`` rounding half up; ``shift <= 0`` shifts left exactly."""
    return round_shift_add(x, shift, 0)


def rounding_bias(shift: int, addend: int = 0) -> int:
    """What :func:`round_shift_add` adds before a right shift by ``shift``: the
    rounding half and ``addend`` aligned above it (0 when ``shift <= 0``)."""
    if shift <= 0:
        return 0
    return (1 << (shift - 1)) + (addend << shift)


def _shift_right(x, n: int):
    """``x >> n``; a negative ``n`` shifts left."""
    return x >> n if n >= 0 else x << -n


@dataclass(frozen=True)
class ShiftAdd:
    """``((x >> pre) + constant) >> post`` (a negative ``pre`` shifts left): the
    form :func:`round_shift_add` takes, one adder between two shifts."""

    pre: int
    constant: int
    post: int

    def shift_in(self, x):
        return _shift_right(x, self.pre)

    def shift_out(self, y):
        return _shift_right(y, self.post)

    def after_shift(self, k: int) -> "ShiftAdd":
        """The same function of ``x`` applied to ``x >> k`` (``0 <= k <= pre``): the bits
        below ``pre`` are dropped anyway, so hardware may drop ``k`` of them early."""
        if not 0 <= k <= max(self.pre, 0):
            raise ValueError(f"can drop 0..{max(self.pre, 0)} bits early, not {k}")
        return ShiftAdd(self.pre - k, self.constant, self.post)

    def __call__(self, x):
        shifted = self.shift_in(x)
        return self.shift_out(shifted + self.constant if self.constant else shifted)


def shift_add(shift: int, addend: int) -> ShiftAdd:
    """:func:`round_shift_add` as a :class:`ShiftAdd`.

    For a right shift it is ``(x + rounding_bias(shift, addend)) >> shift``
    with the bits below ``shift - 1`` dropped first (no other term has bits
    there, so none can carry): ``((x >> (shift-1)) + 1 + 2*addend) >> 1``, an
    adder as narrow as the result.
    """
    if shift <= 0:
        return ShiftAdd(shift, addend, 0)
    return ShiftAdd(shift - 1, rounding_bias(shift, addend) >> (shift - 1), 1)


def round_shift_add(x, shift: int, addend: int):
    """``addend + round_shift(x, shift)`` with one adder (:func:`shift_add`).

    Adding ``addend * 2**shift`` before a floor shift adds exactly ``addend``
    after it, because ``addend`` is an integer.
    """
    return shift_add(shift, addend)(x)


def _clip(x, lo: int, hi: int):
    """``min(max(x, lo), hi)`` for ints, and ``x.clip`` for numpy and the generator's values."""
    if isinstance(x, int):
        return min(max(x, lo), hi)
    return x.clip(lo, hi)


def saturate(x, fmt: Fmt):
    """Clamp an integer (array, expression) into ``fmt``'s range."""
    return _clip(x, fmt.min_int, fmt.max_int)


def rounding_half(from_frac: int, fmt: Fmt) -> int:
    """What :func:`round_shift` adds before requantizing from ``from_frac`` to ``fmt``:
    ``2**(shift-1)`` for a right shift, 0 otherwise."""
    return rounding_bias(from_frac - fmt.frac)


def requantize(x, from_frac: int, fmt: Fmt, *, relu: bool = False):
    """Change fraction from ``from_frac`` to ``fmt.frac`` (round half up), then saturate.

    ``relu`` raises the lower bound to 0: ReLU after saturation is the same
    clip, so a ReLU layer needs one clip, not two.
    """
    return requantize_halved(x + rounding_half(from_frac, fmt), from_frac, fmt, relu=relu)


def requantize_halved(x, from_frac: int, fmt: Fmt, *, relu: bool = False):
    """:func:`requantize` of a value that already holds :func:`rounding_half`.

    A dense layer adds the half with its bias (golden model and hardware
    alike), so the accumulator needs only a shift and a clip.  A left shift
    (``fmt.frac > from_frac``) first clips ``x`` to one step beyond the
    values that land inside ``fmt``: the result is the same, and an int64
    array cannot wrap on the way.
    """
    shift = from_frac - fmt.frac
    if shift < 0:
        x = saturate(x, Fmt(max(fmt.width + shift, 1) + 1, 0)) << -shift
    else:
        x = x >> shift
    return _clip(x, 0 if relu else fmt.min_int, fmt.max_int)


def acc_width(x_fmt: Fmt, w_fmt: Fmt, n_in: int) -> int:
    """Accumulator width that cannot overflow.

    Each product and the aligned bias lie in ``[-2**(wx+ww-2), 2**(wx+ww-2)]``;
    ``n_in + 1`` of them stay below ``2**(wx+ww+ceil(log2 n_in)) - 1``.
    """
    if n_in < 1:
        raise ValueError(f"a dense layer needs at least one input, not {n_in}")
    return x_fmt.width + w_fmt.width + math.ceil(math.log2(n_in)) + 1


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, x_fmt: Fmt, w_fmt: Fmt,
          out_fmt: Fmt, activation: str) -> np.ndarray:
    """Reference integer dense layer: ``x`` (batch, n_in), ``weight`` (n_out, n_in).

    ``bias`` is at the accumulator's fraction ``x_fmt.frac + w_fmt.frac``.
    Exact int64 arithmetic (slow; :mod:`model.golden` has the fast exact path).
    """
    if activation not in ("relu", "linear"):
        raise ValueError(f"activation must be 'relu' or 'linear', not {activation!r}")
    acc = x.astype(np.int64) @ weight.astype(np.int64).T + bias.astype(np.int64)
    return requantize(acc, x_fmt.frac + w_fmt.frac, out_fmt, relu=activation == "relu")


@dataclass(frozen=True)
class OddPoly:
    """Integer odd polynomial ``c1 x + c3 x^3 + ...`` for ``|x| <= 2**scale_log2``.

    Horner runs on ``v = x / 2**scale_log2`` (the same integer read with
    ``scale_log2`` more fractional bits), with coefficients ``c_i * 2**(i *
    scale_log2)``: then ``|v| <= 1``, every coefficient's rounding error
    weighs at most one unit of ``coef_frac``, and no intermediate outgrows
    64 bits.
    """

    x_frac: int
    scale_log2: int
    coef_frac: int
    coeffs_int: tuple[int, ...]
    out_frac: int

    @property
    def v_frac(self) -> int:
        return self.x_frac + self.scale_log2


def odd_poly_spec(coeffs, x_max: float, x_frac: int, out_frac: int) -> OddPoly:
    scale_log2 = max(0, math.ceil(math.log2(x_max)))
    coef_frac = out_frac + HORNER_GUARD_BITS
    scaled = [c * 2.0 ** (scale_log2 * (2 * i + 1)) for i, c in enumerate(coeffs)]
    coeffs_int = tuple(int(math.floor(c * 2 ** coef_frac + 0.5)) for c in scaled)
    if 2 * coef_frac + max(abs(c) for c in coeffs_int).bit_length() - coef_frac > 62:
        raise ValueError(f"odd polynomial at {coef_frac} fractional bits would overflow 64-bit steps")
    return OddPoly(x_frac, scale_log2, coef_frac, coeffs_int, out_frac)


@dataclass(frozen=True)
class PolyStep:
    """One integer step of Horner's rule: ``dest = addend + round_shift(a * b, shift)``.

    Operands and destinations name registers: ``x`` (the input, scaled to
    ``v``), ``u`` (``v*v``), ``acc`` (Horner's accumulator; it starts at the top
    coefficient) and ``y`` (the result).
    """

    a: str
    b: str
    dest: str
    shift: int
    addend: int

    def finish(self, product):
        """The step's result from its exact product (the hardware registers the product first)."""
        return round_shift_add(product, self.shift, self.addend)

    def apply(self, a, b):
        return self.finish(a * b)

    def product_span(self, a: Span, b: Span) -> Span:
        return a.square() if self.a == self.b else a * b

    def result_span(self, a: Span, b: Span) -> Span:
        return self.finish(self.product_span(a, b))


def odd_poly_steps(poly: OddPoly, offset: int = 0) -> tuple[PolyStep, ...]:
    """The program of :func:`odd_poly`: ``u = x*x``, one Horner step per lower
    coefficient (the first multiplies by the top coefficient, ``acc``'s start
    value), then ``y = offset + x*acc`` (the sigmoid's 1/2 rides on the last
    step's rounding adder)."""
    cf = poly.coef_frac
    out = PolyStep("x", "acc", "y", poly.v_frac + cf - poly.out_frac, offset)
    if len(poly.coeffs_int) == 1:
        return (out,)
    square = PolyStep("x", "x", "u", 2 * poly.v_frac - cf, 0)
    horner = tuple(PolyStep("u", "acc", "acc", cf, c) for c in reversed(poly.coeffs_int[:-1]))
    return (square, *horner, out)


def odd_poly_spans(poly: OddPoly, x_span: Span, offset: int = 0) -> list[dict[str, Span]]:
    """Every register's span before each step and after the last (range analysis).

    Entry ``k`` maps register names to spans as step ``k`` reads them; the
    last entry holds ``y``.  The hardware sizes its registers from these.
    """
    spans = {"x": x_span, "acc": Span.point(poly.coeffs_int[-1])}
    out = [dict(spans)]
    for step in odd_poly_steps(poly, offset):
        spans[step.dest] = step.result_span(spans[step.a], spans[step.b])
        out.append(dict(spans))
    return out


def odd_poly(x, poly: OddPoly, offset: int = 0):
    """``v * (c1 + u*(c3 + u*(c5 + ...)))`` with ``u = v*v``, Horner's rule.

    ``u`` and every Horner step are rounded to ``coef_frac`` bits; the final
    product is rounded to ``out_frac``.  Runs :func:`odd_poly_steps`, the
    program the hardware runs one step per stage (or per multiplier turn).
    ``offset`` is added to the result exactly.
    """
    regs = {"x": x, "acc": poly.coeffs_int[-1]}
    for step in odd_poly_steps(poly, offset):
        regs[step.dest] = step.apply(regs[step.a], regs[step.b])
    return regs["y"]


# --------------------------------------------------------------------------
# Output sigmoid


@dataclass(frozen=True)
class SigmoidSpec:
    """Integer parameters of the sigmoid unit (input = the last layer's logits)."""

    kind: str
    in_fmt: Fmt
    out_fmt: Fmt
    poly: OddPoly
    clamp_int: int
    half_int: int
    one_int: int

    def clamp_input(self, x):
        """Stage one: the polynomial only ever sees ``[-clamp_int, clamp_int]``."""
        return _clip(x, -self.clamp_int, self.clamp_int)

    def saturate_output(self, y):
        """Last stage: ``1/2 + p`` (the polynomial's ``offset``) saturated to ``[0, 1]``."""
        return _clip(y, 0, self.one_int)


def sigmoid_spec(kind: str, in_fmt: Fmt, out_fmt: Fmt) -> SigmoidSpec:
    if kind not in SIGMOID_KINDS:
        raise ValueError(f"sigmoid kind must be one of {sorted(SIGMOID_KINDS)}, not {kind!r}")
    if out_fmt.frac < 1 or out_fmt.max_real < 1:
        raise ValueError(f"sigmoid output format {out_fmt} cannot hold 1")
    approx = SIGMOID_KINDS[kind]
    clamp = min(int(math.floor(approx.input_clamp * 2 ** in_fmt.frac + 0.5)), in_fmt.max_int)
    poly = odd_poly_spec(approx.coeffs, clamp * in_fmt.lsb, in_fmt.frac, out_fmt.frac)
    return SigmoidSpec(kind, in_fmt, out_fmt, poly, clamp,
                       half_int=1 << (out_fmt.frac - 1), one_int=1 << out_fmt.frac)


def sigmoid(x, spec: SigmoidSpec):
    """Clamp the input, odd quintic by Horner, add 1/2, saturate to [0, 1]."""
    return spec.saturate_output(odd_poly(spec.clamp_input(x), spec.poly, offset=spec.half_int))


# --------------------------------------------------------------------------
# sigma = exp(logvar / 2) from a ROM


@dataclass(frozen=True)
class SigmaRomSpec:
    """The ROM maps the clamped, re-rounded logvar to sigma.

    Address = ``round_shift(clip(logvar, lo_int, hi_int), logvar_fmt.frac -
    index_frac) - lo_index``.
    """

    logvar_fmt: Fmt
    sigma_fmt: Fmt
    index_frac: int
    lo_int: int
    hi_int: int

    @property
    def lo_index(self) -> int:
        return round_shift(self.lo_int, self.logvar_fmt.frac - self.index_frac)

    @property
    def depth(self) -> int:
        return round_shift(self.hi_int, self.logvar_fmt.frac - self.index_frac) - self.lo_index + 1


def sigma_rom_spec(logvar_fmt: Fmt, sigma_fmt: Fmt, index_frac: int = 6) -> SigmaRomSpec:
    lo, hi = LOGVAR_RANGE
    lo_int = max(math.ceil(lo * 2 ** logvar_fmt.frac), logvar_fmt.min_int)
    hi_int = min(math.floor(hi * 2 ** logvar_fmt.frac), logvar_fmt.max_int)
    if sigma_fmt.max_real < math.exp(hi / 2):
        raise ValueError(f"sigma format {sigma_fmt} cannot hold exp({hi}/2) = {math.exp(hi / 2):.3f}")
    return SigmaRomSpec(logvar_fmt, sigma_fmt, index_frac, lo_int, hi_int)


def sigma_rom_contents(spec: SigmaRomSpec) -> np.ndarray:
    """The ROM image: entry k holds sigma at logvar = (lo_index + k) / 2**index_frac."""
    logvar = (spec.lo_index + np.arange(spec.depth)) * 2.0 ** -spec.index_frac
    return spec.sigma_fmt.quantize(np.exp(logvar / 2))


def sigma_rom_index(logvar, spec: SigmaRomSpec):
    """The ROM address: clamp, round to ``index_frac`` bits, minus ``lo_index`` (one adder)."""
    clamped = _clip(logvar, spec.lo_int, spec.hi_int)
    return round_shift_add(clamped, spec.logvar_fmt.frac - spec.index_frac, -spec.lo_index)


# --------------------------------------------------------------------------
# Reparameterization


@dataclass(frozen=True)
class ReparamSpec:
    """z = mu + sigma*eps: both terms aligned to ``acc_frac``, the finer fraction."""

    mu_fmt: Fmt
    sigma_fmt: Fmt
    eps_fmt: Fmt
    z_fmt: Fmt

    @property
    def prod_frac(self) -> int:
        return self.sigma_fmt.frac + self.eps_fmt.frac

    @property
    def acc_frac(self) -> int:
        return max(self.prod_frac, self.mu_fmt.frac)

    @property
    def mu_shift(self) -> int:
        """Left shift aligning mu to ``acc_frac``."""
        return self.acc_frac - self.mu_fmt.frac

    @property
    def prod_shift(self) -> int:
        """Left shift aligning sigma*eps to ``acc_frac``."""
        return self.acc_frac - self.prod_frac

    def product_span(self) -> Span:
        return Span.of_fmt(self.sigma_fmt) * Span.of_fmt(self.eps_fmt)

    def sum_span(self) -> Span:
        """Span of the exact sum before requantization."""
        return (Span.of_fmt(self.mu_fmt) << self.mu_shift) + (self.product_span() << self.prod_shift)



    def mu_term(self, mu):
        """mu aligned to ``acc_frac``, carrying the requantizer's rounding half (the
        hardware forms it beside the product, a clock before the sum)."""
        return (mu << self.mu_shift) + rounding_half(self.acc_frac, self.z_fmt)

    def halved_sum(self, mu, product):
        """The exact sum at ``acc_frac`` plus the rounding half (:func:`requantize_halved`)."""
        return self.mu_term(mu) + (product << self.prod_shift)

    def finish_halved(self, halved_sum):
        return requantize_halved(halved_sum, self.acc_frac, self.z_fmt)

    def finish(self, mu, product):
        """z from mu and the exact product sigma*eps."""
        return self.finish_halved(self.halved_sum(mu, product))


def reparam(mu, sigma, eps, spec: ReparamSpec):
    """z = mu + sigma*eps, summed exactly at the finer fraction, requantized once.

    With ``eps = 0`` this is mu requantized to ``z_fmt``: the deterministic
    mode uses the same datapath.
    """
    return spec.finish(mu, sigma * eps)


# --------------------------------------------------------------------------
# LFSRs


@dataclass(frozen=True)
class Lfsr:
    """Fibonacci LFSR as a bit sequence: ``s[t] = XOR_k s[t - k]`` for k in ``taps``.

    State = the last ``length`` bits, bit i = s[T - length + i] (bit 0 oldest).
    One draw appends ``UNIFORM_BITS`` bits; the first appended is the
    uniform's MSB.  Every tap is at least ``UNIFORM_BITS``, so all bits of a
    draw depend only on the state before it (one clock in hardware).
    """

    length: int
    taps: tuple[int, ...]


#: Maximal-length taps from Xilinx XAPP052, one register per uniform; distinct
#: odd lengths 43..65, so every period 2**n - 1 exceeds 2**41, the periods
#: differ, and each stays 2**n - 1 when read 12 bits a draw (gcd(12, 2**n - 1) = 1).
LFSR_BANK: tuple[Lfsr, ...] = tuple(Lfsr(t[0], t) for t in (
    (43, 42, 38, 37), (45, 44, 42, 41), (47, 42), (49, 40), (51, 50, 36, 35),
    (53, 52, 38, 37), (55, 31), (57, 50), (59, 58, 38, 37), (61, 60, 46, 45), (63, 62), (65, 47)))

UNIFORM_BITS = 12
N_UNIFORMS = len(LFSR_BANK)


def lfsr_seeds(seed: int, bank: tuple[Lfsr, ...] = LFSR_BANK) -> tuple[int, ...]:
    """Nonzero initial states derived from one integer (splitmix64 per register)."""
    seeds = []
    for index, lfsr in enumerate(bank):
        z = (seed * 0x9E3779B97F4A7C15 + (index + 1) * 0xBF58476D1CE4E5B9) & (2 ** 64 - 1)
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2 ** 64 - 1)
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2 ** 64 - 1)
        z = (z ^ (z >> 31)) & ((1 << lfsr.length) - 1)
        seeds.append(z or 1)
    return tuple(seeds)


def lfsr_step(lfsr: Lfsr, state: int, nbits: int = UNIFORM_BITS) -> tuple[int, int]:
    """Append ``nbits`` bits (one clock): returns (the bits, first MSB; new state)."""
    n = lfsr.length
    if nbits > min(lfsr.taps):
        raise ValueError(f"{nbits} bits a step need every tap >= {nbits}, taps are {lfsr.taps}")
    bits = 0
    new = 0
    for j in range(nbits):
        bit = 0
        for k in lfsr.taps:
            bit ^= (state >> (n - k + j)) & 1
        new |= bit << j
        bits = (bits << 1) | bit
    return bits, (state >> nbits) | (new << (n - nbits))


def lfsr_stream(lfsr: Lfsr, state: int, nbits: int) -> tuple[np.ndarray, int]:
    """The next ``nbits`` bits of the sequence (uint8 array) and the new state.

    Same sequence as repeated :func:`lfsr_step`, computed in chunks: since
    ``p(x)**(2**j) = p(x**(2**j))`` over GF(2), the taps times ``2**j`` are a
    recurrence too, so chunks grow as the history does.
    """
    n = lfsr.length
    seq = np.empty(n + nbits, dtype=np.uint8)
    seq[:n] = [(state >> i) & 1 for i in range(n)]
    t = n
    while t < n + nbits:
        scale = 1
        while n * scale * 2 <= t:
            scale *= 2
        chunk = min(min(lfsr.taps) * scale, n + nbits - t)
        block = np.zeros(chunk, dtype=np.uint8)
        for k in lfsr.taps:
            block ^= seq[t - k * scale: t - k * scale + chunk]
        seq[t:t + chunk] = block
        t += chunk
    window = seq[nbits:]
    new_state = int.from_bytes(np.packbits(window[::-1]).tobytes(), "big") >> (-n % 8)
    return seq[n:], new_state


# --------------------------------------------------------------------------
# Gaussian sampler

#: Sum of 12 uniforms of 12 bits, each read as (u + 1/2) / 4096, minus 6:
#: integer ``sum(u) - 24570`` at 12 fractional bits, unit variance, reach +-6.
IRWIN_HALL_FRAC = UNIFORM_BITS
IRWIN_HALL_OFFSET = N_UNIFORMS * ((1 << UNIFORM_BITS) - 1) // 2
#: Every value ``sum(u) - IRWIN_HALL_OFFSET`` can take.
IRWIN_HALL_SPAN = Span(0, N_UNIFORMS * ((1 << UNIFORM_BITS) - 1)) - IRWIN_HALL_OFFSET

#: Teichroew's correction, on r = S/4: eps = a1 r + a3 r^3 + ... + a9 r^9.
TEICHROEW_COEFFS = (3.949846138, 0.252408784, 0.076542912, 0.008355968, 0.029899776)


@dataclass(frozen=True)
class SamplerSpec:
    correction: str              # "teichroew" or "none"
    eps_fmt: Fmt
    poly: OddPoly | None         # Teichroew's polynomial on S = sum - offset
    seeds: tuple[int, ...]


def sampler_spec(correction: str = "teichroew", seed: int = 1) -> SamplerSpec:
    reach = N_UNIFORMS / 2  # |S| <= 6
    if correction == "teichroew":
        eps_fmt = Fmt(16, 11)  # reach +-8.65
        # r = S/4, so the coefficient of S^i is a_i / 4^i.
        coeffs = [a / 4 ** (2 * i + 1) for i, a in enumerate(TEICHROEW_COEFFS)]
        poly = odd_poly_spec(coeffs, reach, IRWIN_HALL_FRAC, eps_fmt.frac)
    elif correction == "none":
        eps_fmt, poly = Fmt(16, IRWIN_HALL_FRAC), None  # reach +-6, exact
    else:
        raise ValueError(f"correction must be 'teichroew' or 'none', not {correction!r}")
    return SamplerSpec(correction, eps_fmt, poly, lfsr_seeds(seed))


def eps_from_uniforms(uniform_sum, spec: SamplerSpec):
    """Sum of the 12 uniforms (ints) -> eps in ``spec.eps_fmt``."""
    centred = uniform_sum - IRWIN_HALL_OFFSET
    if spec.poly is None:
        return requantize(centred, IRWIN_HALL_FRAC, spec.eps_fmt)
    return saturate(odd_poly(centred, spec.poly), spec.eps_fmt)


# --------------------------------------------------------------------------
# Modes of the core (the hardware's `mode` code is the index)

#: recon_mu: x -> decode(mu); recon_sample: x -> decode(mu + sigma*eps);
#: generate: decode(eps) with z drawn by the sampler; encode: x -> (mu, logvar).
MODES: tuple[str, ...] = ("recon_mu", "recon_sample", "generate", "encode")
#: The modes that draw eps from the sampler (latent_dim draws per job, in job order).
SAMPLING_MODES: tuple[str, ...] = ("recon_sample", "generate")
