"""Calibration, format choice, the narrow-format report, the artifact file and the CLI."""

import dataclasses
import json
import math

import numpy as np
import pytest

from model.artifact import ArtifactError, artifact_digest, load_artifact, save_artifact
from model.fixed import LFSR_BANK, Fmt
from model.golden import GoldenModel
from model.evaluate import evaluate, wbits_sweep
from model.quantize import (
    build_artifact, choose_formats, fmt_for, parse_override, quantize_model, range_checks,
    weight_fmt,
)
from model.vae import make_config, save_checkpoint, VAE
from scripts import cli


@pytest.fixture(scope="module")
def quantized(tiny_iris_vae, iris_data):
    return quantize_model(tiny_iris_vae, iris_data.x_train)


def test_fmt_for():
    assert fmt_for(1.0, 16) == Fmt(16, 14)       # 1.0 itself must fit
    assert fmt_for(0.99, 16) == Fmt(16, 15)
    assert fmt_for(0.3, 8) == Fmt(8, 8)          # negative integer bits: [-0.5, 0.5)
    assert fmt_for(0.0, 8) == Fmt(8, 7)
    assert fmt_for(5.0, 4) == Fmt(4, 0)
    # just below a power of two, but rounding up would saturate: one more integer bit
    edge = Fmt(8, 7).max_real + 0.75 * Fmt(8, 7).lsb
    assert fmt_for(edge, 8) == Fmt(8, 6)
    rounds_inside = lambda v, f: math.floor(v * 2 ** f.frac + 0.5) <= f.max_int  # noqa: E731
    for value in np.geomspace(1e-3, 1e3, 97):
        fmt = fmt_for(value, 10)
        assert rounds_inside(value, fmt)                            # holds the value
        assert not rounds_inside(value, Fmt(10, fmt.frac + 1))      # and no finer format does


def test_weight_rules():
    rng = np.random.default_rng(0)
    w = np.concatenate([rng.normal(0, 0.05, 1000), [0.9]])  # one outlier
    assert weight_fmt(w, 4, "max") == Fmt(4, 3)
    clipped = weight_fmt(w, 4, "mse")
    assert clipped.frac > 3 and clipped.max_real < 0.9
    error = lambda f: np.sum((f.to_real(f.quantize(w)) - w) ** 2)  # noqa: E731
    assert error(clipped) < error(Fmt(4, 3))
    assert weight_fmt(w, 12, "mse") == Fmt(12, 11)  # wide: nothing to gain by clipping
    with pytest.raises(ValueError, match="weight rule"):
        weight_fmt(w, 4, "p99")


def test_mse_rule_clipping_is_noted_not_warned(quantized, tiny_iris_vae):
    model, calib = tiny_iris_vae, quantized[2]
    plan = choose_formats(model, calib, wbits=3, weight_rule="mse")
    assert plan.clipped == {"enc0", "enc_head", "dec0", "dec_out"}
    checks = range_checks(model, plan, calib)
    weights = [c for c in checks if c.tensor.endswith(".weight")]
    assert all(c.intended for c in weights) and not any(c.intended for c in checks
                                                          if c not in weights)
    assert any(c.narrow for c in weights) and "on purpose" in [c for c in weights
                                                              if c.narrow][0].message()


def test_parse_override(iris_data, tiny_iris_vae):
    assert parse_override("enc0:6,12") == ("enc0", 6, 12)
    assert parse_override("dec_out:,16.13") == ("dec_out", None, Fmt(16, 13))
    assert parse_override("enc_head:4.3,") == ("enc_head", Fmt(4, 3), None)
    for bad in ("enc0", "enc0:6", "enc0:x,3", "enc0:1,8", ":6,8"):
        with pytest.raises(ValueError):
            parse_override(bad)
    with pytest.raises(ValueError, match="layers are enc0, enc_head, dec0, dec_out"):
        choose_formats(tiny_iris_vae, quantize_model(tiny_iris_vae, iris_data.x_train)[2],
                       overrides=[("enc9", 4, None)])


def test_default_formats(quantized):
    art, plan, calib, checks = quantized
    assert art.input_fmt == Fmt(16, 14) and art.sigmoid.out_fmt == Fmt(16, 14)
    assert plan.sigma_fmt.max_real >= math.exp(2)
    assert art.z_fmt.max_real >= max(4.0, calib.max_abs("z"))
    assert all(layer.w_fmt.width == 8 and layer.out_fmt.width == 16 for layer in art.layers)
    assert not any(check.narrow for check in checks)  # calibrated formats never saturate
    names = [check.tensor for check in checks]
    assert {"input", "z", "enc0.weight", "enc0.bias", "enc0.out", "dec_out.out"} <= set(names)


