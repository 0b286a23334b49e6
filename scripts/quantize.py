"""Quantize a trained checkpoint into the fixed-point artifact, with a report.

    fxvae quantize --checkpoint build/mnist/checkpoint.pt --out build/mnist/quant

Writes OUT/artifact.json + OUT/artifact.npz (the hardware contract),
OUT/quant_report.json (float vs quantized on the TEST split, sigmoid unit and
sampler errors, the formats table) and three figures; prints the tables.
Formats that cannot hold their calibrated range are printed as warnings.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from model import plots
from model.artifact import ArtifactError, save_artifact
from model.data import DataError, load_dataset
from model.evaluate import quant_report, wbits_sweep
from model.fixed import SIGMOID_KINDS
from model.quantize import (
    WEIGHT_RULES, build_artifact, parse_override, quantize_model, range_checks, range_table,
)
from model.tables import format_table
from model.train import configure_determinism
from model.vae import CheckpointError, load_checkpoint

def parse_args(argv, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint.pt from fxvae train")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--wbits", type=int, default=8, help="weight width (default 8)")
    parser.add_argument("--abits", type=int, default=16, help="activation width (default 16)")
    parser.add_argument("--override", action="append", default=[], metavar="LAYER:W,A",
                        help="per-layer widths or width.frac formats, e.g. dec_out:6,12.9")
    parser.add_argument("--weight-rule", choices=WEIGHT_RULES, default="max",
                        help="weight format: hold the largest weight (max) or clip outliers "
                             "for the least squared error (mse; better below ~6 bits)")
    parser.add_argument("--correction", choices=["teichroew", "none"], default="teichroew")
    parser.add_argument("--seed", type=int, default=1, help="sampler seed (and QAT seed)")
    parser.add_argument("--sigmoid", choices=sorted(SIGMOID_KINDS), default=None,
                        help="sigmoid unit (default: the model's own)")
    parser.add_argument("--qat", action="store_true", help="quantization-aware fine-tuning")
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--qat-lr", type=float, default=5e-4)
    parser.add_argument("--sweep-bits", default="4,5,6,7,8,9,10,11,12",
                        help="weight widths of the re-quantization sweep figure")
    parser.add_argument("--mnist-dir", default=None,
                        help="MNIST IDX directory (default: as trained)")
    args = parser.parse_args(argv)
    args.override_text = list(args.override)
    try:
        args.override = [parse_override(text) for text in args.override]
        args.sweep_bits = [int(bits) for bits in args.sweep_bits.split(",")]
    except ValueError as exc:
        parser.error(str(exc))
    return args


def comparison_table(report: dict) -> str:
    sig = report["sigmoid_max_error"]
    rows = [("recon MSE (decode mu)", f"{report['float_mse']:.6f}",
             f"{report['quant_mse']:.6f}  (x{report['mse_ratio']:.4f})"),
            ("PSNR dB", f"{report['float_psnr']:.3f}", f"{report['quant_psnr']:.3f}"),
            ("ELBO nats (same eps)", f"{report['float_elbo']:.3f}", f"{report['quant_elbo']:.3f}"),
            ("sampled recon MSE", f"{report['float_sample_mse']:.6f}",
             f"{report['quant_sample_mse']:.6f}"),
            ("worst pixel |q - f|", "", f"{report['worst_pixel_error_vs_float']:.5f}"),
            ("sigmoid max error", f"{sig['approx_max_error_on_inputs']:.5f}",
             f"{sig['unit_max_error']:.5f}"),
            ("eps KS to N(0,1) (exact)", "", f"{report['gaussian_ks']['ks']:.3g}")]
    return format_table(("metric (test split)", "float", "quantized"), rows)


def write_figures(out: Path, sweep: list[dict], artifact) -> None:
    """The three quantization figures (120 dpi, whole canvas) into ``out``."""
    for name, fig in (("quant_wbits_sweep.png", plots.wbits_sweep_figure(sweep, artifact.preset)),
                      ("quant_sigmoid_error.png", plots.sigmoid_error_figure(artifact.sigmoid)),
                      ("quant_sampler.png", plots.sampler_figure(artifact.sampler))):
        plots.save(fig, out / name, dpi=120, bbox_inches=None)


def main(argv=None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    start = time.perf_counter()
    try:
        checkpoint = load_checkpoint(args.checkpoint)
        info = checkpoint.data_info
        data = load_dataset(info["preset"], mnist_dir=args.mnist_dir or info.get("mnist_dir"),
                            seed=info.get("seed", 0))
    except (CheckpointError, DataError, KeyError) as exc:
        sys.exit(f"quantize: {exc}")
    configure_determinism(args.seed)
    model = checkpoint.model
    meta = {"source_checkpoint": str(args.checkpoint), "preset": info["preset"],
            "data_scaling": info.get("scaling"), "data_source": info.get("source"),
            "calibration": f"training split, {len(data.x_train)} samples",
            "wbits": args.wbits, "abits": args.abits, "weight_rule": args.weight_rule,
            "overrides": args.override_text, "qat": None}
    try:
        artifact, plan, calib, checks = quantize_model(
            model, data.x_train, wbits=args.wbits, abits=args.abits, overrides=args.override,
            sigmoid_kind=args.sigmoid, correction=args.correction, seed=args.seed, meta=meta,
            weight_rule=args.weight_rule)
    except ValueError as exc:
        sys.exit(f"quantize: {exc}")
    if args.qat:
        from model.qat import finetune

        meta["qat"] = {"epochs": args.qat_epochs, "lr": args.qat_lr, "seed": args.seed}
        tuned = finetune(model, artifact, data.x_train, args.qat_epochs, lr=args.qat_lr,
                         seed=args.seed)
        artifact = build_artifact(tuned, plan, artifact.sigmoid.kind, args.correction,
                                  args.seed, meta)
        checks = range_checks(tuned, plan, calib)
    out = Path(args.out)
    try:
        save_artifact(artifact, out)
    except ArtifactError as exc:
        sys.exit(f"quantize: {exc}")

    report = quant_report(artifact, model, data.x_test, checks)  # vs the checkpoint's float model
    report["sweep"] = wbits_sweep(model, calib, data.x_test, args.sweep_bits, args.abits,
                                  artifact.sigmoid.kind)
    report["settings"] = meta
    write_figures(out, report["sweep"], artifact)
    report["seconds"] = round(time.perf_counter() - start, 2)
    (out / "quant_report.json").write_text(json.dumps(report, indent=1) + "\n")

    for message in report["range_warnings"]:
        print(f"WARNING: {message}", file=sys.stderr)
    for message in report["range_notes"]:
        print(f"note: {message}", file=sys.stderr)
    print(range_table(checks))
    print()
    print(comparison_table(report))
    print(f"\nwrote {out}/artifact.json, artifact.npz, quant_report.json and 3 figures "
          f"in {report['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
