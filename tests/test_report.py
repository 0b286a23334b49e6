"""The comparison report (scripts/compare.py), its classifier and the benchmark's readers.

The end-to-end tests build a report from tiny models the way ``make demo``
does: save a checkpoint, quantize it (``fxvae quantize``), co-simulate a few
images (``fxvae cosim``, one simulator), then ``fxvae compare``; they
check that every picture the page links exists and that it names its
metrics.  The full-size run is ``make demo`` / ``make compare``.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

from model.benchmark import BoardBuildError, load_board_builds, read_board_build
from model.classifier import ClassifierError, load_classifier, recognisability
from model.data import evaluation_set, load_dataset
from model.report import RtlOutputsError, find_rtl_outputs, load_rtl_outputs
from model.vae import VAE, make_config, save_checkpoint
from scripts import cli
from scripts.compare import load_run
from sim.runner import SIMULATORS, simulator_problem


def _simulator() -> str:
    """Icarus when it is here (instant builds of the tiny cores), else Verilator."""
    for sim in SIMULATORS:
        if not simulator_problem(sim):
            return sim
    pytest.skip(f"no simulator: {simulator_problem(SIMULATORS[0])}")


def _run(tmp_path, preset: str, model: VAE, images: int, *extra) -> str:
    """checkpoint -> quantize -> co-simulate ``images`` per mode -> report; the page's HTML."""
    data = load_dataset(preset)
    run = tmp_path / "build" / preset
    save_checkpoint(run / "checkpoint.pt", model, model.config,
                    {"preset": preset, "seed": 0, "mnist_dir": None, "scaling": data.scaling,
                     "source": data.source}, {})
    assert cli.main(["quantize", "--checkpoint", str(run / "checkpoint.pt"),
                     "--out", str(run / "quant"), "--sweep-bits", "6,8"]) == 0
    assert cli.main(["cosim", "--artifact", str(run / "quant"), "--sim", _simulator(),
                     "--images", str(images), "--jobs", "1",
                     "--out", str(tmp_path / "sim" / preset)]) == 0
    out = tmp_path / "report"
    assert cli.main([
        "compare", "--build", str(tmp_path / "build"), "--presets", preset, "--out", str(out),
        "--sim-dir", str(tmp_path / "missing"), str(tmp_path / "sim"), *extra]) == 0
    page = (out / "index.html").read_text()
    pictures = re.findall(r'<img src="([^"]+)"', page)
    assert pictures and all((out / name).stat().st_size > 1000 for name in pictures)
    for metric in ("MSE", "PSNR", "ELBO", "mismatching words", "worst pixel", "saturated",
                   f"{_simulator()} co-simulation", "not found"):
        assert metric in page, metric
    return page


def test_iris_report(tmp_path, tiny_iris_vae, iris_data):
    page = _run(tmp_path, "iris", tiny_iris_vae, 150)
    assert "latent map" in page and "iris_latent_map.png" in page
    assert "recon_mu 150" in page
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert all(check["mismatching_words"] == 0 for check in report["iris"]["rtl_checks"])
    # Outputs of another artifact are refused, with the reason.
    other = load_run(tmp_path / "build", "iris")[1]
    other.weights["enc0"] = other.weights["enc0"] // 2
    x_int = other.input_fmt.quantize(evaluation_set(iris_data)[0])
    rtl, notes = find_rtl_outputs([tmp_path / "sim"], "iris", other, x_int)
    assert rtl is None and "written for another artifact" in notes[0]