def test_narrow_format_is_reported_and_saturates(quantized, iris_data, tiny_iris_vae):
    _, _, calib, _ = quantized
    model = tiny_iris_vae
    art, _, _, checks = quantize_model(model, iris_data.x_train, calib=calib,
                                       overrides=[("enc0", None, Fmt(16, 15)),
                                                  ("dec_out", 3, None)])
    narrow = {check.tensor: check for check in checks if check.narrow}
    assert set(narrow) == {"enc0.out"} or set(narrow) == {"enc0.out", "dec_out.weight"}
    check = narrow["enc0.out"]
    assert check.n_saturated > 0 and check.max_abs > 1
    assert "enc0.out: calibrated range" in check.message() and "Q16.15" in check.message()
    assert f"{check.n_saturated} of {check.n_values}" in check.message()
    # saturated, not wrapped: the golden model's enc0 outputs pin at the top
    gm = GoldenModel(art)
    out = gm.trace(gm.quantize_input(iris_data.x_train))["enc0"]["int"]
    assert out.max() == Fmt(16, 15).max_int and out.min() >= 0


def test_iris_mse_ratio(quantized, iris_data, tiny_iris_vae):
    report = evaluate(quantized[0], tiny_iris_vae, iris_data.x_test)
    assert report["mse_ratio"] <= 1.1
    assert abs(report["quant_elbo"] - report["float_elbo"]) < 0.5
    sweep = wbits_sweep(tiny_iris_vae, quantized[2], iris_data.x_test, [4, 12], 16, "taylor5",
                        rules=["max"])
    assert sweep[1]["mse_ratio"] == pytest.approx(1, abs=0.01)
    assert sweep[0]["mse_ratio"] > sweep[1]["mse_ratio"]


def test_logvar_range_must_match_the_hardware(quantized):
    model = VAE(make_config("iris", hidden=[8], logvar_range=(-6.0, 4.0)))
    with pytest.raises(ValueError, match="clamps logvar"):
        build_artifact(model, quantized[1], "taylor5")


# -- the artifact file


def test_round_trip(quantized, tmp_path, iris_data):
    art = quantized[0]
    json_path = save_artifact(art, tmp_path)
    spec = json.loads(json_path.read_text())
    assert spec["format"] == "fxvae-artifact" and spec["version"] == 1
    assert spec["sigmoid"]["poly"]["coeffs_int"] == list(art.sigmoid.poly.coeffs_int)
    loaded = load_artifact(tmp_path)
    assert load_artifact(json_path).layers == loaded.layers == art.layers
    for name in art.weights:
        assert np.array_equal(loaded.weights[name], art.weights[name])
        assert np.array_equal(loaded.biases[name], art.biases[name])
    assert (loaded.sigmoid, loaded.sigma_rom, loaded.sampler) == (art.sigmoid, art.sigma_rom,
                                                                  art.sampler)
    x = GoldenModel(art).quantize_input(iris_data.x_test)
    for mode in ("recon_mu", "recon_sample", "encode"):
        assert np.array_equal(GoldenModel(loaded).run(mode, x), GoldenModel(art).run(mode, x))
    assert artifact_digest(loaded) == artifact_digest(art)


def test_digest_sees_every_bit_but_not_meta(quantized):
    art = quantized[0]
    digest = artifact_digest(art)
    assert len(digest) == 64
    assert artifact_digest(dataclasses.replace(art, meta={"note": "other"})) == digest
    name = art.layers[0].name
    weights = dict(art.weights)
    weights[name] = art.weights[name].copy()
    weights[name][0, 0] ^= 1
    assert artifact_digest(dataclasses.replace(art, weights=weights)) != digest
    other_seed = dataclasses.replace(art.sampler, seeds=(art.sampler.seeds[0] ^ 1,
                                                         *art.sampler.seeds[1:]))
    assert artifact_digest(dataclasses.replace(art, sampler=other_seed)) != digest


def _edit_json(path, edit):
    spec = json.loads(path.read_text())
    edit(spec)
    path.write_text(json.dumps(spec))


def _edit_npz(path, key, edit):
    with np.load(path) as npz:
        tensors = dict(npz)
    tensors[key] = edit(tensors[key])
    np.savez(path, **tensors)


def _set(keys, value):
    def edit(spec):
        node = spec
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return edit


