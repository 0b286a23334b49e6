"""Measure the quantization, sigmoid and sampler goals in one run.

    fxvae bench-quant  # build/mnist/checkpoint.pt -> build/bench/quant.json

Goals: MNIST W8/A16 quantized MSE <= 1.01 x float and W4 with QAT <= 1.10 x;
sigmoid unit within its approximant's worst error + 1 LSB over every input;
exact sampler KS <= 5e-4 with reach >= 6 sigma; 10^6 hardware-order draws
pass KS (p >= 0.01), mean/variance within 4 standard errors, auto- and
cross-correlations below 4/sqrt(n); every LFSR primitive (period 2^n - 1).
Golden-model vs float throughput is measured by `fxvae bench`.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from model.data import load_dataset
from model.evaluate import evaluate, sigmoid_unit_error
from model.fixed import sampler_spec, sigmoid_spec
from model.golden import Sampler
from model.qat import finetune
from model.quantize import build_artifact, quantize_model
from model.sampler_stats import draw_stats, exact_sampler_stats, lfsr_periods
from model.tables import format_table
from model.train import configure_determinism
from model.vae import load_checkpoint


def goal_table(r: dict) -> list[dict]:
    """(goal, measured, limit, pass) rows, all from this run's numbers."""
    st, sig = r["stream"], r["sigmoid"]["taylor5"]
    exact = r["exact_sampler"]["teichroew"]
    rows = [
        ("MNIST W8/A16 MSE ratio", r["w8a16"]["mse_ratio"], "<= 1.01",
         r["w8a16"]["mse_ratio"] <= 1.01),
        (f"MNIST W4 QAT MSE ratio ({r['w4_qat']['epochs']} epochs, mse rule)",
         r["w4_qat"]["mse_ratio"], "<= 1.10", r["w4_qat"]["mse_ratio"] <= 1.10),
        ("sigmoid unit worst error (taylor5)", sig["unit_max_error"],
         f"<= {sig['approx_max_error_on_inputs'] + sig['out_lsb']:.6f}",
         sig["unit_within_approx_plus_1lsb"]),
        ("sigmoid unit worst error (minimax5)", r["sigmoid"]["minimax5"]["unit_max_error"],
         f"<= {r['sigmoid']['minimax5']['approx_max_error_on_inputs'] + sig['out_lsb']:.6f}",
         r["sigmoid"]["minimax5"]["unit_within_approx_plus_1lsb"]),
        ("exact eps KS to N(0,1) (teichroew)", exact["ks"], "<= 5e-4", exact["ks"] <= 5e-4),
        ("eps reach (sigma)", exact["reach_sigma"], ">= 6", exact["reach_sigma"] >= 6),
        (f"stream KS statistic, n={st['n']}", st["ks_statistic"], f"<= {st['ks_limit']:.3g}",
         st["ks_statistic"] <= st["ks_limit"] and st["ks_pvalue"] >= 0.01),
        ("stream |mean|", abs(st["mean"]), f"<= {st['mean_limit']:.3g}",
         abs(st["mean"]) <= st["mean_limit"]),
        ("stream |variance - 1|", abs(st["variance"] - 1), f"<= {st['variance_limit']:.3g}",
         abs(st["variance"] - 1) <= st["variance_limit"]),
        (f"stream max |autocorr| lags 1..{st['max_lag']}", st["max_abs_autocorr"],
         f"< {st['autocorr_limit']:.3g}", st["max_abs_autocorr"] < st["autocorr_limit"]),
        ("stream max |cross-corr| latent dims", st["max_abs_cross_corr"],
         f"< {st['cross_corr_limit']:.3g}", st["max_abs_cross_corr"] < st["cross_corr_limit"]),
        ("log2 min LFSR period (all primitive)", r["periods"]["min_period_log2"],
         ">= 41", r["periods"]["all_primitive"]
         and r["periods"]["min_period_log2"] >= 41),
    ]
    return [{"goal": g, "measured": m, "limit": lim, "pass": bool(ok)} for g, m, lim, ok in rows]


def format_goals(goals: list[dict]) -> str:
    return format_table(("goal", "measured", "limit", "pass"), [
        (g["goal"], f"{g['measured']:.6g}", g["limit"], "yes" if g["pass"] else "NO")
        for g in goals])


def main(argv=None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="build/mnist/checkpoint.pt")
    parser.add_argument("--out", default="build/bench/quant.json")
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--stream-n", type=int, default=10 ** 6)
    args = parser.parse_args(argv)
    configure_determinism(0)
    checkpoint = load_checkpoint(args.checkpoint)
    model, info = checkpoint.model, checkpoint.data_info
    data = load_dataset(info["preset"], mnist_dir=info.get("mnist_dir"), seed=info.get("seed", 0))
    result = {"checkpoint": args.checkpoint, "preset": info["preset"],
              "n_test": len(data.x_test)}

    start = time.perf_counter()
    w8, _, calib, _ = quantize_model(model, data.x_train)
    result["w8a16"] = evaluate(w8, model, data.x_test)
    result["w8a16"]["quantize_seconds"] = round(time.perf_counter() - start, 2)
    for rule in ("max", "mse"):
        art = quantize_model(model, data.x_train, wbits=4, calib=calib, weight_rule=rule)[0]
        result[f"w4_ptq_{rule}"] = {"mse_ratio": evaluate(art, model, data.x_test)["mse_ratio"]}
    w4, plan, _, _ = quantize_model(model, data.x_train, wbits=4, calib=calib, weight_rule="mse")
    start = time.perf_counter()
    tuned = finetune(model, w4, data.x_train, args.qat_epochs, progress=False)
    w4_qat = build_artifact(tuned, plan, w4.sigmoid.kind)
    result["w4_qat"] = {**evaluate(w4_qat, model, data.x_test), "weight_rule": "mse",
                        "epochs": args.qat_epochs,
                        "qat_seconds": round(time.perf_counter() - start, 2)}

    logits_fmt = w8.sigmoid.in_fmt
    result["sigmoid"] = {kind: sigmoid_unit_error(sigmoid_spec(kind, logits_fmt,
                                                               w8.sigmoid.out_fmt))
                         for kind in ("taylor5", "minimax5")}
    result["exact_sampler"] = {c: exact_sampler_stats(sampler_spec(c))
                               for c in ("teichroew", "none")}
    result["stream"] = draw_stats(Sampler(w8.sampler), args.stream_n, w8.latent_dim)
    result["periods"] = lfsr_periods()

    goals = goal_table(result)
    result["goals"] = goals
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(format_goals(goals))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
