# amaranth: UnusedElaboratable=no
"""Dense engine vs model.fixed.dense, bit for bit, with random stalls on both streams."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.cost import BLOCK_RAMS, BlockRam
from hw.dense import Dense, dense_plan, dense_rom_images
from hw.estimate import dense_timing
from model.artifact import DenseSpec
from model.fixed import Fmt, dense
from sim.pysim import stream_get, stream_put


def make_case(seed, n_in, n_out, in_fmt, w_fmt, out_fmt, activation, batch, extremes=False):
    rng = np.random.default_rng(seed)
    spec = DenseSpec("t", n_in, n_out, in_fmt, w_fmt, out_fmt, activation)
    w = rng.integers(w_fmt.min_int, w_fmt.max_int + 1, size=(n_out, n_in))
    blim = 1 << (in_fmt.width + w_fmt.width - 2)
    b = rng.integers(-blim // 4, blim // 4 + 1, size=n_out)
    x = rng.integers(in_fmt.min_int, in_fmt.max_int + 1, size=(batch, n_in))
    if extremes:
        w[0, :] = w_fmt.min_int          # most negative weights
        x[0, :] = in_fmt.min_int         # most negative inputs: huge positive sums
        x[1 % batch, :] = 0              # zero vector: bias only
        b[0] = blim                      # the largest bias the proof allows
        if n_out > 1:
            w[1, :] = w_fmt.max_int
            b[1] = -blim
    return spec, w, b, x


def run_dense(spec, w, b, x, lanes, *, p_gap=0.0, p_stall=0.0, seed=0, mult_width=18,
              block_ram=None):
    dut = Dense(dense_plan(spec, lanes, mult_width, block_ram), w, b)
    rng = np.random.default_rng(seed + 1000)
    result = {}

    async def producer(ctx):
        await stream_put(ctx, dut.i, [int(v) for v in x.reshape(-1)], rng, p_gap)

    async def consumer(ctx):
        times = []
        result["out"] = await stream_get(ctx, dut.o, x.shape[0] * spec.n_out, rng, p_stall,
                                          times=times)
        result["times"] = times

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return np.array(result["out"]).reshape(x.shape[0], spec.n_out), result["times"]


#: A block RAM small enough that the test layers' ROMs are cut into columns.
TINY_RAM = BlockRam("tiny", ((8, 8), (4, 16), (2, 32), (1, 64)))

CASES = [
    # n_in, n_out, in_fmt, w_fmt, out_fmt, act, lanes, p_gap, p_stall (, mult_width, block_ram)
    (7, 5, Fmt(8, 4), Fmt(8, 6), Fmt(8, 4), "relu", 2, 0.3, 0.3),      # lanes do not divide
    (7, 5, Fmt(8, 4), Fmt(8, 6), Fmt(6, 2), "linear", 1, 0.2, 0.5),    # lanes = 1, saturating out
    (9, 6, Fmt(10, 6), Fmt(6, 5), Fmt(5, 1), "linear", 6, 0.5, 0.2),   # lanes = n_out, saturates
    (3, 11, Fmt(12, 8), Fmt(8, 7), Fmt(12, 8), "relu", 4, 0.0, 0.6),   # output-bound (lanes > n_in)
    (1, 4, Fmt(8, 0), Fmt(4, 3), Fmt(8, 3), "linear", 3, 0.4, 0.4),    # n_in = 1
    (16, 13, Fmt(16, 10), Fmt(8, 7), Fmt(16, 10), "relu", 5, 0.1, 0.1),
    (5, 3, Fmt(8, 2), Fmt(8, 1), Fmt(16, 6), "linear", 2, 0.3, 0.3),   # shift <= 0: widening out
    (6, 4, Fmt(8, 4), Fmt(8, 6), Fmt(8, 4), "relu", 7, 0.2, 0.2),      # lanes > n_out
    (9, 5, Fmt(16, 10), Fmt(8, 7), Fmt(16, 10), "linear", 2, 0.2, 0.2, 6),  # products in limbs
    (7, 5, Fmt(8, 4), Fmt(8, 6), Fmt(8, 4), "relu", 2, 0.3, 0.3, 18, TINY_RAM),  # ROM in columns
    (3, 11, Fmt(12, 8), Fmt(8, 7), Fmt(12, 8), "relu", 1, 0.1, 0.5, 18, TINY_RAM),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_dense_matches_golden(case):
    n_in, n_out, in_fmt, w_fmt, out_fmt, act, lanes, p_gap, p_stall, *rest = CASES[case]
    mult_width, block_ram = [*rest, *[18, None][len(rest):]]
    spec, w, b, x = make_case(case, n_in, n_out, in_fmt, w_fmt, out_fmt, act, batch=4, extremes=True)
    want = dense(x, w, b, in_fmt, w_fmt, out_fmt, act)
    got, _ = run_dense(spec, w, b, x, lanes, p_gap=p_gap, p_stall=p_stall, seed=case,
                       mult_width=mult_width, block_ram=block_ram)
    np.testing.assert_array_equal(got, want)


def test_dense_saturation_is_exercised():
    spec, w, b, x = make_case(2, 9, 6, Fmt(10, 6), Fmt(6, 5), Fmt(5, 1), "linear", 4, extremes=True)
    want = dense(x, w, b, spec.in_fmt, spec.w_fmt, spec.out_fmt, "linear")
    assert (want == spec.out_fmt.max_int).any() and (want == spec.out_fmt.min_int).any()


@pytest.mark.parametrize("n_in,n_out,lanes,block_ram", [
    (12, 10, 3, None), (4, 9, 4, None), (20, 7, 7, None), (6, 6, 1, None), (12, 10, 3, TINY_RAM)])
def test_dense_timing_model_exact(n_in, n_out, lanes, block_ram):
    """With a dense input and an always-ready output the cycle of every word is predicted."""
    spec, w, b, x = make_case(7, n_in, n_out, Fmt(8, 4), Fmt(8, 6), Fmt(8, 4), "relu", batch=1)
    got, times = run_dense(spec, w, b, x, lanes, block_ram=block_ram)
    np.testing.assert_array_equal(got, dense(x, w, b, spec.in_fmt, spec.w_fmt, spec.out_fmt, "relu"))
    # producer offers word j at cycle j; the consumer's cycle count starts at 0 too
    model = dense_timing(dense_plan(spec, lanes, block_ram=block_ram), list(range(n_in)))
    assert times == model


def test_rom_image_layout():
    spec = DenseSpec("t", 3, 5, Fmt(8, 4), Fmt(8, 6), Fmt(8, 4), "relu")
    w = np.arange(15).reshape(5, 3)
    b = np.arange(5) * 10
    w_img, b_img = dense_rom_images(spec, w, b, 2)
    assert w_img.shape == (2, 9) and b_img.shape == (2, 3)
    assert list(w_img[1]) == [3, 4, 5, 9, 10, 11, 0, 0, 0]
    half = 1 << (4 + 6 - 4 - 1)  # the requantizer's rounding half rides in the bias
    assert list(b_img[0]) == [half, 20 + half, 40 + half]
    assert list(b_img[1]) == [10 + half, 30 + half, 0]  # the padding row stays zero


def test_dense_argument_errors():
    spec = DenseSpec("t", 3, 2, Fmt(8, 4), Fmt(8, 6), Fmt(8, 4), "relu")
    w, b = np.zeros((2, 3), int), np.zeros(2, int)
    with pytest.raises(ValueError, match="lanes must be at least 1"):
        dense_plan(spec, 0)
    with pytest.raises(TypeError, match="lanes must be an int"):
        dense_plan(spec, 2.0)
    with pytest.raises(TypeError, match="block_ram must be a hw.cost.BlockRam or None, not 512"):
        dense_plan(spec, 1, block_ram=512)
    plan = dense_plan(spec, 1)
    with pytest.raises(ValueError, match="weight must be"):
        Dense(plan, np.zeros((3, 2), int), b)
    with pytest.raises(ValueError, match="weights outside"):
        Dense(plan, np.full((2, 3), 200), b)
    with pytest.raises(ValueError, match="overflow"):
        Dense(plan, w, np.array([1 << 19, 0]))
    with pytest.raises(TypeError, match="DensePlan"):
        Dense(spec, w, b)


@pytest.mark.parametrize("family,depth,lanes,columns", [
    ("ecp5", 784 * 4, 32, [4] * 64),        # MNIST enc0 at 32 lanes: 3,136 deep, 4-bit columns
    ("ecp5", 128 * 28, 28, [4] * 56),
    ("ecp5", 128 * 2, 12, [36, 36, 24]),    # shallow: the widest shape
    ("ecp5", 20000, 1, [1] * 8),            # deeper than any shape: the deepest one's width
    ("ice40", 64, 1, [8]),
])
def test_rom_columns_fit_one_block_ram(family, depth, lanes, columns):
    spec = DenseSpec("t", depth, lanes, Fmt(16, 10), Fmt(8, 6), Fmt(16, 10), "relu")  # 1 pass
    plan = dense_plan(spec, lanes, block_ram=BLOCK_RAMS[family])
    assert plan.depth == depth
    assert [width for _, width in plan.rom_columns] == columns
    assert [lo for lo, _ in plan.rom_columns] == [sum(columns[:k]) for k in range(len(columns))]
    assert dense_plan(spec, lanes).rom_columns == [(0, 8 * lanes)]
