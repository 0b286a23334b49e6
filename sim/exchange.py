"""How the pytest/script side and the cocotb side talk: files named in the environment.

The driving process writes a JSON *config* (ports, stall probabilities,
seeds, paths) and an ``.npz`` of integer *vectors* (inputs and expected
outputs), then sets ``FXVAE_SIM_CONFIG`` to the config's path for the
simulator process.  The cocotb test reads both, runs, and writes a JSON
*results* file (and, when asked, an ``.npz`` of the RTL's outputs) to the
paths the config names.  Nothing else crosses the process boundary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from model.tables import json_default

__all__ = ["CONFIG_ENV", "load_config", "load_vectors", "save_vectors", "write_results",
           "load_results"]

CONFIG_ENV = "FXVAE_SIM_CONFIG"


def load_config() -> dict:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(f"{CONFIG_ENV} is not set: run this cocotb test through sim.runner")
    return json.loads(Path(path).read_text())


def save_vectors(path: Path, **arrays) -> Path:
    """Integer arrays by name (ragged data: pass a flat array plus offsets)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: np.asarray(v, dtype=np.int64) for k, v in arrays.items()})
    return path


def load_vectors(path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def write_results(path, results: dict) -> None:
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, default=json_default))
    tmp.replace(path)


def load_results(path) -> dict:
    return json.loads(Path(path).read_text())