CORRUPTIONS = {
    "bad json": (lambda d: (d / "artifact.json").write_text("{ nope"), "json", "not valid JSON"),
    "no marker": (lambda d: _edit_json(d / "artifact.json", _set(["format"], "x")), "json",
                  "not an fxvae artifact"),
    "version": (lambda d: _edit_json(d / "artifact.json", _set(["version"], 99)), "json",
                "artifact version 99"),
    "missing key": (lambda d: _edit_json(d / "artifact.json", lambda s: s.pop("latent_dim")),
                    "json", "missing key 'latent_dim'"),
    "bad format": (lambda d: _edit_json(d / "artifact.json", _set(["input_fmt"], [1, 0])), "json",
                   "'input_fmt' = \\[1, 0\\] is not a format"),
    "chain": (lambda d: _edit_json(d / "artifact.json", _set(["decoder", 1, "in_fmt"], [16, 3])),
              "json", "layer 'dec_out' in_fmt Q16.3 != 'dec0' out_fmt"),
    "head width": (lambda d: _edit_json(d / "artifact.json", _set(["latent_dim"], 3)), "json",
                   "n_out 4 != 6"),
    "coefficient": (lambda d: _edit_json(d / "artifact.json",
                                         _set(["sigmoid", "poly", "coeffs_int", 1], -1)),
                    "json", "sigmoid poly .* computed from the spec"),
    "clamp": (lambda d: _edit_json(d / "artifact.json", _set(["sigmoid", "clamp_int"], 5)), "json",
              "sigmoid clamp_int 5"),
    "derived": (lambda d: _edit_json(d / "artifact.json", _set(["encoder", 0, "acc_width"], 9)),
                "json", "encoder\\[0\\].'acc_width' = 9"),
    "seed": (lambda d: _edit_json(d / "artifact.json", _set(["sampler", "seeds", 0], 0)), "json",
             f"seed 0 = 0 is not a nonzero {LFSR_BANK[0].length}-bit state"),
    "lfsr taps": (lambda d: _edit_json(d / "artifact.json",
                                       _set(["sampler", "lfsr_bank", 0, "taps"], [LFSR_BANK[0].length, 3])),
                  "json", "sampler.lfsr_bank"),
    "shape": (lambda d: _edit_npz(d / "artifact.npz", "w_enc0", lambda w: w[:, :3]), "npz",
              "layer 'enc0' weight shape \\(8, 3\\) != \\(8, 4\\)"),
    "range": (lambda d: _edit_npz(d / "artifact.npz", "w_dec0", lambda w: w + 300), "npz",
              "layer 'dec0' weight holds .* outside Q8"),
    "dtype": (lambda d: _edit_npz(d / "artifact.npz", "b_enc0", lambda b: b * 1.0), "npz",
              "bias must be an integer array"),
    "rom": (lambda d: _edit_npz(d / "artifact.npz", "sigma_rom", lambda r: r + 1), "npz",
            "sigma_rom contents differ"),
    "missing npz": (lambda d: (d / "artifact.npz").unlink(), "npz", "tensor file not found"),
    "missing json": (lambda d: (d / "artifact.json").unlink(), "json", "artifact file not found"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corruption_is_a_clear_error(quantized, tmp_path, name):
    corrupt, file_kind, message = CORRUPTIONS[name]
    save_artifact(quantized[0], tmp_path)
    corrupt(tmp_path)
    with pytest.raises(ArtifactError, match=message) as info:
        load_artifact(tmp_path)
    assert str(info.value).startswith(str(tmp_path / f"artifact.{file_kind}"))


def test_save_refuses_an_invalid_artifact(quantized, tmp_path):
    art = quantized[0]
    weights = {**art.weights, "enc0": art.weights["enc0"].T}
    broken = type(art)(**{**art.__dict__, "weights": weights})
    with pytest.raises(ArtifactError, match="shape"):
        save_artifact(broken, tmp_path)
    assert not (tmp_path / "artifact.json").exists()


# -- the command line


def test_cli_writes_artifact_report_and_figures(tmp_path, capsys, iris_data, tiny_iris_vae):
    data = iris_data
    checkpoint = tmp_path / "checkpoint.pt"
    save_checkpoint(checkpoint, tiny_iris_vae, tiny_iris_vae.config,
                    {"preset": "iris", "seed": 0, "mnist_dir": None, "scaling": data.scaling,
                     "source": data.source}, {})
    out = tmp_path / "quant"
    assert cli.main(["quantize", "--checkpoint", str(checkpoint), "--out", str(out),
                     "--override", "enc0:,16.15", "--sweep-bits", "6,8"]) == 0
    printed = capsys.readouterr()
    assert "WARNING: enc0.out: calibrated range" in printed.err
    assert "recon MSE" in printed.out and "quantized" in printed.out
    report = json.loads((out / "quant_report.json").read_text())
    assert report["range_warnings"] and report["mse_ratio"] > 0
    assert report["gaussian_ks"]["ks"] < 5e-4
    assert load_artifact(out).meta["source_checkpoint"] == str(checkpoint)
    for figure in ("quant_wbits_sweep.png", "quant_sigmoid_error.png", "quant_sampler.png"):
        assert (out / figure).stat().st_size > 1000
