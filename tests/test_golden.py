"""The golden model: its fast path, its modes, its trace, its error bound, QAT parity."""

import numpy as np
import pytest
import torch

from model.artifact import DenseSpec
from model.fixed import Fmt, dense, requantize, sigmoid
from model.golden import FLOAT64_EXACT_LIMIT, GoldenModel, Sampler, float64_exact
from model.qat import QATVAE, fake_quant
from model.random_artifact import random_artifact, random_inputs
from model.evaluate import evaluate


def test_float64_bound():
    layer = lambda n_in, wx, ww: DenseSpec("l", n_in, 1, Fmt(wx, 0), Fmt(ww, 0), Fmt(8, 0),  # noqa
                                          "linear")
    assert float64_exact(layer(784, 16, 8))                # 784 * 2**22 + 2**33 ~ 2**33.5
    # products + bias: 2**13 * 2**38 + 2**52 = 1.5 * 2**52; one input more widens the
    # accumulator, so the bias format, by a bit: 8193 * 2**38 + 2**53 > 2**53
    assert float64_exact(layer(2 ** 13, 20, 20))
    assert not float64_exact(layer(2 ** 13 + 1, 20, 20))
    assert not float64_exact(layer(2 ** 12, 21, 21))       # 2**52 + 2**53
    # why the bound matters: past 2**53 float64 sums round
    x, w = np.array([[FLOAT64_EXACT_LIMIT, 1]]), np.array([[1], [1]])
    assert int((x.astype(float) @ w.astype(float))[0, 0]) != int((x @ w)[0, 0])


@pytest.mark.parametrize("wbits, abits", [(8, 16), (4, 10), (40, 20)])
def test_fast_path_equals_int64_path(wbits, abits, quantize_tiny, iris_data):
    art = quantize_tiny(wbits, abits)
    fast, slow = GoldenModel(art), GoldenModel(art, matmul="int64")
    expected_float = {l.name for l in art.layers if float64_exact(l)}
    assert fast.float_layers == expected_float and not slow.float_layers
    if wbits == 40:
        assert not expected_float  # 4 * 2**(19+39) > 2**53: every layer falls back to int64
    x = fast.quantize_input(iris_data.x_test)
    for mode in ("recon_mu", "recon_sample", "encode"):
        assert np.array_equal(fast.run(mode, x), slow.run(mode, x))
    assert np.array_equal(fast.run("generate", n=7), slow.run("generate", n=7))


def test_fast_path_when_the_output_is_finer_than_the_accumulator():
    """acc_frac <= out_fmt.frac (requantize shifts left, saturating first): both paths agree."""
    art = random_artifact("iris", seed=2, act_fmt=Fmt(16, 14), w_fmt=Fmt(8, 0),
                          input_fmt=Fmt(9, 8))
    assert [l.acc_frac - l.out_fmt.frac for l in art.layers] == [-6, 0, 0, 0]
    fast, slow = GoldenModel(art), GoldenModel(art, matmul="int64")
    assert fast.float_layers == {l.name for l in art.layers}
    x = random_inputs(art, 50, seed=3)
    for mode in ("recon_mu", "recon_sample", "encode"):
        assert np.array_equal(fast.run(mode, x), slow.run(mode, x))


def test_modes_follow_the_datapath(quantize_tiny, iris_data):
    art = quantize_tiny()
    gm = GoldenModel(art)
    x = gm.quantize_input(iris_data.x_test)
    mu, logvar = gm.encode(x)
    assert np.array_equal(gm.run("encode", x), np.concatenate([mu, logvar], axis=1))
    z_mu = requantize(mu, art.mu_fmt.frac, art.z_fmt)
    assert np.array_equal(gm.run("recon_mu", x), gm.decode(z_mu))
    # recon_sample: eps image-major, latent-minor from the artifact's seeds
    eps = Sampler(art.sampler).draw(mu.size).reshape(mu.shape)
    prod_frac = art.sigma_rom.sigma_fmt.frac + art.sampler.eps_fmt.frac
    acc = (mu << (prod_frac - art.mu_fmt.frac)) + gm.sigma(logvar) * eps
    z = requantize(acc, prod_frac, art.z_fmt)
    assert np.array_equal(gm.run("recon_sample", x), gm.decode(z))
    # generate: sigma is the ROM entry at logvar 0, exactly 1.0
    assert gm.sigma(np.zeros(1, dtype=np.int64))[0] == 1 << art.sigma_rom.sigma_fmt.frac
    eps = Sampler(art.sampler).draw(3 * art.latent_dim).reshape(3, art.latent_dim)
    z = requantize(eps, art.sampler.eps_fmt.frac, art.z_fmt)
    assert np.array_equal(gm.run("generate", n=3), gm.decode(z))
    # the sampler passed in advances by exactly the draws
    sampler = Sampler(art.sampler)
    gm.run("recon_mu", x, sampler=sampler)
    assert sampler.state == art.sampler.seeds
    gm.run("generate", n=3, sampler=sampler)
    twin = Sampler(art.sampler)
    twin.draw(3 * art.latent_dim)
    assert sampler.state == twin.state


