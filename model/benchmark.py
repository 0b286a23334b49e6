"""Pieces of ``scripts/bench.py`` that need no simulator: engine throughput and board builds.

:func:`throughput` times the golden model against the float PyTorch model on
the same images; :func:`load_board_builds` reads the ``synth.json`` each
board build writes (``build/board/<board>/synth.json``) and turns it into
resources, Fmax and images per second at Fmax.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from model.artifact import Artifact
from model.golden import GoldenModel
from model.vae import VAE

__all__ = ["throughput", "BOARD_KEYS", "BoardBuildError", "read_board_build",
           "load_board_builds"]


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def throughput(model: VAE, artifact: Artifact, x: np.ndarray, repeats: int,
               threads=(1, 2)) -> dict:
    """recon_mu images/s of the golden model and of the float model on the same images.

    Both engines get the same thread count (torch's pool and numpy's BLAS),
    at each of ``threads``; the runs alternate and the best of ``repeats``
    counts, so a busy neighbour on shared cores hits both alike.
    """
    gm = GoldenModel(artifact)
    x_int = gm.quantize_input(x)
    x_torch = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    out = {"images": len(x), "mode": "recon_mu", "repeats": repeats}
    previous = torch.get_num_threads()
    try:
        for n in threads:
            torch.set_num_threads(n)
            with threadpool_limits(limits=n, user_api="blas"), torch.no_grad():
                golden, floats = [], []
                for _ in range(repeats):
                    golden.append(_seconds(lambda: gm.run("recon_mu", x_int)))
                    floats.append(_seconds(lambda: model(x_torch)))
            out[f"threads_{n}"] = {"golden_images_per_s": len(x) / min(golden),
                                   "float_images_per_s": len(x) / min(floats),
                                   "golden_over_float": min(floats) / min(golden)}
    finally:
        torch.set_num_threads(previous)
    out["golden_int64_images_per_s"] = len(x) / _seconds(
        lambda: GoldenModel(artifact, matmul="int64").run("recon_mu", x_int))
    return out


#: What every board build's synth.json holds (more keys are kept as they are).
BOARD_KEYS = ("board", "preset", "device", "fmax_mhz", "target_mhz", "resources",
              "cycles_per_image", "images_per_s_at_fmax", "build_seconds")


class BoardBuildError(ValueError):
    """A synth.json is unreadable or lacks a key; the message names the file."""


def read_board_build(path) -> dict:
    """One ``synth.json`` (as :func:`hw.bitstream.build_bitstream` writes it), checked,
    with ``utilisation`` per resource added."""
    path = Path(path)
    try:
        build = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BoardBuildError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(build, dict):
        raise BoardBuildError(f"{path}: holds {type(build).__name__}, not an object")
    missing = [key for key in BOARD_KEYS if key not in build]
    if missing:
        raise BoardBuildError(f"{path}: missing {', '.join(missing)}")
    try:
        float(build["fmax_mhz"])
        if not all(float(build["images_per_s_at_fmax"][mode]) > 0 and int(cycles) > 0
                   for mode, cycles in build["cycles_per_image"].items()):
            raise ValueError("a count is not positive")
        build["utilisation"] = {
            name: int(r["used"]) / int(r["available"]) if int(r["available"]) else None
            for name, r in build["resources"].items()}
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError) as exc:
        raise BoardBuildError(f"{path}: fmax_mhz must be a number, cycles_per_image and "
                              f"images_per_s_at_fmax mode -> number > 0, resources name -> "
                              f"{{used, available}} "
                              f"({type(exc).__name__}: {exc})") from None
    return build


def load_board_builds(root) -> tuple[list[dict], list[str]]:
    """Every ``ROOT/<board>/synth.json`` (sorted by board), and notes on what is missing
    or unreadable."""
    root = Path(root)
    paths = sorted(root.glob("*/synth.json"))
    if not paths:
        return [], [f"no board builds under {root} (a board build writes "
                    f"{root}/<board>/synth.json)"]
    builds, notes = [], []
    for path in paths:
        try:
            builds.append(read_board_build(path))
        except BoardBuildError as exc:
            notes.append(str(exc))
    return builds, notes
