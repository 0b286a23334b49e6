import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.decomposition import PCA as SklearnPCA

from model.baselines import PCA
from model.fixed import LOGVAR_RANGE, SIGMOID_KINDS
from model.vae import (PRESETS, VAE, CheckpointError, VAEConfig, batch_loss, elbo,
                       kl_divergence, load_checkpoint, make_config, output_activation,
                       save_checkpoint)


def small_config(**overrides) -> VAEConfig:
    return make_config("mnist", **{"input_dim": 12, "hidden": [8, 6], "latent_dim": 3, **overrides})


# --- output activation ------------------------------------------------------

def test_taylor5_values():
    x = torch.tensor([0.0, 1.0, -1.0, 2.29, 10.0, -10.0], dtype=torch.float64)
    y = output_activation(x, "taylor5")
    at_clamp = 0.5 + 2.29 / 4 - 2.29 ** 3 / 48 + 2.29 ** 5 / 480
    expected = [0.5, 0.5 + 1 / 4 - 1 / 48 + 1 / 480, 0.5 - 1 / 4 + 1 / 48 - 1 / 480,
                at_clamp, at_clamp, 1 - at_clamp]
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=1e-12)


def test_minimax5_saturates_at_exactly_one():
    clamp = SIGMOID_KINDS["minimax5"].input_clamp
    x = torch.tensor([clamp, 100.0, -100.0], dtype=torch.float64)
    np.testing.assert_allclose(output_activation(x, "minimax5").numpy(), [1, 1, 0], atol=1e-9)


@pytest.mark.parametrize("kind, worst", [("taylor5", 0.0465), ("minimax5", 0.0096)])
def test_sigmoid_approximant_worst_error(kind, worst):
    x = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
    approx = output_activation(x, kind)
    assert abs(float(torch.max(torch.abs(approx - torch.sigmoid(x)))) - worst) <= 0.0005
    # Odd around 1/2, like the sigmoid.
    np.testing.assert_allclose(approx.numpy(), 1 - output_activation(-x, kind).numpy(), atol=1e-12)


def test_exact_is_torch_sigmoid():
    x = torch.linspace(-8, 8, 101)
    assert torch.equal(output_activation(x, "exact"), torch.sigmoid(x))


# --- KL and likelihood -------------------------------------------------------

def test_kl_closed_form_matches_monte_carlo():
    generator = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.0, 0.0], [1.5, -0.5], [0.3, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, 0.0], [-1.0, 0.5], [-3.0, 1.0]], dtype=torch.float64)
    n = 200_000
    eps = torch.randn((n, *mu.shape), generator=generator, dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * eps
    log_q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    monte_carlo = (log_q - log_p).mean(0)
    closed = kl_divergence(mu, logvar)
    assert closed[0] == 0
    # Standard error of these estimates is below 0.01 nats; allow 0.03.
    np.testing.assert_allclose(closed.numpy(), monte_carlo.numpy(), atol=0.03)


def test_mse_elbo_is_a_gaussian_log_likelihood_minus_kl():
    torch.manual_seed(0)
    config = make_config("iris")
    model = VAE(config).eval()
    x = torch.rand(5, 4)
    value = elbo(model, x, torch.Generator().manual_seed(7))
    mu, logvar = model.encode(x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(7))
    x_hat = model.decode(mu + torch.exp(0.5 * logvar) * eps).detach().numpy()
    scale = np.sqrt(1 / (2 * config.recon_weight))
    log_lik = norm.logpdf(x.numpy(), loc=x_hat, scale=scale).sum(-1)
    expected = log_lik - kl_divergence(mu, logvar).detach().numpy()
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-5)


# --- the network -------------------------------------------------------------

def test_layer_structure_mirrors_hidden_widths():
    model = VAE(small_config())
    shapes = lambda layers: [(layer.in_features, layer.out_features) for layer in layers]  # noqa: E731
    assert shapes(model.encoder_layers) == [(12, 8), (8, 6)]
    assert (model.enc_head.in_features, model.enc_head.out_features) == (6, 6)
    assert shapes(model.decoder_layers) == [(3, 6), (6, 8)]
    assert (model.dec_out.in_features, model.dec_out.out_features) == (8, 12)


