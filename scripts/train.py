"""Train the float reference VAE and its baselines for one preset.

    fxvae train --preset mnist --out build/mnist

Writes OUT/checkpoint.pt (VAE), OUT/ae_checkpoint.pt (plain autoencoder) and
OUT/train.json (settings and test metrics), then prints a summary table.
"""

import argparse
import sys
from pathlib import Path

from model.data import DataError
from model.train import TRAIN_DEFAULTS, format_summary, run_training
from model.vae import PRESETS, SIGMOID_CHOICES


def _bounded(kind, low, inclusive=True):
    """An argparse type: ``kind`` parsed, then checked against a lower bound."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if value < low or (not inclusive and value == low):
            relation = ">=" if inclusive else ">"
            raise argparse.ArgumentTypeError(f"must be {relation} {low}, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _widths(text):
    try:
        widths = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 128,64, got {text!r}") from None
    if min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be >= 1, got {text!r}")
    return widths


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    defaults = ", ".join(f"{name}: {s.epochs} epochs, batch {s.batch_size}, lr {s.lr}"
                         for name, s in TRAIN_DEFAULTS.items())
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0],
                                     epilog=f"Defaults per preset: {defaults}.")
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--epochs", type=_bounded(int, 1))
    parser.add_argument("--beta", type=_bounded(float, 0.0), help="KL weight (default 1)")
    parser.add_argument("--latent", type=_bounded(int, 1), help="latent dimension")
    parser.add_argument("--hidden", type=_widths, help="hidden widths, e.g. 128,64")
    parser.add_argument("--sigmoid", choices=SIGMOID_CHOICES,
                        help="output activation (default taylor5, as the hardware)")
    parser.add_argument("--seed", type=_bounded(int, 0), default=0)
    parser.add_argument("--mnist-dir", help="directory of MNIST IDX files "
                        "(default: the embedded 5k subset)")
    parser.add_argument("--batch-size", type=_bounded(int, 1))
    parser.add_argument("--lr", type=_bounded(float, 0.0, inclusive=False))
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip the plain autoencoder and PCA")
    return parser


def main(argv=None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.mnist_dir and args.preset != "mnist":
        parser.error("--mnist-dir applies to --preset mnist only")
    try:
        metrics = run_training(
            args.preset, args.out, seed=args.seed, mnist_dir=args.mnist_dir,
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            baselines=not args.no_baselines, beta=args.beta, latent_dim=args.latent,
            hidden=args.hidden, sigmoid=args.sigmoid)
    except DataError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    print(f"{args.preset}: latent {metrics['latent_dim']}, hidden {metrics['hidden']}, "
          f"beta {metrics['beta']}, sigmoid {metrics['sigmoid']}, {metrics['epochs']} epochs")
    print(format_summary(metrics))
    print(f"wrote {args.out / 'checkpoint.pt'} and {args.out / 'train.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
