import gzip
import json

import numpy as np
import pytest

from model.data import (DataError, apply_scaling, load_dataset, load_mnist_idx, read_idx,
                        stratified_split)


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file of unsigned bytes; ``magic`` overrides the header word."""
    magic = magic if magic is not None else 0x00000800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write(path, data: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def images():
    return np.random.default_rng(1).integers(0, 256, size=(6, 28, 28), dtype=np.uint8)


@pytest.fixture
def labels():
    return np.array([0, 1, 2, 3, 9, 5], dtype=np.uint8)


def write_mnist_dir(directory, images, labels, names=("train-images-idx3-ubyte",
                                                      "train-labels-idx1-ubyte",
                                                      "t10k-images-idx3-ubyte",
                                                      "t10k-labels-idx1-ubyte"), gz=False):
    for name, array in zip(names, (images, labels, images[:2], labels[:2])):
        write(directory / name, idx_bytes(array), gz=gz)
    return directory


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_raw_and_gzip(tmp_path, images, labels, gz):
    image_path = write(tmp_path / "img", idx_bytes(images), gz)
    label_path = write(tmp_path / "lab", idx_bytes(labels), gz)
    np.testing.assert_array_equal(read_idx(image_path, "images"), images)
    np.testing.assert_array_equal(read_idx(label_path, "labels"), labels)


def test_read_idx_rejects_truncated_file(tmp_path, images):
    path = write(tmp_path / "train-images-idx3-ubyte", idx_bytes(images)[:-10])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*truncated"):
        read_idx(path)


def test_read_idx_rejects_truncated_header(tmp_path):
    path = write(tmp_path / "short", (0x803).to_bytes(4, "big") + b"\0\0\0\1")
    with pytest.raises(DataError, match=r"short.*truncated header"):
        read_idx(path)


def test_read_idx_rejects_wrong_magic(tmp_path, images, labels):
    path = write(tmp_path / "bad", idx_bytes(images, magic=0x12345678))
    with pytest.raises(DataError, match=r"bad: magic number 0x12345678"):
        read_idx(path)
    labels_path = write(tmp_path / "labels", idx_bytes(labels))
    with pytest.raises(DataError, match=r"labels: magic number 0x00000801, expected 0x00000803"):
        read_idx(labels_path, "images")


def test_read_idx_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match=r"nothing-here: file not found"):
        read_idx(tmp_path / "nothing-here")


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_directory_loads_with_either_spelling(tmp_path, images, labels, gz):
    names = [name + (".gz" if gz else "") for name in (
        "train-images.idx3-ubyte", "train-labels.idx1-ubyte",
        "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte")]
    write_mnist_dir(tmp_path, images, labels, names, gz=gz)
    data = load_dataset("mnist", mnist_dir=str(tmp_path))
    assert data.x_train.shape == (6, 784) and data.x_test.shape == (2, 784)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.x_train, (images.reshape(6, -1) / 255).astype(np.float32))
    np.testing.assert_array_equal(data.y_test, [0, 1])
    assert data.scaling == {"kind": "divide", "by": 255.0}
    assert data.feature_shape == (28, 28)
    assert str(tmp_path) in data.source


def test_mnist_idx_count_mismatch_names_the_labels_file(tmp_path, images, labels):
    write_mnist_dir(tmp_path, images, labels)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(labels[:5]))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: 5 labels for 6 images"):
        load_mnist_idx(tmp_path)


def test_mnist_idx_missing_test_file_is_named(tmp_path, images, labels):
    write_mnist_dir(tmp_path, images, labels)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: file not found"):
        load_mnist_idx(tmp_path)


def test_embedded_mnist_split_is_stratified_and_disjoint():
    data = load_dataset("mnist")
    assert data.x_train.shape == (4000, 784) and data.x_test.shape == (1000, 784)
    np.testing.assert_array_equal(np.bincount(data.y_train), [400] * 10)
    np.testing.assert_array_equal(np.bincount(data.y_test), [100] * 10)
    assert 0.0 == data.x_train.min() and data.x_train.max() == 1.0
    train_rows = {row.tobytes() for row in data.x_train}
    assert not any(row.tobytes() in train_rows for row in data.x_test)
    json.dumps(data.scaling)


def test_embedded_mnist_split_depends_on_seed_only():
    first, again, other = (load_dataset("mnist", seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(first.x_test, again.x_test)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    assert not np.array_equal(first.x_test, other.x_test)


def test_stratified_split_holds_out_the_fraction_of_every_class():
    labels = np.repeat([0, 1, 2], [10, 20, 50])
    train, test = stratified_split(labels, 0.2, seed=3)
    np.testing.assert_array_equal(np.bincount(labels[test]), [2, 4, 10])
    assert sorted(np.concatenate([train, test])) == list(range(80))


def test_iris_scaled_by_train_range():
    data = load_dataset("iris")
    assert data.x_train.shape == (120, 4) and data.x_test.shape == (30, 4)
    np.testing.assert_array_equal(np.bincount(data.y_test), [10, 10, 10])
    np.testing.assert_array_equal(data.x_train.min(axis=0), np.zeros(4))
    np.testing.assert_array_equal(data.x_train.max(axis=0), np.ones(4))
    assert data.x_test.min() >= 0.0 and data.x_test.max() <= 1.0
    assert data.scaling["kind"] == "minmax"
    json.loads(json.dumps(data.scaling))
    # The stored scaling reproduces the features from raw measurements.
    from sklearn.datasets import load_iris
    raw = load_iris().data
    mapped = apply_scaling(raw, data.scaling)
    assert sum(np.all(np.isclose(mapped, row), axis=1).any() for row in data.x_train) == 120


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ValueError, match=r"unknown dataset preset 'cifar'; choose one of iris, mnist"):
        load_dataset("cifar")
