import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from model.data import load_dataset
from model.train import TrainSettings, configure_determinism, evaluate, run_training, train_model
from model.vae import VAE, load_checkpoint, make_config
from scripts import cli

ROOT = Path(__file__).resolve().parents[1]


def test_short_iris_training_lowers_loss_and_error():
    configure_determinism(0)
    data = load_dataset("iris")
    model = VAE(make_config("iris"))
    before = evaluate(model, data.x_test)
    history = train_model(model, data.x_train, TrainSettings(epochs=30, batch_size=16, lr=3e-3),
                          progress=False)
    after = evaluate(model, data.x_test)
    assert len(history) == 30
    assert history[-1] < 0.5 * history[0]
    assert after["test_recon_mse"] < 0.5 * before["test_recon_mse"]
    assert after["test_elbo"] > before["test_elbo"]


def test_run_training_writes_checkpoints_and_metrics_deterministically(tmp_path):
    first = run_training("iris", tmp_path / "a", epochs=5, progress=False)
    second = run_training("iris", tmp_path / "b", epochs=5, progress=False)
    recorded = json.loads((tmp_path / "a" / "train.json").read_text())
    for key in ("preset", "latent_dim", "hidden", "beta", "sigmoid", "epochs", "train_seconds",
                "test_recon_mse", "test_elbo", "ae_test_recon_mse", "pca_test_recon_mse"):
        assert key in recorded, key
    assert recorded["epochs"] == 5 and recorded["sigmoid"] == "taylor5"
    timing = ("train_seconds", "ae_train_seconds")
    assert {k: v for k, v in first.items() if k not in timing} == \
        {k: v for k, v in second.items() if k not in timing}
    a, b = (load_checkpoint(tmp_path / run / "checkpoint.pt") for run in "ab")
    for name, tensor in a.model.state_dict().items():
        assert torch.equal(tensor, b.model.state_dict()[name]), name
    assert a.data_info["scaling"]["kind"] == "minmax"
    assert not load_checkpoint(tmp_path / "a" / "ae_checkpoint.pt").config.variational


def test_train_settings_reject_bad_values():
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        TrainSettings(epochs=0, batch_size=1, lr=1e-3)
    with pytest.raises(ValueError, match="lr must be > 0"):
        TrainSettings(epochs=1, batch_size=1, lr=0.0)


@pytest.mark.parametrize("args, message", [
    (["--epochs", "-3"], "--epochs: must be >= 1, got -3"),
    (["--latent", "0"], "--latent: must be >= 1, got 0"),
    (["--sigmoid", "tanh"], "--sigmoid: invalid choice: 'tanh'"),
    (["--hidden", "16,x"], "--hidden: expected comma-separated integers"),
])
def test_train_cli_rejects_bad_arguments(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--preset", "iris", "--out", str(tmp_path), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_train_cli_runs_from_the_repo_root(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "scripts.cli", "train", "--preset", "iris", "--epochs", "3",
         "--latent", "3", "--hidden", "8,8", "--sigmoid", "minimax5", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "PCA (3)" in result.stdout
    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint.config.hidden == [8, 8] and checkpoint.config.latent_dim == 3
    assert checkpoint.config.sigmoid == "minimax5"
    x = torch.from_numpy(load_dataset("iris").x_test)
    assert np.isfinite(checkpoint.model(x)[0].detach().numpy()).all()
