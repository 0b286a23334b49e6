"""The quantized artifact: integer tensors (.npz) plus a versioned JSON spec.

This is the one contract between quantization (:mod:`model.quantize`), the
golden model (:mod:`model.golden`) and the generator (:mod:`hw`).  Every
format and constant in it is interpreted by :mod:`model.fixed`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.fixed import (
    IRWIN_HALL_OFFSET, LFSR_BANK, UNIFORM_BITS, Fmt, OddPoly, ReparamSpec, SamplerSpec, SigmaRomSpec,
    SigmoidSpec, acc_width, sampler_spec, sigma_rom_contents, sigma_rom_spec, sigmoid_spec,
)

__all__ = ["ARTIFACT_FORMAT", "ARTIFACT_VERSION", "JSON_NAME", "NPZ_NAME", "ArtifactError",
           "DenseSpec", "Artifact", "artifact_digest", "validate_artifact", "save_artifact",
           "load_artifact"]

ARTIFACT_FORMAT = "fxvae-artifact"
ARTIFACT_VERSION = 1
JSON_NAME = "artifact.json"
NPZ_NAME = "artifact.npz"


@dataclass(frozen=True)
class DenseSpec:
    """One dense layer: ``out = act(requantize(x @ W.T + b))``."""

    name: str
    n_in: int
    n_out: int
    in_fmt: Fmt
    w_fmt: Fmt
    out_fmt: Fmt
    activation: str  # "relu" or "linear"

    @property
    def acc_frac(self) -> int:
        """Fraction of products, accumulator and the stored (pre-aligned) bias."""
        return self.in_fmt.frac + self.w_fmt.frac

    @property
    def acc_width(self) -> int:
        return acc_width(self.in_fmt, self.w_fmt, self.n_in)

    @property
    def acc_fmt(self) -> Fmt:
        """The accumulator: wide enough that no sum of products and bias can overflow."""
        return Fmt(self.acc_width, self.acc_frac)

    @property
    def bias_fmt(self) -> Fmt:
        """Range of the stored bias: one bit narrower than the accumulator.

        The products sum to at most ``n_in * 2**(wx+ww-2) <= 2**(acc_width-3)``
        in magnitude, the bias to at most ``2**(acc_width-2)``: together they
        stay inside ``acc_width`` bits, so a bias this wide cannot overflow.
        """
        return Fmt(self.acc_width - 1, self.acc_frac)


@dataclass
class Artifact:
    """A quantized VAE.

    ``encoder``: hidden layers (ReLU) then the head (linear, ``2*latent_dim``
    outputs: mu then logvar, both in the head's ``out_fmt``).  ``decoder``:
    hidden layers (ReLU) then the output layer (linear logits, ``input_dim``
    outputs) feeding the sigmoid unit.  ``weights[name]`` is (n_out, n_in) in
    the layer's ``w_fmt``; ``biases[name]`` is (n_out,) at the layer's
    ``acc_frac``.  z enters the decoder in ``decoder[0].in_fmt``.
    """

    preset: str
    input_dim: int
    latent_dim: int
    input_fmt: Fmt
    encoder: list[DenseSpec]
    decoder: list[DenseSpec]
    weights: dict[str, np.ndarray]
    biases: dict[str, np.ndarray]
    sigmoid: SigmoidSpec
    sigma_rom: SigmaRomSpec
    sampler: SamplerSpec
    meta: dict = field(default_factory=dict)  # data scaling, source checkpoint, calibration

    @property
    def layers(self) -> list[DenseSpec]:
        return [*self.encoder, *self.decoder]

    @property
    def mu_fmt(self) -> Fmt:
        return self.encoder[-1].out_fmt

    @property
    def z_fmt(self) -> Fmt:
        return self.decoder[0].in_fmt

    @property
    def reparam(self) -> ReparamSpec:
        return ReparamSpec(self.mu_fmt, self.sigma_rom.sigma_fmt, self.sampler.eps_fmt, self.z_fmt)


class ArtifactError(ValueError):
    """An artifact is inconsistent or unreadable; the message names the file."""


# --------------------------------------------------------------------------
# Validation: every rule the golden model and the generator rely on


def _check(ok: bool, where: str, problem: str) -> None:
    if not ok:
        raise ArtifactError(f"{where}: {problem}")


def _check_ints(array: np.ndarray, fmt: Fmt, where: str, what: str, shape: tuple) -> None:
    _check(isinstance(array, np.ndarray) and np.issubdtype(array.dtype, np.integer), where,
           f"{what} must be an integer array, not {getattr(array, 'dtype', type(array).__name__)}")
    _check(array.shape == shape, where, f"{what} shape {array.shape} != {shape}")
    if array.size:
        low, high = int(array.min()), int(array.max())
        _check(fmt.min_int <= low and high <= fmt.max_int, where,
               f"{what} holds {low if low < fmt.min_int else high}, outside {fmt} "
               f"[{fmt.min_int}, {fmt.max_int}]")


def _check_layers(artifact: Artifact, where: str) -> None:
    chain = [("encoder", artifact.encoder, artifact.input_dim, 2 * artifact.latent_dim),
             ("decoder", artifact.decoder, artifact.latent_dim, artifact.input_dim)]
    names = [layer.name for layer in artifact.layers]
    _check(len(set(names)) == len(names), where, f"layer names repeat: {names}")
    for side, layers, n_first, n_last in chain:
        _check(len(layers) >= 1, where, f"the {side} has no layers")
        _check(layers[0].n_in == n_first, where,
               f"{side} layer {layers[0].name!r} n_in {layers[0].n_in} != {n_first}")
        _check(layers[-1].n_out == n_last, where,
               f"{side} head {layers[-1].name!r} n_out {layers[-1].n_out} != {n_last}")
        for prev, layer in zip(layers, layers[1:]):
            _check(layer.n_in == prev.n_out, where,
                   f"layer {layer.name!r} n_in {layer.n_in} != {prev.name!r} n_out {prev.n_out}")
            _check(layer.in_fmt == prev.out_fmt, where,
                   f"layer {layer.name!r} in_fmt {layer.in_fmt} != {prev.name!r} "
                   f"out_fmt {prev.out_fmt}")
        for layer in layers:
            expected = "linear" if layer is layers[-1] else "relu"
            _check(layer.activation == expected, where,
                   f"layer {layer.name!r} activation {layer.activation!r} != {expected!r}")
            _check(layer.acc_width <= 64, where,
                   f"layer {layer.name!r} needs a {layer.acc_width}-bit accumulator (> 64)")
    _check(artifact.encoder[0].in_fmt == artifact.input_fmt, where,
           f"layer {artifact.encoder[0].name!r} in_fmt {artifact.encoder[0].in_fmt} != "
           f"input format {artifact.input_fmt}")


def _check_tensors(artifact: Artifact, where: str) -> None:
    expected = {layer.name for layer in artifact.layers}
    for kind, tensors in (("weights", artifact.weights), ("biases", artifact.biases)):
        _check(set(tensors) == expected, where,
               f"{kind} for {sorted(tensors)}, layers are {sorted(expected)}")
    for layer in artifact.layers:
        _check_ints(artifact.weights[layer.name], layer.w_fmt, where,
                    f"layer {layer.name!r} weight", (layer.n_out, layer.n_in))
        _check_ints(artifact.biases[layer.name], layer.bias_fmt, where,
                    f"layer {layer.name!r} bias", (layer.n_out,))


def _check_units(artifact: Artifact, where: str) -> None:
    """The sigmoid, sigma ROM and sampler constants must be what the spec computes."""
    sig = artifact.sigmoid
    _check(sig.in_fmt == artifact.decoder[-1].out_fmt, where,
           f"sigmoid in_fmt {sig.in_fmt} != logits format {artifact.decoder[-1].out_fmt}")
    try:
        expected_sig = sigmoid_spec(sig.kind, sig.in_fmt, sig.out_fmt)
    except ValueError as exc:
        raise ArtifactError(f"{where}: sigmoid: {exc}") from None
    for name in ("clamp_int", "half_int", "one_int", "poly"):
        _check(getattr(sig, name) == getattr(expected_sig, name), where,
               f"sigmoid {name} {getattr(sig, name)} != {getattr(expected_sig, name)} "
               f"computed from the spec")
    rom = artifact.sigma_rom
    _check(rom.logvar_fmt == artifact.mu_fmt, where,
           f"sigma ROM logvar_fmt {rom.logvar_fmt} != encoder head out_fmt {artifact.mu_fmt}")
    try:
        expected_rom = sigma_rom_spec(rom.logvar_fmt, rom.sigma_fmt, rom.index_frac)
    except ValueError as exc:
        raise ArtifactError(f"{where}: sigma ROM: {exc}") from None
    _check(rom == expected_rom, where, f"sigma ROM {rom} != {expected_rom} computed from the spec")
    smp = artifact.sampler
    try:
        expected_smp = sampler_spec(smp.correction)
    except ValueError as exc:
        raise ArtifactError(f"{where}: sampler: {exc}") from None
    for name in ("eps_fmt", "poly"):
        _check(getattr(smp, name) == getattr(expected_smp, name), where,
               f"sampler {name} {getattr(smp, name)} != {getattr(expected_smp, name)} "
               f"computed from the spec")
    reparam_bits = artifact.reparam.sum_span().width
    _check(reparam_bits <= 64, where, f"z = mu + sigma*eps needs a {reparam_bits}-bit sum (> 64)")
    _check(len(smp.seeds) == len(LFSR_BANK), where,
           f"sampler has {len(smp.seeds)} seeds, the LFSR bank {len(LFSR_BANK)} registers")
    for index, (seed, lfsr) in enumerate(zip(smp.seeds, LFSR_BANK)):
        _check(isinstance(seed, int) and 0 < seed < 1 << lfsr.length, where,
               f"sampler seed {index} = {seed!r} is not a nonzero {lfsr.length}-bit state")


def validate_artifact(artifact: Artifact, where: str = "artifact") -> None:
    """Raise :class:`ArtifactError` (prefixed ``where``) unless every rule holds."""
    _check_layers(artifact, where)
    _check_tensors(artifact, where)
    _check_units(artifact, where)


# --------------------------------------------------------------------------
# JSON + npz


def _layer_json(layer: DenseSpec) -> dict:
    return {"name": layer.name, "n_in": layer.n_in, "n_out": layer.n_out,
            "in_fmt": layer.in_fmt.to_json(), "w_fmt": layer.w_fmt.to_json(),
            "out_fmt": layer.out_fmt.to_json(), "activation": layer.activation,
            # derived, for the hardware's convenience; recomputed on load
            "acc_frac": layer.acc_frac, "acc_width": layer.acc_width,
            "bias_fmt": layer.bias_fmt.to_json()}


def _poly_json(poly: OddPoly | None) -> dict | None:
    if poly is None:
        return None
    return {"x_frac": poly.x_frac, "scale_log2": poly.scale_log2, "coef_frac": poly.coef_frac,
            "coeffs_int": list(poly.coeffs_int), "out_frac": poly.out_frac}


def _to_json(artifact: Artifact) -> dict:
    sig, rom, smp = artifact.sigmoid, artifact.sigma_rom, artifact.sampler
    return {
        "format": ARTIFACT_FORMAT, "version": ARTIFACT_VERSION, "tensors": NPZ_NAME,
        "preset": artifact.preset, "input_dim": artifact.input_dim,
        "latent_dim": artifact.latent_dim, "input_fmt": artifact.input_fmt.to_json(),
        "encoder": [_layer_json(layer) for layer in artifact.encoder],
        "decoder": [_layer_json(layer) for layer in artifact.decoder],
        "sigmoid": {"kind": sig.kind, "in_fmt": sig.in_fmt.to_json(),
                    "out_fmt": sig.out_fmt.to_json(), "poly": _poly_json(sig.poly),
                    "clamp_int": sig.clamp_int, "half_int": sig.half_int,
                    "one_int": sig.one_int},
        "sigma_rom": {"logvar_fmt": rom.logvar_fmt.to_json(), "sigma_fmt": rom.sigma_fmt.to_json(),
                      "index_frac": rom.index_frac, "lo_int": rom.lo_int, "hi_int": rom.hi_int,
                      "lo_index": rom.lo_index, "depth": rom.depth},
        "sampler": {"correction": smp.correction, "eps_fmt": smp.eps_fmt.to_json(),
                    "poly": _poly_json(smp.poly), "seeds": list(smp.seeds),
                    "uniform_bits": UNIFORM_BITS, "irwin_hall_offset": IRWIN_HALL_OFFSET,
                    "lfsr_bank": [{"length": lfsr.length, "taps": list(lfsr.taps)}
                                  for lfsr in LFSR_BANK]},
        "meta": artifact.meta,
    }


def artifact_digest(artifact: Artifact) -> str:
    """SHA-256 (hex) of everything that decides a bit: the JSON spec without ``meta``
    and every weight and bias.  Equal digests mean equal golden models and equal
    hardware; a board reports it so the host knows which artifact it runs."""
    h = hashlib.sha256()
    spec = {key: value for key, value in _to_json(artifact).items() if key != "meta"}
    h.update(json.dumps(spec, sort_keys=True).encode())
    for table in (artifact.weights, artifact.biases):
        for name in sorted(table):
            h.update(name.encode())
            h.update(np.ascontiguousarray(table[name], dtype="<i8").tobytes())
    return h.hexdigest()


def save_artifact(artifact: Artifact, out_dir: str | Path) -> Path:
    """Validate, then write ``artifact.npz`` and ``artifact.json``; returns the JSON path."""
    out_dir = Path(out_dir)
    validate_artifact(artifact, str(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"w_{name}": np.asarray(w, dtype=np.int64) for name, w in artifact.weights.items()}
    tensors |= {f"b_{name}": np.asarray(b, dtype=np.int64) for name, b in artifact.biases.items()}
    tensors["sigma_rom"] = sigma_rom_contents(artifact.sigma_rom)
    np.savez(out_dir / NPZ_NAME, **tensors)
    json_path = out_dir / JSON_NAME
    json_path.write_text(json.dumps(_to_json(artifact), indent=1) + "\n")
    return json_path


class _Reader:
    """Typed access to the parsed JSON; a missing or mistyped key names its path."""

    def __init__(self, where: str):
        self.where = where

    def get(self, obj: dict, key: str, kind: type | tuple, ctx: str):
        _check(isinstance(obj, dict) and key in obj, self.where, f"missing key {ctx}{key!r}")
        value = obj[key]
        ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
        _check(ok, self.where, f"{ctx}{key!r} = {value!r} is not {getattr(kind, '__name__', kind)}")
        return value

    def fmt(self, obj: dict, key: str, ctx: str) -> Fmt:
        value = self.get(obj, key, list, ctx)
        _check(len(value) == 2 and all(type(v) is int for v in value) and value[0] >= 2,
               self.where, f"{ctx}{key!r} = {value!r} is not a format [width >= 2, frac]")
        return Fmt.from_json(value)

    def poly(self, obj: dict, key: str, ctx: str) -> OddPoly | None:
        value = obj.get(key) if isinstance(obj, dict) else None
        if value is None:
            return None
        ctx = f"{ctx}{key}."
        return OddPoly(self.get(value, "x_frac", int, ctx), self.get(value, "scale_log2", int, ctx),
                       self.get(value, "coef_frac", int, ctx),
                       tuple(self.get(value, "coeffs_int", list, ctx)),
                       self.get(value, "out_frac", int, ctx))

    def layer(self, obj: dict, ctx: str) -> DenseSpec:
        return DenseSpec(self.get(obj, "name", str, ctx), self.get(obj, "n_in", int, ctx),
                         self.get(obj, "n_out", int, ctx), self.fmt(obj, "in_fmt", ctx),
                         self.fmt(obj, "w_fmt", ctx), self.fmt(obj, "out_fmt", ctx),
                         self.get(obj, "activation", str, ctx))


def _resolve(dir_or_json: str | Path) -> Path:
    path = Path(dir_or_json)
    return path / JSON_NAME if path.is_dir() else path


def load_artifact(dir_or_json: str | Path) -> Artifact:
    """Read and validate an artifact written by :func:`save_artifact`."""
    json_path = _resolve(dir_or_json)
    where = str(json_path)
    _check(json_path.is_file(), where, "artifact file not found")
    try:
        spec = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{where}: not valid JSON ({exc})") from None
    _check(isinstance(spec, dict) and spec.get("format") == ARTIFACT_FORMAT, where,
           f"not an fxvae artifact (no \"format\": {ARTIFACT_FORMAT!r})")
    _check(spec.get("version") == ARTIFACT_VERSION, where,
           f"artifact version {spec.get('version')!r}, this code reads version {ARTIFACT_VERSION}")
    read = _Reader(where)
    encoder = [read.layer(obj, f"encoder[{i}].")
               for i, obj in enumerate(read.get(spec, "encoder", list, ""))]
    decoder = [read.layer(obj, f"decoder[{i}].")
               for i, obj in enumerate(read.get(spec, "decoder", list, ""))]
    sig, rom, smp = (read.get(spec, key, dict, "") for key in ("sigmoid", "sigma_rom", "sampler"))
    sigmoid = SigmoidSpec(read.get(sig, "kind", str, "sigmoid."),
                          read.fmt(sig, "in_fmt", "sigmoid."),
                          read.fmt(sig, "out_fmt", "sigmoid."), read.poly(sig, "poly", "sigmoid."),
                          read.get(sig, "clamp_int", int, "sigmoid."),
                          read.get(sig, "half_int", int, "sigmoid."),
                          read.get(sig, "one_int", int, "sigmoid."))
    sigma_rom = SigmaRomSpec(read.fmt(rom, "logvar_fmt", "sigma_rom."),
                             read.fmt(rom, "sigma_fmt", "sigma_rom."),
                             read.get(rom, "index_frac", int, "sigma_rom."),
                             read.get(rom, "lo_int", int, "sigma_rom."),
                             read.get(rom, "hi_int", int, "sigma_rom."))
    sampler = SamplerSpec(read.get(smp, "correction", str, "sampler."),
                          read.fmt(smp, "eps_fmt", "sampler."), read.poly(smp, "poly", "sampler."),
                          tuple(read.get(smp, "seeds", list, "sampler.")))

    npz_path = json_path.parent / read.get(spec, "tensors", str, "")
    _check(npz_path.is_file(), str(npz_path), "tensor file not found")
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            tensors = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{npz_path}: not a readable npz file ({exc})") from None
    artifact = Artifact(
        preset=read.get(spec, "preset", str, ""), input_dim=read.get(spec, "input_dim", int, ""),
        latent_dim=read.get(spec, "latent_dim", int, ""), input_fmt=read.fmt(spec, "input_fmt", ""),
        encoder=encoder, decoder=decoder,
        weights={key[2:]: value for key, value in tensors.items() if key.startswith("w_")},
        biases={key[2:]: value for key, value in tensors.items() if key.startswith("b_")},
        sigmoid=sigmoid, sigma_rom=sigma_rom, sampler=sampler,
        meta=read.get(spec, "meta", dict, ""))
    _check_layers(artifact, where)
    _check_derived(spec, artifact, where)
    _check_units(artifact, where)
    _check_tensors(artifact, str(npz_path))
    _check("sigma_rom" in tensors and np.array_equal(tensors["sigma_rom"],
                                                     sigma_rom_contents(sigma_rom)),
           str(npz_path), "sigma_rom contents differ from sigma_rom_contents(spec)")
    return artifact


def _check_derived(spec: dict, artifact: Artifact, where: str) -> None:
    """The convenience copies in the JSON must equal what the spec derives."""
    stored = {"encoder": spec["encoder"], "decoder": spec["decoder"]}
    for side, layers in (("encoder", artifact.encoder), ("decoder", artifact.decoder)):
        for i, layer in enumerate(layers):
            for key, value in _layer_json(layer).items():
                _check(stored[side][i].get(key) == value, where,
                       f"{side}[{i}].{key!r} = {stored[side][i].get(key)!r} != {value!r} "
                       f"derived from the layer")
    for section, expected in _to_json(artifact).items():
        if section in ("sigma_rom", "sampler"):
            for key, value in expected.items():
                _check(spec[section].get(key) == value, where,
                       f"{section}.{key} = {spec[section].get(key)!r} != {value!r} "
                       f"derived from the spec")
