"""The comparison report: float vs quantized vs RTL, side by side, as one HTML page.

:func:`preset_section` measures one preset and draws its figures;
:func:`write_report` writes ``index.html`` (PNGs beside it) and
``report.json``.  The RTL column comes from a co-simulation's outputs
(``scripts/cosim.py`` writes ``cosim_rtl.npz``): :func:`find_rtl_outputs`
reads them and checks them against the golden model of the artifact at hand,
so outputs of an older artifact are refused, never shown as this one's.
Nothing here runs a simulator; ``scripts/compare.py`` composes the parts.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from model import plots
from model.artifact import Artifact
from model.classifier import N_CLASSES, DigitClassifier, class_probabilities, recognisability
from model.data import Dataset, evaluation_set
from model.fixed import MODES
from model.golden import GoldenModel
from model.quantize import calibrate, layer_modules
from model.vae import VAE

__all__ = ["RTL_NPZ", "QUANT_FIGURES", "RECON_ACCURACY_RATIO", "TOP_PROBABILITY_RATIO",
           "RtlOutputsError", "RtlOutputs", "load_rtl_outputs", "find_rtl_outputs", "Goal",
           "Section", "preset_section", "range_profile_figure", "write_report"]

#: What ``scripts/cosim.py`` writes beside ``cosim.json``.
RTL_NPZ = "cosim_rtl.npz"
#: The figures ``scripts/quantize.py`` leaves beside the artifact, with their captions.
QUANT_FIGURES = {
    "quant_wbits_sweep.png": "Re-quantization sweep: quantized / float MSE against the weight "
                             "width (no retraining), for both weight-format rules.",
    "quant_sigmoid_error.png": "The sigmoid unit over every representable logit: the "
                               "approximant's error and the integer unit's.",
    "quant_sampler.png": "The hardware's Gaussian sampler (LFSR draws): histogram against "
                         "N(0, 1) and Q-Q plot.",
}
#: Goals: RTL reconstructions keep >= 99 % of the float reconstructions'
#: accuracy; hardware-generated images reach >= 95 % of the float model's mean
#: top-class probability and cover every class.
RECON_ACCURACY_RATIO = 0.99
TOP_PROBABILITY_RATIO = 0.95
#: Rows of the side-by-side grid per class: one per digit, five per IRIS species.
GRID_PER_CLASS = {"mnist": 1, "iris": 5}
#: Generated images shown per model (an 8 x 8 mosaic).
GENERATED_SHOWN = 64
IRIS_CLASSES = ("setosa", "versicolor", "virginica")


# --------------------------------------------------------------------------
# RTL outputs


class RtlOutputsError(ValueError):
    """Co-simulation outputs that do not belong to this artifact or data; names the file."""


@dataclass
class RtlOutputs:
    """One co-simulation's outputs, checked against the golden model.

    ``words[mode]``: the ints of the simulator ``sim`` that fills the RTL
    column (the one that ran the most images); ``checks``: one row per
    (simulator, mode) with the images run and the images and words that
    differ from the golden model.
    """

    path: Path
    sim: str
    words: dict[str, np.ndarray]
    checks: list[dict]

    def count(self, mode: str) -> int:
        return len(self.words[mode]) if mode in self.words else 0

    def describe(self) -> str:
        counts = ", ".join(f"{mode} {len(self.words[mode]):,}" for mode in MODES
                           if mode in self.words)
        return f"{self.sim} co-simulation, images per mode: {counts} ({self.path})"


def _golden(gm: GoldenModel, mode: str, x_int: np.ndarray, n: int) -> np.ndarray:
    """The golden model's words for the first ``n`` images of ``mode`` (fresh sampler),
    as the co-simulation compares them."""
    if mode == "generate":
        return gm.run("generate", n=n)
    return gm.run(mode, x_int=x_int[:n])


def load_rtl_outputs(path, artifact: Artifact, x_int: np.ndarray) -> RtlOutputs:
    """Read ``cosim_rtl.npz`` (``<sim>/<mode>``, ``golden/<mode>``, ``x``) and check it
    belongs to ``artifact`` and the evaluation inputs ``x_int``."""
    path = Path(path)
    try:
        with np.load(path) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise RtlOutputsError(f"{path}: not a readable co-simulation output ({exc})") from None
    x = arrays.pop("x", None)
    if x is None or x.ndim != 2 or len(x) > len(x_int) or not np.array_equal(x, x_int[:len(x)]):
        raise RtlOutputsError(f"{path}: its inputs are not this preset's evaluation set "
                              f"(other data or another input format); rerun the co-simulation")
    gm = GoldenModel(artifact)
    runs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        sim, _, mode = key.partition("/")
        if mode not in MODES:
            raise RtlOutputsError(f"{path}: entry {key!r} is not <simulator>/<mode>")
        runs.setdefault(sim, {})[mode] = value
    stored = runs.pop("golden", {})
    golden = {mode: _golden(gm, mode, x_int, len(words)) for mode, words in stored.items()}
    for mode, words in stored.items():
        if words.shape != golden[mode].shape or not np.array_equal(words, golden[mode]):
            raise RtlOutputsError(f"{path}: its golden {mode} outputs differ from this "
                                  f"artifact's: it was written for another artifact; rerun "
                                  f"the co-simulation")
    if not runs:
        raise RtlOutputsError(f"{path}: holds no simulator outputs")
    checks = []
    for sim, modes in sorted(runs.items()):
        for mode, words in sorted(modes.items(), key=lambda item: MODES.index(item[0])):
            want = golden[mode][:len(words)] if mode in golden else None
            if want is None or words.shape != want.shape:
                raise RtlOutputsError(f"{path}: {sim}/{mode} has shape {words.shape}, the "
                                      f"golden model's is {None if want is None else want.shape}")
            differs = words != want
            checks.append({"sim": sim, "mode": mode, "images": len(words),
                           "mismatching_images": int(np.any(differs, axis=1).sum()),
                           "mismatching_words": int(differs.sum()), "words": int(words.size)})
    sim = max(runs, key=lambda s: (sum(len(w) for w in runs[s].values()), s))
    return RtlOutputs(path, sim, runs[sim], checks)


def find_rtl_outputs(directories, preset: str, artifact: Artifact,
                     x_int: np.ndarray) -> tuple[RtlOutputs | None, list[str]]:
    """The first usable ``DIR/<preset>/cosim_rtl.npz``, and notes on those skipped."""
    notes = []
    for directory in directories:
        path = Path(directory) / preset / RTL_NPZ
        if not path.is_file():
            notes.append(f"{path}: not found")
            continue
        try:
            return load_rtl_outputs(path, artifact, x_int), notes
        except RtlOutputsError as exc:
            notes.append(str(exc))
    return None, notes


# --------------------------------------------------------------------------
# Figures


def _grid_rows(labels: np.ndarray, eligible: np.ndarray, per_class: int) -> np.ndarray:
    """Up to ``per_class`` eligible rows of every class: the first of each class,
    then the second, ..."""
    pools = [np.flatnonzero(eligible & (labels == label))[:per_class]
             for label in np.unique(labels)]
    return np.array([pool[k] for k in range(per_class) for pool in pools if k < len(pool)],
                    dtype=np.int64)


def _columns_figure(columns: dict[str, np.ndarray], feature_shape, labels=None) -> Figure:
    """One column per source, the same inputs in every row: images as images,
    tabular samples as a heat map of their (scaled) features with the values."""
    n = len(next(iter(columns.values())))
    if len(feature_shape) == 2:
        fig, axes = plots.subplots(1, len(columns), squeeze=False,
                                 figsize=(1.2 * len(columns), 0.4 + 1.05 * n))
        for ax, (name, images) in zip(axes[0], columns.items()):
            plots.show_images(ax, images, feature_shape, 1, name)
        fig.tight_layout()
        return fig
    fig, axes = plots.subplots(1, len(columns), squeeze=False, sharey=True,
                             figsize=(0.55 * feature_shape[0] * len(columns) + 1.5, 0.8 + 0.28 * n))
    for ax, (name, values) in zip(axes[0], columns.items()):
        ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for (row, col), value in np.ndenumerate(values):
            ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if value < 0.6 else "black")
        ax.set_xticks(range(feature_shape[0]), [str(k + 1) for k in range(feature_shape[0])],
                      fontsize=7)
        ax.set_title(name, fontsize=9)
    axes[0, 0].set_yticks(range(n), [] if labels is None else labels, fontsize=7)
    fig.supxlabel("feature (scaled to [0, 1])", fontsize=8)
    fig.tight_layout()
    return fig


def _generated_images_figure(panels: dict[str, np.ndarray], feature_shape) -> Figure:
    fig, axes = plots.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.5), squeeze=False)
    for ax, (name, images) in zip(axes[0], panels.items()):
        shown = images[:GENERATED_SHOWN]
        plots.show_images(ax, shown, feature_shape, int(np.ceil(np.sqrt(max(len(shown), 1)))),
                          name)
    fig.tight_layout()
    return fig


def _generated_features_figure(panels: dict[str, np.ndarray], data_x: np.ndarray) -> Figure:
    """Tabular data: generated samples over the data, feature pairs (0, 1) and (2, 3)."""
    pairs = [(k, k + 1) for k in range(0, data_x.shape[1] - 1, 2)]
    fig, axes = plots.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.8), squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs):
        ax.scatter(data_x[:, a], data_x[:, b], s=10, color="lightgrey", label="data")
        for name, samples in panels.items():
            ax.scatter(samples[:, a], samples[:, b], s=8, alpha=0.7, label=name)
        ax.set(xlabel=f"feature {a + 1} (scaled)", ylabel=f"feature {b + 1} (scaled)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _latent_map_figure(panels: dict[str, np.ndarray], labels: np.ndarray) -> Figure:
    fig, axes = plots.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
    for ax, (name, mu) in zip(axes[0], panels.items()):
        plots.scatter_latents(ax, mu, labels, name, IRIS_CLASSES)
    lims = [(min(ax.get_xlim()[0] for ax in axes[0]), max(ax.get_xlim()[1] for ax in axes[0])),
            (min(ax.get_ylim()[0] for ax in axes[0]), max(ax.get_ylim()[1] for ax in axes[0]))]
    for ax in axes[0]:
        ax.set(xlim=lims[0], ylim=lims[1])
    fig.tight_layout()
    return fig


def _class_histogram_figure(stats: dict[str, dict]) -> Figure:
    fig, ax = plots.subplots(figsize=(6, 3))
    width = 0.8 / len(stats)
    for k, (name, s) in enumerate(stats.items()):
        share = np.asarray(s["class_histogram"]) / max(s["n"], 1)
        ax.bar(np.arange(N_CLASSES) + (k - (len(stats) - 1) / 2) * width, share, width,
               label=f"{name} (n={s['n']:,}, {s['histogram_entropy_bits']:.2f} bits)")
    ax.axhline(1 / N_CLASSES, color="grey", lw=0.8, ls="--")
    ax.set(xticks=range(N_CLASSES), xlabel="class the classifier gives",
           ylabel="share of generated images")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _tensor_values(name: str, calib, modules: dict) -> np.ndarray:
    """Values behind a range-report row: ``input``/``z``, ``L.out`` (calibration),
    ``L.weight``/``L.bias`` (the float model's parameters)."""
    layer, _, part = name.partition(".")
    if not part:
        return calib.values[name]
    if part == "out":
        return calib.values[layer]
    return getattr(modules[layer], part).detach().double().numpy()


def range_profile_figure(formats: list[dict], values: dict[str, np.ndarray]) -> Figure:
    """hls4ml-style profile: per tensor a box plot of log2|value| (calibration data,
    whiskers at min and max) over the grey span its format represents (LSB to max);
    a red x marks a tensor whose calibrated values saturate."""
    fig, ax = plots.subplots(figsize=(7, 0.34 * len(formats) + 1.2))
    positions = np.arange(len(formats))[::-1]
    for pos, row in zip(positions, formats):
        low, high = np.log2(row["lsb"]), np.log2(row["range"][1])
        ax.add_patch(Rectangle((low, pos - 0.4), high - low, 0.8, color="0.88", zorder=0))
        ax.text(high + 0.3, pos, row["fmt"], va="center", fontsize=7, color="0.35")
        if row["n_saturated"]:
            ax.plot(high, pos, "x", color="red", ms=8, mew=2, zorder=3)
    magnitudes = []
    for row in formats:
        v = np.abs(np.asarray(values[row["tensor"]], dtype=np.float64).ravel())
        v = v[v > 0]
        magnitudes.append(np.log2(v) if v.size else np.array([np.nan]))
    ax.boxplot(magnitudes, positions=positions, orientation="horizontal", whis=(0, 100), widths=0.5,
               showfliers=False, manage_ticks=False)
    ax.set_yticks(positions, [row["tensor"] for row in formats], fontsize=7)
    ax.set_xlabel("log2 |value|  (grey: the format's LSB .. largest value)")
    ax.set_title("per-tensor range profile (calibration on the training split)", fontsize=9)
    ax.set_ylim(-0.7, len(formats) - 0.3)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------
# HTML pieces


def _esc(value) -> str:
    return html.escape(str(value))


def _table(header, rows, caption: str = "") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    body = re.sub(r"<td>(PASS|FAIL|NOT RUN)</td>",
                  lambda m: f'<td class="{m[1].replace(" ", "-").lower()}">{m[1]}</td>', body)
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<tr>{head}</tr>{body}</table>"


def _figure(name: str, caption: str) -> str:
    return (f'<figure><img src="{_esc(name)}" alt="{_esc(caption)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


def _pct(value) -> str:
    return "" if value is None else f"{100 * value:.1f} %"


# --------------------------------------------------------------------------
# One preset


@dataclass
class Goal:
    name: str
    measured: str
    limit: str
    status: str  # PASS, FAIL, or NOT RUN (no RTL outputs)

    def row(self) -> tuple:
        return (self.name, self.measured, self.limit, self.status)


@dataclass
class Section:
    preset: str
    html: str
    metrics: dict
    goals: list[Goal] = field(default_factory=list)
    recognisability_rows: list[tuple] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)


RECOGNISABILITY_HEADER = ("images", "n", "accuracy", "mean top-class p", "class entropy (bits)",
                          "classes")


def _recog_row(name: str, s: dict) -> tuple:
    return (name, f"{s['n']:,}", _pct(s.get("accuracy")), f"{s['mean_top_probability']:.3f}",
            f"{s['histogram_entropy_bits']:.2f}", f"{s['classes_covered']}/{N_CLASSES}")


def _goal(name: str, measured: float | None, limit: float, text: str, ok=None) -> Goal:
    if measured is None:
        return Goal(name, "-", text, "NOT RUN")
    passed = measured >= limit if ok is None else ok
    return Goal(name, f"{measured:.4g}", text, "PASS" if passed else "FAIL")


def _recognisability(classifier: DigitClassifier, classifier_info: dict, columns: dict,
                     labels: np.ndarray, generated: dict, rtl_n: int):
    """Accuracy on every reconstruction column; confidence and class spread of the
    generated images; the goals.  ``columns``: name -> images (all ``labels``);
    the RTL's are the first ``rtl_n`` evaluation images."""
    stats, rows = {}, []
    for name, images in columns.items():
        stats[name] = recognisability(class_probabilities(classifier, images), labels[:len(images)])
        rows.append(_recog_row(name, stats[name]))
    float_on_rtl = None
    if rtl_n:
        float_on_rtl = recognisability(
            class_probabilities(classifier, columns["float recon"][:rtl_n]), labels[:rtl_n])
        name = f"float recon, the RTL's {rtl_n:,} images"
        stats[name] = float_on_rtl
        rows.append(_recog_row(name, float_on_rtl))
    gen_stats = {name: recognisability(class_probabilities(classifier, images))
                 for name, images in generated.items()}
    rows += [_recog_row(f"generated: {name}", s) for name, s in gen_stats.items()]
    rtl_recon, rtl_gen = stats.get("RTL recon"), gen_stats.get("RTL")
    float_gen = gen_stats["float"]
    accuracy_ratio = (rtl_recon["accuracy"] / float_on_rtl["accuracy"]
                      if rtl_recon and float_on_rtl and float_on_rtl["accuracy"] else None)
    top_ratio = (rtl_gen["mean_top_probability"] / float_gen["mean_top_probability"]
                 if rtl_gen else None)
    goals = [
        _goal("classifier accuracy on the test images", stats["test images"]["accuracy"], 0.95,
              ">= 0.95"),
        _goal("RTL recon accuracy / float recon accuracy (same images)", accuracy_ratio,
              RECON_ACCURACY_RATIO, f">= {RECON_ACCURACY_RATIO}"),
        _goal("RTL generated / float generated mean top-class probability", top_ratio,
              TOP_PROBABILITY_RATIO, f">= {TOP_PROBABILITY_RATIO}"),
        _goal("classes among RTL-generated images", rtl_gen and rtl_gen["classes_covered"],
              N_CLASSES, f"= {N_CLASSES}"),
    ]
    metrics = {"classifier": classifier_info, "reconstructions": stats, "generated": gen_stats,
               "rtl_over_float_recon_accuracy": accuracy_ratio,
               "rtl_over_float_top_probability": top_ratio}
    return rows, goals, metrics, gen_stats


def _save(fig: Figure, out: Path, name: str, figures: list[str]) -> str:
    plots.save(fig, out / name)
    figures.append(name)
    return name


@torch.no_grad()
def preset_section(preset: str, *, model: VAE, artifact: Artifact, data: Dataset,
                   quant_report: dict, quant_dir, out, rtl: RtlOutputs | None = None,
                   rtl_notes=(), classifier: DigitClassifier | None = None,
                   classifier_info: dict | None = None, n_generated: int = 1000,
                   seed: int = 0) -> Section:
    """Measure one preset, draw its figures into ``out``, and return its HTML section.

    ``quant_report``: the artifact's ``quant_report.json``; ``quant_dir``: where
    its figures are; ``rtl``: the co-simulation's outputs (:func:`find_rtl_outputs`);
    ``classifier``: scores MNIST images (:mod:`model.classifier`); ``n_generated``
    float prior samples and golden ``generate`` images to compare with the RTL's.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x_eval, y_eval, is_test = evaluation_set(data)
    gm = GoldenModel(artifact)
    x_int = gm.quantize_input(x_eval)
    out_fmt, images = artifact.sigmoid.out_fmt, len(data.feature_shape) == 2
    noun = "images" if images else "samples"
    recon = {"test images": x_eval,
             "float recon": plots.decode(model, plots.encode_mu(model, x_eval)),
             "quantized recon": out_fmt.to_real(gm.run("recon_mu", x_int))}
    rtl_n = rtl.count("recon_mu") if rtl else 0
    if rtl_n:
        recon["RTL recon"] = out_fmt.to_real(rtl.words["recon_mu"])
    z = torch.randn(n_generated, artifact.latent_dim, generator=torch.Generator().manual_seed(seed))
    generated = {"float": plots.decode(model, z.numpy()),
                 "quantized": out_fmt.to_real(gm.run("generate", n=n_generated))}
    if rtl and rtl.count("generate"):
        generated["RTL"] = out_fmt.to_real(rtl.words["generate"])

    figures: list[str] = []
    parts = [f'<section id="{_esc(preset)}"><h2>{_esc(preset)}</h2>']
    source = rtl.describe() if rtl else "none"
    parts.append(f"<p><b>RTL column:</b> {_esc(source)}. Every word is compared with the golden "
                 f"model of this artifact (table below).</p>")
    parts += [f'<p class="note">{_esc(note)}</p>' for note in rtl_notes]
    if not rtl:
        parts.append('<p class="note">No usable co-simulation outputs: the RTL column is empty. '
                     "Run <code>make sim</code> (every image) or <code>make demo</code> (a short "
                     "Verilator run).</p>")

    # The side-by-side grid: test inputs the RTL ran, the same rows in every column.
    covered = np.arange(len(x_eval)) < (rtl_n or len(x_eval))
    eligible = is_test & covered if np.any(is_test & covered) else covered
    rows = _grid_rows(y_eval, eligible, GRID_PER_CLASS.get(preset, 1))
    grid = {title: recon[name][rows] for title, name in (
        ("input", "test images"), ("float", "float recon"), ("quantized", "quantized recon"),
        ("RTL", "RTL recon")) if name in recon}
    names = [IRIS_CLASSES[y] for y in y_eval[rows]] if preset == "iris" else None
    name = _save(_columns_figure(grid, data.feature_shape, names), out, f"{preset}_columns.png",
                 figures)
    parts.append(_figure(name, f"Test {noun} and their reconstructions from mu: float model | "
                               f"quantized golden model | RTL ({rtl.sim if rtl_n else 'not run'}); "
                               f"the same {len(rows)} {noun} in every column."))

    # Metrics: float vs quantized on the test split, then the RTL on its images.
    q = quant_report
    parts.append(_table(
        ("metric", "float", "quantized"),
        [("recon MSE (decode mu)", f"{q['float_mse']:.6f}", f"{q['quant_mse']:.6f}"),
         ("PSNR (dB)", f"{q['float_psnr']:.3f}", f"{q['quant_psnr']:.3f}"),
         ("ELBO (nats, same eps)", f"{q['float_elbo']:.3f}", f"{q['quant_elbo']:.3f}"),
         ("sampled recon MSE", f"{q['float_sample_mse']:.6f}", f"{q['quant_sample_mse']:.6f}"),
         ("worst pixel |quantized - float|", "", f"{q['worst_pixel_error_vs_float']:.5f}")],
        f"Float vs quantized on the {q['n_images']:,} test {noun} (quant_report.json)"))
    metrics = {"float_vs_quantized": {k: q[k] for k in (
        "n_images", "float_mse", "quant_mse", "float_psnr", "quant_psnr", "float_elbo",
        "quant_elbo", "worst_pixel_error_vs_float")},
        "rtl_source": source, "rtl_notes": list(rtl_notes)}
    if rtl:
        parts.append(_table(("simulator", "mode", noun, f"mismatching {noun}",
                             "mismatching words"),
                            [(c["sim"], c["mode"], f"{c['images']:,}", c["mismatching_images"],
                              f"{c['mismatching_words']:,} of {c['words']:,}")
                             for c in rtl.checks],
                            "RTL vs golden model, every output word"))
        metrics["rtl_checks"] = rtl.checks
    if rtl_n:
        x_rtl = x_eval[:rtl_n]
        mse = {name: float(np.mean((recon[name][:rtl_n] - x_rtl) ** 2))
               for name in ("float recon", "quantized recon", "RTL recon")}
        worst = float(np.max(np.abs(recon["RTL recon"] - recon["float recon"][:rtl_n])))
        parts.append(_table(("metric", "float", "quantized", "RTL"),
                            [("recon MSE (decode mu)", *(f"{v:.6f}" for v in mse.values())),
                             ("worst pixel |RTL - float|", "", "", f"{worst:.5f}")],
                            f"On the {rtl_n:,} {noun} the RTL ran ({rtl.sim})"))
        metrics["rtl_recon"] = {"n": rtl_n, "mse": mse, "worst_pixel_error_vs_float": worst}

    # Generated: the hardware sampler through the RTL beside the float model's prior samples.
    shown = {"float, z ~ N(0, I)": generated["float"]}
    if "RTL" in generated:
        shown[f"RTL generate ({rtl.sim})"] = generated["RTL"]
    else:
        shown["quantized golden generate"] = generated["quantized"]
    if images:
        fig = _generated_images_figure(shown, data.feature_shape)
    else:
        fig = _generated_features_figure({k: v[:150] for k, v in shown.items()}, x_eval)
    name = _save(fig, out, f"{preset}_generated.png", figures)
    parts.append(_figure(name, f"Generated {noun}: the float model decoding z ~ N(0, I) beside "
                               f"the hardware's LFSR sampler through the "
                               f"{'RTL' if 'RTL' in generated else 'golden model (no RTL run)'}."))

    goals, recog_rows = [], []
    if classifier is not None and images:
        recog_rows, goals, recog_metrics, gen_stats = _recognisability(
            classifier, classifier_info or {}, recon, y_eval, generated, rtl_n)
        metrics["recognisability"] = recog_metrics
        parts.append("<h3>Recognisability</h3>")
        acc = (classifier_info or {}).get("test_accuracy")
        parts.append(f"<p>A small CNN digit classifier (model/classifier.py) trained on the "
                     f"{(classifier_info or {}).get('n_train', '?')} training images"
                     f"{'' if acc is None else f' ({_pct(acc)} on the test images)'} scores every "
                     f"column. Reconstructions: accuracy against the input's label. Generated "
                     f"images: the classifier's mean top-class probability and the entropy of "
                     f"the class histogram (log2 10 = 3.32 bits when all classes are equally "
                     f"frequent).</p>")
        parts.append(_table(RECOGNISABILITY_HEADER, recog_rows))
        parts.append(_table(("goal", "measured", "limit", "result"), [g.row() for g in goals]))
        name = _save(_class_histogram_figure(gen_stats), out, f"{preset}_classes.png", figures)
        parts.append(_figure(name, "Classes of the generated images (classifier's argmax)."))

    if artifact.latent_dim == 2 and rtl and rtl.count("encode"):
        n_enc = rtl.count("encode")
        mu_rtl = artifact.mu_fmt.to_real(rtl.words["encode"][:, :artifact.latent_dim])
        fig = _latent_map_figure({"float encoder": plots.encode_mu(model, x_eval[:n_enc]),
                                  f"hardware encoder (RTL, {rtl.sim})": mu_rtl}, y_eval[:n_enc])
        name = _save(fig, out, f"{preset}_latent_map.png", figures)
        parts.append(_figure(name, f"2-D latent map (mu) of {n_enc} {noun}: float encoder beside "
                                   f"the hardware encoder's outputs from co-simulation."))

    # Quantization figures and the range profile.
    for src, caption in QUANT_FIGURES.items():
        path = Path(quant_dir) / src
        if path.is_file():
            shutil.copyfile(path, out / f"{preset}_{src}")
            figures.append(f"{preset}_{src}")
            parts.append(_figure(f"{preset}_{src}", caption))
        else:
            parts.append(f'<p class="note">{_esc(path)} not found (scripts/quantize.py '
                         f'draws it).</p>')
    formats = q["formats"]
    calib = calibrate(model, data.x_train, artifact.sigmoid.kind)
    encoder, decoder = layer_modules(model)
    modules = {name: layer for name, layer, _ in [*encoder, *decoder]}
    values = {row["tensor"]: _tensor_values(row["tensor"], calib, modules) for row in formats}
    name = _save(range_profile_figure(formats, values), out, f"{preset}_ranges.png", figures)
    parts.append(_figure(name, "Calibrated values (box: quartiles, whiskers: min..max) against "
                               "the range each tensor's format represents."))
    parts.append(_table(("tensor", "format", "representable", "calibrated max |v|", "saturated"),
                        [(r["tensor"], r["fmt"], f"[{r['range'][0]:.4g}, {r['range'][1]:.4g}]",
                          f"{r['calibrated_max_abs']:.4g}",
                          f"{r['n_saturated']:,} / {r['n_values']:,}"
                          + (" (intended)" if r.get("intended") and r["n_saturated"] else ""))
                         for r in formats], "Per-tensor ranges and saturation counts"))
    parts.append("</section>")
    metrics["goals"] = [vars(g) for g in goals]
    return Section(preset, "\n".join(parts), metrics, goals, recog_rows, figures)


# --------------------------------------------------------------------------
# The page

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: bold; padding: 0.3em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
.note { color: #8a5a00; font-size: 0.9em; }
.pass { color: #0a7a0a; font-weight: bold; }
.fail { color: #b00000; font-weight: bold; }
.not-run { color: #8a5a00; }
"""


def write_report(sections: list[Section], out, *, intro: str = "") -> Path:
    """``out/index.html`` (one section per preset, goals first) and ``out/report.json``."""
    out = Path(out)
    goal_rows = [(s.preset, *g.row()) for s in sections for g in s.goals]
    parts = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">',
             "<title>fxvae: float vs quantized vs RTL</title>",
             f"<style>{_STYLE}</style></head><body>",
             "<h1>fxvae: float vs quantized vs RTL</h1>",
             f"<p>{_esc(intro)}</p>" if intro else "",
             "<p>Sections: " + ", ".join(f'<a href="#{_esc(s.preset)}">{_esc(s.preset)}</a>'
                                         for s in sections) + "</p>"]
    if goal_rows:
        parts.append(_table(("preset", "goal", "measured", "limit", "result"), goal_rows,
                            "Goals"))
    parts += [s.html for s in sections]
    parts.append("</body></html>")
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    page.write_text("\n".join(parts) + "\n")
    (out / "report.json").write_text(json.dumps(
        {s.preset: {**s.metrics, "figures": s.figures} for s in sections}, indent=1,
        default=str) + "\n")
    return page
