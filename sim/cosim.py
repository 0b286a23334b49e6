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
        arrays = {"expected": expected}
        if x is not None:
            arrays["x"] = x
        config = {
            "mode": MODES.index(mode), "mode_name": mode,
            "stall_in": stall, "stall_out": stall, "burst": burst, "seed": seed,
            "progress_every": progress_every, "registered": bool(registered),
            "latency": self.design.meta["latency"][mode],
            "ii": self.design.meta["ii"][mode],
            "timeout_cycles": 20 * int(self.design.meta["latency"][mode]) + 10_000,
        }
        return self._launch(test, mode, arrays, config, workdir, quiet)

    def run_jobs(self, jobs, *, workdir, stall: float = 0.0, stall_in: float | None = None,
                 stall_out: float | None = None, stall_cmd: float | None = None,
                 burst: int = 1, seed: int = 0, settle: bool = False, quiet: bool = False,
                 registered: bool | None = None) -> tuple[dict, np.ndarray]:
        """A queue of jobs of mixed modes, back to back, through cocotb's
        ``run_job_queue``: ``jobs`` = ``[(mode, x or None), ...]`` (as
        :func:`sim.pysim.random_jobs` makes them); returns ``(results, rtl)``,
        ``rtl`` one row per job padded with :data:`sim.scoreboard.MISSING`.

        Every word and ``last`` is checked against :func:`sim.pysim.golden_jobs` (one
        sampler across the jobs, fresh from its seeds).  ``stall`` is the ``cmd``,
        ``i`` and ``o`` stall probability unless ``stall_cmd``/``stall_in``/``stall_out``
        say otherwise.  ``settle`` idles until the sampler is primed before the first
        command, so without stalls ``results["latency_agrees"]`` compares the first
        job's cycles with the model's exactly (and ``ii_agrees`` the II when every job
        has one mode)."""
        stalls = self._queue_stalls(stall, stall_in, stall_out, stall_cmd, registered)
        arrays, config = self._queue(jobs)
        config.update(stalls, burst=burst, seed=seed)
        if settle:
            config["settle_cycles"] = self.plan().sampler.primed + 2
        return self._launch("run_job_queue", "queue", arrays, config, workdir, quiet)

    def run_reset_in_flight(self, in_flight, jobs, *, workdir, wait: int | None = None,
                            take: int = 0, stall: float = 0.0, stall_in: float | None = None,
                            stall_out: float | None = None, stall_cmd: float | None = None,
                            burst: int = 1, seed: int = 0, quiet: bool = False,
                            registered: bool | None = None) -> tuple[dict, np.ndarray]:
        """cocotb's ``reset_in_flight``: start the jobs ``in_flight`` (several images
        in the core at once), idle ``wait`` clocks (default: two thirds of the first
        one's latency, so the images are in different layers), take ``take`` of their
        output words (checked against the golden prefix), pulse reset, then run the
        queue ``jobs`` exactly as :meth:`run_jobs` does (golden outputs from a fresh
        sampler: reset restarts the LFSRs).  ``results["aborted"]`` says how far the
        aborted jobs had got."""
        stalls = self._queue_stalls(stall, stall_in, stall_out, stall_cmd, registered)
        arrays, config = self._queue(jobs)
        abort_arrays, abort_config = self._queue(in_flight)
        arrays.update({f"abort_{name}": array for name, array in abort_arrays.items()})
        first = in_flight[0][0]
        if wait is None:
            wait = 2 * int(self.design.meta["latency"][first]) // 3
        config.update(stalls, burst=burst, seed=seed, abort_modes=abort_config["modes"],
                      abort_wait=int(wait), abort_take=int(take),
                      timeout_cycles=max(config["timeout_cycles"],
                                         abort_config["timeout_cycles"]))
        return self._launch("reset_in_flight", "queue", arrays, config, workdir, quiet)

    def plan(self):
        """The core's :class:`hw.plan.CorePlan` (lanes and options as built)."""
        from hw.plan import core_plan
        return core_plan(self.artifact, self.lanes, **self.options)

    @staticmethod
    def _queue_stalls(stall, stall_in, stall_out, stall_cmd, registered) -> dict:
        stalls = {"stall_in": stall if stall_in is None else stall_in,
                  "stall_out": stall if stall_out is None else stall_out,
                  "stall_cmd": stall if stall_cmd is None else stall_cmd}
        if registered is None:
            registered = not any(stalls.values())
        return {**stalls, "registered": bool(registered)}

    def _queue(self, jobs) -> tuple[dict, dict]:
        """The vectors (``x`` of the image jobs, ``expected`` padded with MISSING,
        ``lengths``) and the config (``modes``, the model's figures) of a job queue."""
        from sim.pysim import golden_jobs
        from sim.scoreboard import MISSING
        jobs = list(jobs)
        if not jobs:
            raise ValueError("a job queue needs at least one job")
        for mode, x in jobs:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
            if (x is None) != (mode == "generate"):
                raise ValueError(f"a {mode} job takes {'no' if mode == 'generate' else 'an'} "
                                 "image")
        golden = golden_jobs(self.artifact, jobs)
        lengths = np.array([len(words) for words in golden], dtype=np.int64)
        expected = np.full((len(jobs), int(lengths.max())), MISSING, dtype=np.int64)
        for row, words in zip(expected, golden):
            row[:len(words)] = words
        arrays = {"expected": expected, "lengths": lengths}
        images = [np.asarray(x, dtype=np.int64) for _, x in jobs if x is not None]
        if images:
            arrays["x"] = np.stack(images)
        latency = {m: int(v) for m, v in self.design.meta["latency"].items()}
        config = {"modes": [MODES.index(mode) for mode, _ in jobs],
                  "latency_by_mode": latency,
                  "ii_by_mode": {m: int(v) for m, v in self.design.meta["ii"].items()},
                  "timeout_cycles": 20 * max(latency.values()) + 10_000}
        return arrays, config

    def _launch(self, test: str, name: str, arrays: dict, config: dict, workdir,
                quiet: bool) -> tuple[dict, np.ndarray]:
        """Write the vectors, run one cocotb test of :mod:`sim.cocotb_core`, read back
        its results and the RTL's outputs."""
        workdir = Path(workdir).resolve()  # the simulator runs in a folder of its own
        workdir.mkdir(parents=True, exist_ok=True)
        # One file set per (name, simulator, test): runs may go side by side.
        stem = f"{name}.{self.sim}.{test}"
        vectors = exchange.save_vectors(workdir / f"{stem}.vectors.npz", **arrays)
        rtl_path = workdir / f"{stem}.rtl.npz"
        config = {**config, "vectors": str(vectors), "rtl_out": str(rtl_path)}
        results = self.simulation.run("sim.cocotb_core", test, config,
                                      workdir=workdir / f"{name}-{self.sim}-{test}", quiet=quiet)
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