def test_dense_is_the_spec(quantize_tiny, iris_data):
    art = quantize_tiny()
    gm = GoldenModel(art)
    layer = art.encoder[0]
    x = gm.quantize_input(iris_data.x_test)
    expected = dense(x, art.weights[layer.name], art.biases[layer.name], layer.in_fmt,
                     layer.w_fmt, layer.out_fmt, layer.activation)
    assert np.array_equal(gm.dense(layer, x), expected)


def test_argument_errors(quantize_tiny, iris_data):
    gm = GoldenModel(quantize_tiny())
    x = gm.quantize_input(iris_data.x_test)
    with pytest.raises(ValueError, match="mode must be one of"):
        gm.run("dream", x)
    with pytest.raises(ValueError, match="takes n"):
        gm.run("generate", x)
    with pytest.raises(ValueError, match="takes x_int"):
        gm.run("recon_mu", n=3)
    with pytest.raises(ValueError, match=r"\(batch, 4\)"):
        gm.run("recon_mu", x[:, :3])
    with pytest.raises(ValueError, match="outside Q16.14"):
        gm.run("recon_mu", x * 4)
    with pytest.raises(ValueError, match="ints"):
        gm.run("recon_mu", x.astype(float))
    with pytest.raises(ValueError, match="'auto' or 'int64'"):
        GoldenModel(gm.artifact, matmul="float32")


def test_trace(quantize_tiny, iris_data):
    art = quantize_tiny()
    gm = GoldenModel(art)
    x = gm.quantize_input(iris_data.x_test)
    trace = gm.trace(x)
    names = ["input", *(l.name for l in art.encoder), "mu", "logvar", "sigma", "z",
             *(l.name for l in art.decoder), "output"]
    assert list(trace) == names
    assert np.array_equal(trace["output"]["int"], gm.run("recon_mu", x))
    assert np.array_equal(trace["output"]["int"], sigmoid(trace["dec_out"]["int"], art.sigmoid))
    for stage in trace.values():
        assert np.array_equal(stage["real"], stage["int"] * stage["fmt"].lsb)
    sampled = gm.trace(x, sampler=Sampler(art.sampler))
    assert np.array_equal(sampled["output"]["int"], gm.run("recon_sample", x))


def test_error_bound_holds(quantize_tiny, iris_data, tiny_iris_vae):
    """|golden - float64 model| <= the bound of model.quantize.recon_error_bound:
    per layer e' = |W| e + |W_q - W| |x_q| + |b_q - b| + LSB/2, then L e + A."""
    for wbits in (8, 5):
        art = quantize_tiny(wbits)
        bound = evaluate(art, tiny_iris_vae, iris_data.x_test)["error_bound"]
        assert bound["images_covered"] == len(iris_data.x_test)
        assert bound["holds"] and bound["max_error"] <= bound["max_bound"]


def test_qat_forward_is_bit_exact_with_golden(quantize_tiny, iris_data, tiny_iris_vae):
    art = quantize_tiny(6, 14)
    qat = QATVAE(tiny_iris_vae, art).double().eval()
    gm = GoldenModel(art)
    x = iris_data.x_test
    trace = gm.trace(gm.quantize_input(x))
    with torch.no_grad():
        mu, logvar = qat.encode(torch.from_numpy(x).double())
        logits = qat.decode_logits(fake_quant(mu, art.z_fmt))
    assert np.array_equal(mu.numpy(), trace["mu"]["real"])
    assert np.array_equal(logvar.numpy(), trace["logvar"]["real"])
    assert np.array_equal(logits.numpy(), trace["dec_out"]["real"])


def test_fake_quant_rounding_and_gradient():
    fmt = Fmt(6, 3)
    x = torch.linspace(-6, 6, 241, dtype=torch.float64, requires_grad=True)
    y = fake_quant(x, fmt)
    assert np.array_equal(y.detach().numpy(), fmt.to_real(fmt.quantize(x.detach().numpy())))
    y.sum().backward()
    inside = (x.detach() >= fmt.min_real) & (x.detach() <= fmt.max_real)
    assert torch.equal(x.grad, inside.double())  # clipped straight-through
    x.grad = None
    fake_quant(x, fmt, clip_grad=False).sum().backward()
    assert torch.all(x.grad == 1)
