"""Draw the float reference's figures as PNG.

    fxvae figures --out build/figures --iris build/iris --mnist build/mnist
        a representative subset from already-trained runs (seconds)
    fxvae figures --all --out build/figures
        also trains (and caches under OUT/models/) the extra models the full
        set needs: MNIST with 2-, 5-, 10- and 20-D latents, beta = 4 at 2-D,
        the 2-D plain autoencoder, and IRIS unless --iris is given
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from model import plots
from model.data import DataError, Dataset, load_dataset
from model.train import AE_CHECKPOINT_NAME, CHECKPOINT_NAME, METRICS_NAME, run_training
from model.vae import VAE, CheckpointError, kl_divergence, load_checkpoint

#: Epochs for the extra MNIST models of --all: enough for clean figures, and
#: the whole set trains in a few minutes on 2 cores.
FIGURE_EPOCHS = 50
#: name -> (latent_dim, beta, with plain-AE baseline)
EXTRA_MNIST_RUNS = {
    "mnist_z2": (2, 1.0, True),
    "mnist_z5": (5, 1.0, False),
    "mnist_z10": (10, 1.0, False),
    "mnist_z20": (20, 1.0, False),
    "mnist_z2_beta4": (2, 4.0, False),
}
IRIS_CLASSES = ("setosa", "versicolor", "virginica")


class Run:
    """A trained run directory: the VAE, the plain AE if saved, the data."""

    def __init__(self, directory: Path):
        checkpoint = load_checkpoint(directory / CHECKPOINT_NAME)
        self.directory = directory
        self.vae: VAE = checkpoint.model
        ae_path = directory / AE_CHECKPOINT_NAME
        self.ae: VAE | None = load_checkpoint(ae_path).model if ae_path.is_file() else None
        info = checkpoint.data_info
        self.data: Dataset = load_dataset(info["preset"], mnist_dir=info.get("mnist_dir"),
                                          seed=info.get("seed", 0))


def _first_of_each_class(labels: np.ndarray, classes) -> np.ndarray:
    return np.array([np.flatnonzero(labels == label)[0] for label in classes])


def _kl_per_dim(model: VAE, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        mu, logvar = model.encode(torch.as_tensor(x))
    return np.array([float(kl_divergence(mu[:, [d]], logvar[:, [d]]).mean())
                     for d in range(mu.shape[1])])


def draw_mnist_main(run: Run, out: Path) -> list[Path]:
    """Reconstructions, prior samples, an interpolation and traversals."""
    data, shape = run.data, run.data.feature_shape
    digits = data.x_test[_first_of_each_class(data.y_test, range(10))]
    latent = run.vae.config.latent_dim
    models = {f"VAE ({latent}-D)": run.vae}
    if run.ae is not None:
        models[f"plain AE ({latent}-D)"] = run.ae
    start, end = data.x_test[_first_of_each_class(data.y_test, (2, 7))]
    return [
        plots.save(plots.reconstruction_figure(digits, models, shape),
                   out / "mnist_reconstructions.png"),
        plots.save(plots.samples_figure({f"VAE ({latent}-D) samples from N(0, I)": run.vae},
                                        shape, n=10), out / "mnist_samples.png"),
        plots.save(plots.interpolation_figure(run.vae, start, end, shape),
                   out / "mnist_interpolation.png"),
        plots.save(plots.traversal_figure(run.vae, digits[3], shape,
                                          kl_per_dim=_kl_per_dim(run.vae, data.x_test)),
                   out / "mnist_traversals.png"),
    ]


def draw_iris(run: Run, out: Path) -> list[Path]:
    models = {"VAE": run.vae} if run.ae is None else {"plain AE": run.ae, "VAE": run.vae}
    # All 150 flowers: the 30 test points alone say little about the layout.
    x = np.concatenate([run.data.x_train, run.data.x_test])
    labels = np.concatenate([run.data.y_train, run.data.y_test])
    return [plots.save(plots.latent_map_figure(models, x, labels, IRIS_CLASSES),
                       out / "iris_latent_map.png")]


def draw_extras(runs: dict[str, Run], out: Path) -> list[Path]:
    """The figures that compare latent sizes, beta, and the plain AE."""
    z2, data = runs["mnist_z2"], runs["mnist_z2"].data
    shape = data.feature_shape
    digits = data.x_test[_first_of_each_class(data.y_test, range(10))]
    return [
        plots.save(plots.reconstruction_figure(
            digits, {"VAE 2-D": z2.vae, "VAE 5-D": runs["mnist_z5"].vae}, shape),
            out / "mnist_reconstructions_2d_5d.png"),
        plots.save(plots.samples_figure(
            {f"{runs[name].vae.config.latent_dim}-D latent": runs[name].vae
             for name in ("mnist_z2", "mnist_z5", "mnist_z10", "mnist_z20")}, shape),
            out / "mnist_samples_by_latent_size.png"),
        plots.save(plots.latent_map_figure({"VAE, 2-D": z2.vae}, data.x_test, data.y_test),
                   out / "mnist_latent_map.png"),
        plots.save(plots.manifold_figure(z2.vae, shape), out / "mnist_manifold.png"),
        plots.save(plots.latent_map_figure({"plain autoencoder, 2-D": z2.ae, "VAE, 2-D": z2.vae},
                                           data.x_test, data.y_test),
                   out / "mnist_ae_vs_vae_latent.png"),
        plots.save(plots.beta_figure({"beta = 1": z2.vae, "beta = 4": runs["mnist_z2_beta4"].vae},
                                     data.x_test, data.y_test, shape),
                   out / "mnist_beta1_vs_beta4.png"),
    ]


def _cached_or_trained(directory: Path, preset: str, seed: int, baselines: bool,
                       epochs: int | None = None, **config_overrides) -> Run:
    """Reuse ``directory`` when its train.json records the same settings."""
    wanted = {"seed": seed, **config_overrides}
    if epochs is not None:
        wanted["epochs"] = epochs
    metrics_path = directory / METRICS_NAME
    if metrics_path.is_file():
        recorded = json.loads(metrics_path.read_text())
        if all(recorded.get(key) == value for key, value in wanted.items()) and (
                not baselines or (directory / AE_CHECKPOINT_NAME).is_file()):
            print(f"  reusing {directory}")
            return Run(directory)
    run_training(preset, directory, seed=seed, baselines=baselines, epochs=epochs,
                 **config_overrides)
    return Run(directory)


def main(argv=None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])
    parser.add_argument("--out", required=True, type=Path, help="output directory for PNGs")
    parser.add_argument("--iris", type=Path, help="IRIS run directory (fxvae train --out)")
    parser.add_argument("--mnist", type=Path, help="MNIST run directory (fxvae train --out)")
    parser.add_argument("--all", action="store_true",
                        help="train the extra models (cached in OUT/models) and draw every figure")
    parser.add_argument("--seed", type=int, default=0, help="seed for --all's training runs")
    args = parser.parse_args(argv)
    if not args.all and not (args.iris or args.mnist):
        parser.error("give --iris and/or --mnist run directories, or --all")

    start = time.perf_counter()
    written = []
    try:
        iris = Run(args.iris) if args.iris else None
        mnist = Run(args.mnist) if args.mnist else None
        if args.all:
            models_dir = args.out / "models"
            steps = list(EXTRA_MNIST_RUNS) + ([] if iris else ["iris"])
            runs = {}
            for number, name in enumerate(steps, 1):
                print(f"[{number}/{len(steps)}] {name}", flush=True)
                if name == "iris":
                    iris = _cached_or_trained(models_dir / name, "iris", args.seed, True)
                    continue
                latent, beta, baselines = EXTRA_MNIST_RUNS[name]
                runs[name] = _cached_or_trained(models_dir / name, "mnist", args.seed, baselines,
                                                latent_dim=latent, beta=beta,
                                                epochs=FIGURE_EPOCHS)
            mnist = mnist or runs["mnist_z10"]
            written += draw_extras(runs, args.out)
        if mnist:
            written += draw_mnist_main(mnist, args.out)
        if iris:
            written += draw_iris(iris, args.out)
    except (CheckpointError, DataError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} figures in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
