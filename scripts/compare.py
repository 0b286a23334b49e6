"""The comparison report: float vs quantized vs RTL, side by side, with a recognisability score.

    fxvae compare --sim-dir build/sim build/sim-short --out build/report

For each preset it reads BUILD/<preset>/checkpoint.pt (float model),
BUILD/<preset>/quant/ (artifact, quant_report.json and its figures) and the
first co-simulation output DIR/<preset>/cosim_rtl.npz among --sim-dir that
belongs to this artifact (`fxvae cosim` writes it: `make sim` every image,
`make demo` a short Verilator run), and writes OUT/index.html with its PNGs
and OUT/report.json.  MNIST images are scored by a small digit classifier
(model/classifier.py), trained once and cached at --classifier.  Prints the
recognisability table and the goals (PASS/FAIL); --check makes a goal that
does not pass an exit status of 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from model import report
from model.artifact import ArtifactError, load_artifact
from model.classifier import CLASSIFIER_TRAINING, ClassifierError, cached_classifier
from model.data import PRESETS, DataError, evaluation_set, load_dataset
from model.tables import format_table
from model.vae import CheckpointError, load_checkpoint


def parse_args(argv, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=Path("build"),
                        help="folder holding <preset>/checkpoint.pt and <preset>/quant")
    parser.add_argument("--presets", nargs="+", choices=PRESETS, default=list(PRESETS))
    parser.add_argument("--sim-dir", type=Path, nargs="+", default=[Path("build/sim")],
                        help="co-simulation output folders (<preset>/cosim_rtl.npz), "
                             "first usable one wins")
    parser.add_argument("--out", type=Path, default=Path("build/report"))
    parser.add_argument("--classifier", type=Path, default=Path("build/classifier/digits.pt"),
                        help="digit classifier cache (trained here when missing or stale)")
    parser.add_argument("--classifier-epochs", type=int, default=CLASSIFIER_TRAINING.epochs)
    parser.add_argument("--generated", type=int, default=1000,
                        help="float prior samples and golden generated images to score")
    parser.add_argument("--check", action="store_true",
                        help="exit status 1 unless every goal passes")
    return parser.parse_args(argv)


def load_run(build: Path, preset: str):
    """(checkpoint, artifact, quant report, dataset) of BUILD/<preset>; clear errors."""
    quant = build / preset / "quant"
    checkpoint = load_checkpoint(build / preset / "checkpoint.pt")
    artifact = load_artifact(quant)
    report_path = quant / "quant_report.json"
    if not report_path.is_file():
        raise ArtifactError(f"{report_path}: not found (`fxvae quantize` writes it)")
    info = checkpoint.data_info
    data = load_dataset(preset, mnist_dir=info.get("mnist_dir"), seed=info.get("seed", 0))
    return checkpoint, artifact, json.loads(report_path.read_text()), data


def main(argv=None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    start = time.perf_counter()
    sections = []
    try:
        for number, preset in enumerate(args.presets, 1):
            checkpoint, artifact, quant_report, data = load_run(args.build, preset)
            x_int = artifact.input_fmt.quantize(evaluation_set(data)[0])
            rtl, notes = report.find_rtl_outputs(args.sim_dir, preset, artifact, x_int)
            print(f"[{number}/{len(args.presets)}] {preset}: RTL column from "
                  f"{rtl.describe() if rtl else 'nowhere (no usable co-simulation outputs)'}",
                  flush=True)
            for note in notes:
                print(f"  note: {note}")
            classifier = info = None
            if preset == "mnist":
                settings = replace(CLASSIFIER_TRAINING, epochs=args.classifier_epochs)
                classifier, info = cached_classifier(args.classifier, data, settings)
                print(f"  digit classifier {args.classifier}: {100 * info['test_accuracy']:.1f} % "
                      f"on the {info['n_test']:,} test images", flush=True)
            sections.append(report.preset_section(
                preset, model=checkpoint.model, artifact=artifact, data=data,
                quant_report=quant_report, quant_dir=args.build / preset / "quant", out=args.out,
                rtl=rtl, rtl_notes=notes, classifier=classifier, classifier_info=info,
                n_generated=args.generated))
    except (CheckpointError, ArtifactError, DataError, ClassifierError) as exc:
        print(f"compare: {exc} (`make quantize` trains and quantizes the presets)",
              file=sys.stderr)
        return 2
    page = report.write_report(sections, args.out, intro=(
        f"Made by `fxvae compare` from {args.build}/<preset> (float checkpoint, quantized "
        f"artifact) and co-simulation outputs in {', '.join(map(str, args.sim_dir))}."))

    for section in sections:
        if section.recognisability_rows:
            print(f"\n{section.preset}: recognisability")
            print(format_table(report.RECOGNISABILITY_HEADER, section.recognisability_rows))
        if section.goals:
            print()
            print(format_table(("goal", "measured", "limit", "result"),
                               [g.row() for g in section.goals]))
    print(f"\n{len(sections)} sections in {time.perf_counter() - start:.0f} s; "
          f"open {page.resolve()}")
    passed = all(g.status == "PASS" for s in sections for g in s.goals)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