def test_mnist_report_scores_recognisability(tmp_path, capsys):
    torch.manual_seed(0)
    model = VAE(make_config("mnist", hidden=[16])).eval()  # untrained: the report's plumbing
    page = _run(tmp_path, "mnist", model, 3, "--classifier", str(tmp_path / "digits.pt"),
                "--classifier-epochs", "1", "--generated", "200")
    printed = capsys.readouterr().out
    assert "Recognisability" in page and "mnist: recognisability" in printed
    for words in ("mean top-class p", "class entropy", "RTL recon", "generated: RTL",
                  "RTL generated / float generated"):
        assert words in page and words in printed, words
    assert re.search(r"(PASS|FAIL)", printed)
    report = json.loads((tmp_path / "report" / "report.json").read_text())["mnist"]
    recog = report["recognisability"]
    assert recog["reconstructions"]["RTL recon"]["n"] == 3
    assert recog["generated"]["float"]["n"] == 200
    assert load_classifier(tmp_path / "digits.pt")[1]["test_accuracy"] > 0.8  # one epoch


def test_recognisability_statistics():
    even = np.eye(10)[np.arange(50) % 10] * 0.9 + 0.01
    stats = recognisability(even, np.arange(50) % 10)
    assert stats["accuracy"] == 1.0 and stats["classes_covered"] == 10
    assert stats["histogram_entropy_bits"] == pytest.approx(math.log2(10), abs=1e-12)
    assert stats["mean_top_probability"] == pytest.approx(0.91)
    one = recognisability(np.tile(np.eye(10)[3], (7, 1)), np.zeros(7, dtype=int))
    assert one["histogram_entropy_bits"] == 0 and one["classes_covered"] == 1
    assert one["accuracy"] == 0 and one["class_histogram"][3] == 7
    with pytest.raises(ValueError, match=r"probabilities must be \(n, 10\)"):
        recognisability(np.ones((4, 9)))


def test_evaluation_set_takes_classes_in_turn(iris_data):
    data = load_dataset("mnist")
    x, y, is_test = evaluation_set(data)
    assert list(y[:20]) == list(range(10)) * 2 and is_test.all()
    assert sorted(map(bytes, x)) == sorted(map(bytes, data.x_test))
    x, y, is_test = evaluation_set(iris_data)
    assert len(x) == 150 and is_test.sum() == 30 and is_test[-30:].all()
    assert list(y[:3]) == [0, 1, 2]


def test_bad_files_name_the_problem(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(RtlOutputsError, match="junk.npz: not a readable"):
        load_rtl_outputs(junk, None, np.zeros((1, 4), dtype=np.int64))
    with pytest.raises(ClassifierError, match="junk.npz: not a readable torch digit classifier"):
        load_classifier(junk)
    with pytest.raises(ClassifierError, match="digit classifier not found"):
        load_classifier(tmp_path / "none.pt")


def test_board_builds(tmp_path):
    build = {"board": "ulx3s-85f", "preset": "mnist", "device": "LFE5U-85F",
             "fmax_mhz": 42.0, "target_mhz": 50, "build_seconds": 1500,
             "resources": {"MULT18X18D": {"used": 145, "available": 156}},
             "cycles_per_image": {"recon_mu": 3360, "generate": 1722},
             "images_per_s_at_fmax": {"recon_mu": 42e6 / 3360, "generate": 42e6 / 1722}}
    (tmp_path / "ulx3s-85f").mkdir()
    (tmp_path / "ulx3s-85f" / "synth.json").write_text(json.dumps(build))
    (tmp_path / "icebreaker").mkdir()
    (tmp_path / "icebreaker" / "synth.json").write_text(json.dumps({"board": "icebreaker"}))
    builds, notes = load_board_builds(tmp_path)
    assert [b["board"] for b in builds] == ["ulx3s-85f"]
    assert builds[0]["utilisation"]["MULT18X18D"] == pytest.approx(145 / 156)
    assert len(notes) == 1 and "icebreaker/synth.json: missing preset, device" in notes[0]
    build["images_per_s_at_fmax"] = {"recon_mu": 0, "generate": 42e6 / 1722}
    (tmp_path / "ulx3s-85f" / "synth.json").write_text(json.dumps(build))
    with pytest.raises(BoardBuildError, match="cycles_per_image"):
        read_board_build(tmp_path / "ulx3s-85f" / "synth.json")
    assert load_board_builds(tmp_path / "none")[1][0].startswith("no board builds under")