def test_logvar_is_clamped_to_the_hardware_range():
    model = VAE(small_config())
    with torch.no_grad():
        model.enc_head.bias[3:] = torch.tensor([100.0, -100.0, 0.0])
        model.enc_head.weight.zero_()
    with torch.no_grad():
        _, logvar = model.encode(torch.rand(2, 12))
    np.testing.assert_array_equal(logvar[0].numpy(), [LOGVAR_RANGE[1], LOGVAR_RANGE[0], 0.0])


def test_forward_samples_only_while_training_a_vae():
    torch.manual_seed(0)
    model = VAE(small_config())
    x = torch.rand(4, 12)
    x_hat, mu, _ = model.eval()(x)
    assert torch.equal(x_hat, model.decode(mu))
    assert not torch.equal(model.train()(x)[0], x_hat)
    autoencoder = VAE(small_config(variational=False))
    autoencoder.load_state_dict(model.state_dict())
    assert torch.equal(autoencoder.train()(x)[0], x_hat)
    loss, recon, kl = batch_loss(autoencoder, x)
    assert loss == recon and kl == 0


def test_config_validation_and_preset_copies():
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        small_config(latent_dim=0)
    with pytest.raises(ValueError, match="sigmoid must be one of exact, taylor5, minimax5"):
        small_config(sigmoid="tanh")
    config = make_config("mnist")
    config.hidden.append(5)
    assert PRESETS["mnist"].hidden == [128]
    assert PRESETS["mnist"].logvar_range == LOGVAR_RANGE


# --- checkpoints -------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    config = small_config(sigmoid="minimax5")
    model = VAE(config).eval()
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, config, {"preset": "mnist", "seed": 0}, {"test_elbo": -1.5})
    return path, model, config


def test_checkpoint_round_trip(saved):
    path, model, config = saved
    checkpoint = load_checkpoint(path)
    assert checkpoint.config == config
    assert not checkpoint.model.training
    assert checkpoint.data_info == {"preset": "mnist", "seed": 0}
    assert checkpoint.metrics == {"test_elbo": -1.5}
    x = torch.rand(3, 12)
    with torch.no_grad():
        for got, want in zip(checkpoint.model(x), model(x)):
            assert torch.equal(got, want)


def corrupt_truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def corrupt_random(path):
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def corrupt_foreign(path):
    torch.save({"weights": torch.zeros(3)}, path)


def corrupt_version(path):
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "version": 99}, path)


def corrupt_shapes(path):
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "config": {**payload["config"], "latent_dim": 4}}, path)


@pytest.mark.parametrize("corrupt, message", [
    (corrupt_truncated, "not a readable torch checkpoint"),
    (corrupt_random, "not a readable torch checkpoint"),
    (corrupt_foreign, "not an fxvae checkpoint"),
    (corrupt_version, "checkpoint version 99, this code reads version 1"),
    (corrupt_shapes, "weights do not match the stored configuration"),
])
def test_unusable_checkpoint_raises_a_clear_error(saved, corrupt, message):
    path = saved[0]
    corrupt(path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(str(path))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


# --- PCA baseline ------------------------------------------------------------

def test_pca_reconstruction_matches_truncated_svd_and_sklearn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 10)) + 0.1 * rng.normal(size=(200, 10)) + 2
    pca = PCA(3).fit(x)
    centred = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    truncated = (u[:, :3] * s[:3]) @ vt[:3] + x.mean(axis=0)
    np.testing.assert_allclose(pca.decode(pca.encode(x)), truncated, atol=1e-10)
    held_out = rng.normal(size=(20, 10))
    reference = SklearnPCA(3, svd_solver="full").fit(x)
    np.testing.assert_allclose(pca.decode(pca.encode(held_out)),
                               reference.inverse_transform(reference.transform(held_out)),
                               atol=1e-10)
    with pytest.raises(ValueError, match="latent_dim must be >= 1"):
        PCA(0)
