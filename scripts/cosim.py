"""Sign-off co-simulation: the generated Verilog against the golden model, bit for bit.

    fxvae cosim --preset mnist --sim both --mode all --images 1000

For every simulator and mode: generate the core's Verilog (hw.core.VAECore,
cached on disk), build it once per simulator, stream N images through it in
one simulation (cocotb; seeded random valid/ready stalls with --stall),
compare every output word with model.golden, and write

* ``OUT/cosim.json``: one row per (simulator, mode) with sim, mode, images,
  mismatches, latency and II measured and estimated, cycles_per_image (the run's
  clocks over its images), images_per_second, build time, ...;
* ``OUT/cosim_rtl.npz``: the RTL's outputs (``<sim>/<mode>``), the golden
  outputs (``golden/<mode>``) and the inputs (``x``), all ints.

``WAVES=1`` records a waveform (FST from Icarus, VCD from Verilator) and
prints where.  Exit status 1 if any word differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

from hw.planner import add_plan_arguments, plan_from_args
from hw.presets import DEFAULT_LANES, default_lanes
from model.fixed import MODES
from model.tables import format_table, json_default
from sim.runner import SIMULATORS, SimulationFailed, SimulatorMissing, simulator_problem


def parse_args(argv=None, prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--artifact", type=Path, help="quantized artifact directory")
    src.add_argument("--preset", choices=list(DEFAULT_LANES),
                     help="use build/<preset>/quant")
    src.add_argument("--random", choices=list(DEFAULT_LANES), metavar="PRESET",
                     help="a deterministic random artifact of the preset's shape "
                          "(model.random_artifact; no training needed)")
    p.add_argument("--sim", default="both", choices=(*SIMULATORS, "both"))
    p.add_argument("--mode", default="all", choices=(*MODES, "all", "none"),
                   help="the mode whose images run one mode at a time (none: only --queue)")
    p.add_argument("--images", type=int, default=None,
                   help="images per mode (default: the whole evaluation set: 150 IRIS "
                        "samples, 1,000 MNIST test images)")
    p.add_argument("--icarus-images", type=int, default=None,
                   help="cap on images per mode for Icarus (it is ~10-100x slower than "
                        "Verilator on the MNIST core); default: same as --images")
    add_plan_arguments(p)   # --lanes (default: the preset's), --multipliers, --target-ips
    p.add_argument("--stall", type=float, default=0.0,
                   help="probability per cycle of a valid/ready gap (0 for speed runs)")
    p.add_argument("--burst", type=int, default=3, help="longest stall, cycles")
    p.add_argument("--seed", type=int, default=1, help="seed of the stall patterns")
    p.add_argument("--reset-test", action="store_true",
                   help="also run the reset-in-the-middle-of-an-image test per mode")
    p.add_argument("--queue", type=int, default=0, metavar="N",
                   help="also, per simulator, a queue of N jobs of mixed modes (drawn from "
                        "--seed; the evaluation images in order) back to back under random "
                        "stalls (--stall, at least 0.3), then a reset with four of them in "
                        "flight followed by the queue's first 16")
    p.add_argument("--progress", type=int, default=None,
                   help="print progress every N images (default: about 10 lines a run)")
    p.add_argument("--quiet", action="store_true",
                   help="keep the simulators' own logs off the terminal (the summary lines stay)")
    p.add_argument("--jobs", type=int, default=2,
                   help="simulations run side by side, one (simulator, mode) each, longest "
                        "first (default 2)")
    p.add_argument("--out", type=Path, default=None, help="output directory "
                   "(default build/sim/<preset>)")
    p.add_argument("--data-dir", default=None, help="MNIST IDX directory (default: embedded)")
    return p.parse_args(argv)


def load_inputs(artifact, preset: str, data_dir=None) -> np.ndarray:
    """The evaluation images as ints (:func:`model.data.evaluation_set`)."""
    from model.data import evaluation_set, load_dataset
    x, _, _ = evaluation_set(load_dataset(preset, mnist_dir=data_dir))
    if x.shape[1] != artifact.input_dim:
        raise SystemExit(f"dataset has {x.shape[1]} features, artifact expects {artifact.input_dim}")
    return artifact.input_fmt.quantize(x)


def load(args):
    if args.random:
        from model.random_artifact import random_artifact
        artifact = random_artifact(args.random)
        return artifact, args.random, load_inputs(artifact, args.random, args.data_dir)
    from model.artifact import load_artifact
    path = args.artifact if args.artifact else Path("build") / args.preset / "quant"
    if not path.exists():
        hint = " (run `make train` first)" if args.preset else ""
        raise SystemExit(f"no artifact at {path}{hint}")
    artifact = load_artifact(path)
    preset = args.preset or artifact.preset
    return artifact, preset, load_inputs(artifact, preset, args.data_dir)


def drop_lists(results: dict) -> None:
    """The per-job lists (cmd-to-last cycles, gaps between jobs) stay out of the rows."""
    results.pop("cycles", None)
    results.pop("gaps", None)


def runs_table(rows: list[dict]) -> str:
    head = ("sim", "mode", "images", "mismatches", "latency", "model", "II", "model",
            "cycles/img", "img/s", "sim s", "build s")
    return format_table(head, [
        (r["sim"], r["mode"], r["images"], r["mismatches"], r.get("latency_measured", ""),
         r.get("latency_model", ""), r.get("ii_measured", ""), r.get("ii_model", ""),
         f"{r['cycles_per_image']:.1f}", f"{r['images_per_second']:.1f}",
         f"{r['sim_seconds']:.1f}", f"{r.get('build_seconds', 0):.0f}") for r in rows],
        right=range(2, len(head)))


def main(argv=None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    from sim.cosim import CoreCosim, golden_outputs
    from sim.designs import core_design

    artifact, preset, x_all = load(args)
    sims = list(SIMULATORS) if args.sim == "both" else [args.sim]
    for sim in sims:
        problem = simulator_problem(sim)
        if problem:
            print(f"error: cannot simulate with {sim}: {problem}", file=sys.stderr)
            return 2
    modes = list(MODES) if args.mode == "all" else [] if args.mode == "none" else [args.mode]
    n = args.images if args.images is not None else len(x_all)
    if n > len(x_all) and set(modes) - {"generate"}:
        raise SystemExit(f"only {len(x_all)} images available, asked for {n}")
    out = args.out or Path("build") / "sim" / preset
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.monotonic()
    try:
        plan = plan_from_args(args, artifact, default_lanes(preset))
    except ValueError as exc:   # hw.planner.PlanError, or lanes the layers cannot take
        raise SystemExit(f"error: {exc}") from None
    design = core_design(artifact, plan.lanes, simd=plan.simd)
    print(f"{preset}: core with lanes={design.meta['lanes']}, Verilog "
          f"{len(design.verilog) / 1e6:.1f} MB ({time.monotonic() - t0:.1f} s); "
          f"simulators {', '.join(sims)}; modes {', '.join(modes)}", flush=True)

    inputs = {mode: None if mode == "generate" else x_all[:n] for mode in modes}
    expected = {mode: golden_outputs(artifact, mode, inputs[mode], n) for mode in modes}

    rows: list[dict] = []
    rtl: dict[str, np.ndarray] = {}
    failures: list[str] = []
    lock = threading.Lock()

    cosims = {sim: CoreCosim(artifact, sim, design=design) for sim in sims}
    built: dict[str, float] = {}

    def ensure_built(sim: str) -> float:
        cosim = cosims[sim]
        if sim not in built:
            seconds = cosim.build()  # file-locked: a second thread waits, then reuses it
            with lock:
                if sim not in built:
                    built[sim] = seconds
                    print(f"[{sim}] built in {seconds:.0f} s" if seconds else
                          f"[{sim}] build reused", flush=True)
        return built[sim]

    def images_for(sim: str) -> int:
        cap = args.icarus_images if sim == "icarus" and args.icarus_images else None
        return min(n, cap) if cap else n

    def run_job(sim: str, mode: str) -> None:
        """One simulation: N images of one mode (then the reset test, if asked)."""
        build_seconds = ensure_built(sim)
        cosim = cosims[sim]
        count = images_for(sim)
        x = inputs[mode][:count] if inputs[mode] is not None else None
        every = args.progress or max(1, count // 10)
        results, words = cosim.run(
            mode, x=x, n=count, workdir=out / "work", stall=args.stall,
            burst=args.burst, seed=args.seed, progress_every=every,
            expected=expected[mode][:count], quiet=args.quiet)
        results["build_seconds"] = build_seconds
        drop_lists(results)
        if cosim.simulation.waves_path:
            results["waves"] = str(cosim.simulation.waves_path)
        with lock:
            rows.append(results)
            rtl[f"{sim}/{mode}"] = words
            print(f"[{sim}] {mode}: {results['images']} images, "
                  f"{results['mismatches']} mismatches, "
                  f"{results['cycles_per_image']:.0f} cycles/image, "
                  f"{results['images_per_second']:.1f} images/s"
                  + (f"; waveform {results['waves']}" if "waves" in results else ""),
                  flush=True)
        if args.reset_test:
            rcount = min(count, 8)
            rx = x[:rcount] if x is not None else None
            results, _ = cosim.run(mode, x=rx, n=rcount, workdir=out / "work",
                                   stall=max(args.stall, 0.2), burst=args.burst,
                                   seed=args.seed + 1, test="reset_mid_image",
                                   expected=expected[mode][:rcount], quiet=True)
            with lock:
                drop_lists(results)
                results["test"] = "reset_mid_image"
                rows.append(results)
                print(f"[{sim}] {mode}: reset mid-image test, {results['mismatches']} "
                      f"mismatches, aborted-job prefix exact: "
                      f"{results['aborted'].get('output_prefix_exact')}", flush=True)

    def run_queue(sim: str) -> None:
        """The mixed-mode queue, then the reset with jobs in flight, on one simulator."""
        rng = np.random.default_rng(args.seed)
        queue = [(str(mode), None if mode == "generate" else x_all[k % len(x_all)])
                 for k, mode in enumerate(rng.choice(MODES, args.queue))]
        stall = max(args.stall, 0.3)
        ensure_built(sim)
        cosim = cosims[sim]
        for test, run in (
                ("job_queue", lambda: cosim.run_jobs(
                    queue, workdir=out / "work" / f"queue-{sim}", stall=stall,
                    burst=args.burst, seed=args.seed, quiet=args.quiet)),
                ("reset_in_flight", lambda: cosim.run_reset_in_flight(
                    queue[:4], queue[:16], workdir=out / "work" / f"reset-{sim}",
                    stall=stall, burst=args.burst, seed=args.seed, quiet=True))):
            results, _ = run()
            with lock:
                drop_lists(results)
                results.update(sim=sim, mode="mixed", test=test)
                rows.append(results)
                print(f"[{sim}] {test}: {results['images']} jobs of mixed modes, "
                      f"{results['mismatches']} mismatches, "
                      f"{len(results['protocol_errors'])} protocol errors", flush=True)

    def guarded(sim: str, what: str, task, *task_args) -> None:
        """Run one simulation task; a simulator that fails or is missing is recorded and
        printed, and the other tasks go on."""
        try:
            task(*task_args)
        except (SimulationFailed, SimulatorMissing) as exc:
            with lock:
                failures.append(f"{sim} {what}: {exc}")
                print(f"[{sim}] {what}: FAILED: {exc}", file=sys.stderr, flush=True)

    # Longest jobs first (Icarus is 10-50x slower per cycle on the big core),
    # so --jobs workers finish together.
    slowness = {"icarus": 20.0, "verilator": 1.0}
    jobs = sorted(((sim, mode) for sim in sims for mode in modes),
                  key=lambda j: -slowness[j[0]] * images_for(j[0]) * max(
                      1, int(design.meta["latency"][j[1]])))
    tasks = [(sim, "queue", run_queue, sim) for sim in sims if args.queue] + [
        (sim, mode, run_job, sim, mode) for sim, mode in jobs]
    if args.jobs > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for future in [pool.submit(guarded, *task) for task in tasks]:
                future.result()
    else:
        for task in tasks:
            guarded(*task)

    order = {mode: k for k, mode in enumerate((*MODES, "mixed"))}
    rows.sort(key=lambda r: (r["sim"], order[r["mode"]], r.get("test", "")))
    speed_rows = [r for r in rows if "test" not in r]
    summary = {
        "preset": preset, "artifact": str(args.artifact or args.preset or "random"),
        "lanes": design.meta["lanes"], "images": n, "stall": args.stall, "seed": args.seed,
        "wall_seconds": time.monotonic() - t0,
        "mismatches": int(sum(r["mismatches"] for r in rows)),
        "protocol_errors": int(sum(len(r["protocol_errors"]) for r in rows)),
        "failures": failures, "runs": rows,
    }
    (out / "cosim.json").write_text(json.dumps(summary, indent=1, default=json_default))
    arrays = dict(rtl)
    for mode in modes:
        arrays[f"golden/{mode}"] = expected[mode]
    arrays["x"] = x_all[:n]
    np.savez_compressed(out / "cosim_rtl.npz", **arrays)
    print()
    print(runs_table(speed_rows))
    print(f"\n{summary['mismatches']} mismatching images, {summary['protocol_errors']} protocol "
          f"errors, {len(failures)} failed runs; {summary['wall_seconds']:.0f} s; "
          f"results in {out / 'cosim.json'}")
    ok = not failures and summary["mismatches"] == 0 and summary["protocol_errors"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
