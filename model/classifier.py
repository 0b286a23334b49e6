"""A small digit classifier that says whether an image still looks like a digit.

The comparison report asks of every MNIST image column (test inputs, float,
quantized and RTL reconstructions, generated images): would a classifier
that never saw a reconstruction recognise it?  :class:`DigitClassifier` is a
two-convolution CNN (LeNet-like), trained deterministically on the embedded
training split; 10 epochs reach ~98 % on the 1,000 test images in ~15 s on
one thread.  :func:`cached_classifier` keeps it under ``build/`` keyed by its
settings, the data source and this module's source, so the demo trains it
once.  :func:`recognisability` turns its class probabilities into the
report's figures.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from model.train import TrainSettings, configure_determinism
from model.vae import read_marked_torch_file

__all__ = ["N_CLASSES", "CLASSIFIER_TRAINING", "ClassifierError", "DigitClassifier",
           "train_classifier", "class_probabilities", "save_classifier", "load_classifier",
           "cached_classifier", "recognisability"]

N_CLASSES = 10
IMAGE_SIDE = 28
CLASSIFIER_FORMAT = "fxvae-digit-classifier"


#: Adam, 10 epochs of batches of 64: ~98 % on the test split, ~11 s on one thread.
CLASSIFIER_TRAINING = TrainSettings(epochs=10, batch_size=64, lr=2e-3, seed=0)


class ClassifierError(ValueError):
    """A classifier file cannot be used; the message names the file."""


class DigitClassifier(nn.Module):
    """28x28 grey image in [0, 1] -> 10 class logits."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, N_CLASSES))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE))


def _images(x) -> torch.Tensor:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != IMAGE_SIDE * IMAGE_SIDE:
        raise ValueError(f"images must be (n, {IMAGE_SIDE * IMAGE_SIDE}), not {x.shape}")
    return torch.from_numpy(np.ascontiguousarray(x))


def train_classifier(x_train, y_train, settings: TrainSettings = CLASSIFIER_TRAINING, *,
                     progress: bool = True) -> DigitClassifier:
    """Adam on cross-entropy, seeded initialisation and shuffles (same bits every run)."""
    configure_determinism(settings.seed)
    model = DigitClassifier()
    x, y = _images(x_train), torch.as_tensor(np.asarray(y_train), dtype=torch.long)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    generator = torch.Generator().manual_seed(settings.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    model.train()
    for _ in tqdm(range(settings.epochs), desc="digit classifier", unit="epoch",
                  disable=not progress):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), settings.batch_size):
            batch = order[start:start + settings.batch_size]
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def class_probabilities(model: DigitClassifier, images) -> np.ndarray:
    """Softmax class probabilities, ``(n, 10)`` float64."""
    model.eval()
    return torch.softmax(model(_images(images)), dim=1).double().numpy()


def _source_digest() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def save_classifier(path, model: DigitClassifier, info: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": CLASSIFIER_FORMAT, "state_dict": model.state_dict(), "info": info},
               path)


def load_classifier(path) -> tuple[DigitClassifier, dict]:
    """``(model, info)`` from :func:`save_classifier`'s file; bad files raise
    :class:`ClassifierError`."""
    payload = read_marked_torch_file(path, CLASSIFIER_FORMAT, "digit classifier",
                                     ClassifierError)
    model = DigitClassifier()
    try:
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ClassifierError(f"{path}: weights do not fit DigitClassifier ({reason})") from None
    return model.eval(), payload.get("info", {})


def cached_classifier(path, data, settings: TrainSettings = CLASSIFIER_TRAINING, *,
                      progress: bool = True) -> tuple[DigitClassifier, dict]:
    """The classifier at ``path`` if it was trained with these settings on this data
    by this code, else a freshly trained one (saved there).  ``data`` is the MNIST
    :class:`model.data.Dataset`; ``info`` records the key and the test accuracy."""
    key = {"settings": asdict(settings), "data": data.source, "code": _source_digest()}
    path = Path(path)
    if path.is_file():
        model, info = load_classifier(path)
        if info.get("key") == key:
            return model, info
    model = train_classifier(data.x_train, data.y_train, settings, progress=progress)
    accuracy = float(np.mean(class_probabilities(model, data.x_test).argmax(1) == data.y_test))
    info = {"key": key, "n_train": len(data.x_train), "n_test": len(data.x_test),
            "test_accuracy": accuracy}
    save_classifier(path, model, info)
    return model, info


def recognisability(probs: np.ndarray, labels=None) -> dict:
    """What a batch of class probabilities says about its images.

    ``mean_top_probability``: how sure the classifier is, on average;
    ``class_histogram``: how many images fall in each class (argmax);
    ``histogram_entropy_bits``: its entropy (log2 10 = 3.32 when every class
    appears equally often); ``accuracy`` only when ``labels`` are given.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != N_CLASSES:
        raise ValueError(f"probabilities must be (n, {N_CLASSES}), not {probs.shape}")
    predicted = probs.argmax(axis=1)
    counts = np.bincount(predicted, minlength=N_CLASSES)
    share = counts[counts > 0] / max(len(probs), 1)
    out = {"n": len(probs), "mean_top_probability": float(probs.max(axis=1).mean()),
           "class_histogram": counts.tolist(),
           "histogram_entropy_bits": float(-(share * np.log2(share)).sum()),
           "max_entropy_bits": math.log2(N_CLASSES),
           "classes_covered": int(np.count_nonzero(counts))}
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != predicted.shape:
            raise ValueError(f"{len(labels)} labels for {len(predicted)} images")
        out["accuracy"] = float(np.mean(predicted == labels))
    return out
