"""Deterministic random artifacts of the presets' shapes, for hardware tests and benchmarks.

Hardware correctness does not depend on trained weights, and the cycle
count depends only on the shapes, so tests and the benchmark can run before
(or without) a trained model.  The formats follow the quantizer's style:
8-bit weights, 16-bit activations; the weights are scaled like a
He-initialised layer so the activations neither vanish nor saturate
everywhere (saturation is still reached and exercised at the edges).
"""

from __future__ import annotations

import numpy as np

from model.artifact import Artifact, DenseSpec
from model.fixed import Fmt, sampler_spec, sigma_rom_spec, sigmoid_spec
from model.vae import PRESETS

__all__ = ["SHAPES", "random_artifact", "random_inputs"]

#: preset -> (input_dim, hidden widths, latent_dim), from model.vae.PRESETS.
SHAPES: dict[str, tuple[int, tuple[int, ...], int]] = {
    name: (config.input_dim, tuple(config.hidden), config.latent_dim)
    for name, config in PRESETS.items()}


def random_artifact(preset: str = "iris", seed: int = 0, *, shape=None,
                    sigmoid_kind: str = "taylor5", correction: str = "teichroew",
                    act_fmt: Fmt = Fmt(16, 10), w_fmt: Fmt = Fmt(8, 6),
                    input_fmt: Fmt = Fmt(9, 8)) -> Artifact:
    """A valid :class:`Artifact` with random integer weights (reproducible from ``seed``),
    of ``preset``'s shape or of ``shape = (input_dim, hidden widths, latent_dim)``."""
    if shape is None and preset not in SHAPES:
        raise ValueError(f"preset must be one of {', '.join(SHAPES)}, not {preset!r}")
    input_dim, hidden, latent = shape if shape is not None else SHAPES[preset]
    rng = np.random.default_rng(seed)
    enc_widths = [input_dim, *hidden, 2 * latent]
    dec_widths = [latent, *hidden[::-1], input_dim]
    layers, weights, biases = {"encoder": [], "decoder": []}, {}, {}
    for side, widths in (("encoder", enc_widths), ("decoder", dec_widths)):
        for k, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
            last = k == len(widths) - 2
            in_fmt = input_fmt if (side == "encoder" and k == 0) else act_fmt
            name = f"{side[:3]}_{'head' if side == 'encoder' and last else 'out' if last else k}"
            spec = DenseSpec(name, n_in, n_out, in_fmt, w_fmt, act_fmt, "linear" if last else "relu")
            std = np.sqrt(2.0 / n_in)
            w = w_fmt.quantize(rng.normal(0, std, size=(n_out, n_in)))
            b = spec.bias_fmt.quantize(rng.normal(0, 0.1, size=n_out))
            layers[side].append(spec)
            weights[name] = w
            biases[name] = b
    head = layers["encoder"][-1]
    return Artifact(
        preset=preset, input_dim=input_dim, latent_dim=latent, input_fmt=input_fmt,
        encoder=layers["encoder"], decoder=layers["decoder"], weights=weights, biases=biases,
        sigmoid=sigmoid_spec(sigmoid_kind, layers["decoder"][-1].out_fmt, Fmt(10, 8)),
        sigma_rom=sigma_rom_spec(head.out_fmt, Fmt(16, 12)),
        sampler=sampler_spec(correction, seed=seed + 1),
        meta={"source": f"model.random_artifact(preset={preset!r}, seed={seed})"})


def random_inputs(artifact: Artifact, n: int, seed: int = 0) -> np.ndarray:
    """``n`` input vectors (ints in ``input_fmt``): uniform reals in [0, 1], plus edge values."""
    rng = np.random.default_rng(seed)
    x = artifact.input_fmt.quantize(rng.uniform(0, 1, size=(n, artifact.input_dim)))
    if n >= 2:
        x[1, ::3] = artifact.input_fmt.max_int
        x[1, 1::3] = artifact.input_fmt.min_int
    return x
