"""Co-simulation orchestration: golden vectors in, RTL results out.

The driving side of the sign-off, shared by ``fxvae cosim`` and
``tests/test_cosim.py``: make the design (:mod:`sim.designs`, cached on
disk), build it once per simulator
(:class:`sim.runner.Simulation`), compute the golden model's outputs, write
them with the inputs to an ``.npz``, run one cocotb test that streams every
image through the Verilog, and read back the results and the RTL's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.fixed import MODES, sigmoid
from model.golden import GoldenModel, Sampler
from sim import exchange
from sim.designs import core_design, sampler_design, sigmoid_design
from sim.runner import Design, Simulation

__all__ = ["golden_outputs", "CoreCosim", "run_sigmoid", "run_sampler"]


def golden_outputs(artifact, mode: str, x=None, n: int | None = None) -> np.ndarray:
    """The golden model's words for ``mode``: one row per image (``x``; ``n`` images
    for ``generate``), sampler fresh from its seeds as after a reset."""
    if mode == "generate":
        return GoldenModel(artifact).run("generate", n=n)
    return GoldenModel(artifact).run(mode, x_int=x)


@dataclass
class CoreCosim:
    """One core design on one simulator: build once, run many modes."""

    artifact: object
    sim: str
    lanes: object = None
    build_root: Path | None = None
    waves: bool | None = None
    design: Design | None = None
    options: dict = field(default_factory=dict)  # core knobs besides lanes (hw.plan.core_plan)

    def __post_init__(self):
        if self.design is None:
            self.design = core_design(self.artifact, self.lanes, build_root=self.build_root,
                                      **self.options)
        self.lanes = self.design.meta["lanes"]
        self.simulation = Simulation(self.design, self.sim, build_root=self.build_root,
                                     waves=self.waves)

    def build(self) -> float:
        return self.simulation.build()

    def run(self, mode: str, x=None, n: int | None = None, *, workdir, stall: float = 0.0,
            burst: int = 1, seed: int = 0, progress_every: int = 0, test: str = "run_images",
            quiet: bool = False, expected: np.ndarray | None = None,
            registered: bool | None = None) -> tuple[dict, np.ndarray]:
        """Stream the images through the RTL; returns ``(results, rtl outputs)``.

        ``expected`` defaults to the golden model's outputs (fresh sampler).
        ``registered`` (default: only when ``stall == 0``) lets the testbench
        rely on the core's registered boundary and wake once per word; the
        stalled runs take the general path, so both are exercised."""
        if registered is None:
            registered = stall == 0
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "generate":
            if n is None:
                raise ValueError("generate needs n (images)")
            x = None
        else:
            x = np.asarray(x, dtype=np.int64)
            n = len(x)
        if expected is None:
            expected = golden_outputs(self.artifact, mode, x, n)
        workdir = Path(workdir).resolve()  # the simulator runs in a folder of its own
        workdir.mkdir(parents=True, exist_ok=True)
        arrays = {"expected": expected}
        if x is not None:
            arrays["x"] = x
        # One file set per (mode, simulator, test): runs may go side by side.
        stem = f"{mode}.{self.sim}.{test}"
        vectors = exchange.save_vectors(workdir / f"{stem}.vectors.npz", **arrays)
        rtl_path = workdir / f"{stem}.rtl.npz"
        config = {
            "mode": MODES.index(mode), "mode_name": mode, "vectors": str(vectors),
            "stall_in": stall, "stall_out": stall, "burst": burst, "seed": seed,
            "progress_every": progress_every, "rtl_out": str(rtl_path),
            "registered": bool(registered),
            "latency": self.design.meta["latency"][mode],
            "timeout_cycles": 20 * int(self.design.meta["latency"][mode]) + 10_000,
        }
        results = self.simulation.run("sim.cocotb_core", test, config,
                                      workdir=workdir / f"{mode}-{self.sim}-{test}", quiet=quiet)
        rtl = exchange.load_vectors(rtl_path)["rtl"]
        results.update({"sim": self.sim, "lanes": self.lanes, "build_seconds":
                        self.simulation.build_seconds})
        return results, rtl


def run_sigmoid(spec, sim: str, *, workdir, stall: float = 0.3, burst: int = 3, seed: int = 0,
                n_random: int = 2000, build_root=None, quiet: bool = True) -> dict:
    """Every input code (exhaustive when the input is at most 16 bits), then random
    inputs under random stalls, exact against :func:`model.fixed.sigmoid`."""
    fmt = spec.in_fmt
    if fmt.width <= 16:
        sweep = np.arange(fmt.min_int, fmt.max_int + 1, dtype=np.int64)
    else:
        sweep = np.concatenate([np.arange(-4096, 4097), [fmt.min_int, fmt.max_int]])
    rng = np.random.default_rng(seed)
    edges = np.clip([fmt.min_int, fmt.min_int + 1, -1, 0, 1, fmt.max_int - 1, fmt.max_int,
                     spec.clamp_int, -spec.clamp_int, spec.clamp_int + 1, -spec.clamp_int - 1],
                    fmt.min_int, fmt.max_int)
    rand = np.concatenate([edges, rng.integers(fmt.min_int, fmt.max_int + 1, n_random)])
    workdir = Path(workdir)
    vectors = exchange.save_vectors(
        workdir / f"sigmoid.{sim}.vectors.npz", sweep=sweep, sweep_out=sigmoid(sweep, spec),
        rand=rand, rand_out=sigmoid(rand, spec))
    design = sigmoid_design(spec, build_root=build_root)
    config = {"vectors": str(vectors), "in_stream": "i", "out_stream": "o",
              "phases": [{"inputs": "sweep", "expected": "sweep_out"},
                         {"inputs": "rand", "expected": "rand_out"}],
              "stall_in": stall, "stall_out": stall, "burst": burst, "seed": seed,
              # o.valid/o.payload are pipeline registers; i.ready = ~o.valid | o.ready
              # is combinational in o.ready, so the driver takes the general path.
              "registered_in": False, "registered_out": True}
    return _run_stream_map(design, sim, config, workdir / f"sigmoid-{sim}", build_root, quiet)


def run_sampler(spec, sim: str, *, workdir, n: int = 3000, stall: float = 0.3, burst: int = 4,
                seed: int = 0, build_root=None, quiet: bool = True) -> dict:
    """``n`` draws under random ready stalls with a reset in the middle of the
    stream, then ``n // 2`` draws after it: exact against ``Sampler(spec).draw``
    (reset restarts the LFSRs from their seeds)."""
    draws = Sampler(spec).draw(n)
    workdir = Path(workdir)
    vectors = exchange.save_vectors(workdir / f"sampler.{sim}.vectors.npz", eps=draws,
                                    eps_fresh=draws[: max(1, n // 2)])
    design = sampler_design(spec, build_root=build_root)
    config = {"vectors": str(vectors), "in_stream": None, "out_stream": "o",
              "phases": [{"inputs": None, "expected": "eps",
                          "reset_after_outputs": (2 * n) // 3},
                         {"inputs": None, "expected": "eps_fresh"}],
              "stall_in": 0.0, "stall_out": stall, "burst": burst, "seed": seed}
    return _run_stream_map(design, sim, config, workdir / f"sampler-{sim}", build_root, quiet)


def _run_stream_map(design: Design, sim: str, config: dict, workdir: Path, build_root,
                    quiet: bool) -> dict:
    """One block through :func:`sim.cocotb_blocks.stream_map`; results with the build time."""
    simulation = Simulation(design, sim, build_root=build_root)
    results = simulation.run("sim.cocotb_blocks", "stream_map", config, workdir=workdir,
                             quiet=quiet)
    results["build_seconds"] = simulation.build_seconds
    return results
