"""Every speed figure in one run: one table, and build/bench/bench.json.

    fxvae bench --iris-lanes 4 --mnist-lanes 64,20,16,64

Sections (--only picks some):

* throughput: the golden model against the float PyTorch model, MNIST
  recon_mu on the 1,000 test images, 1 and 2 threads each (goal: >= 0.5);
* cosim: co-simulation images/s of the trained cores in Icarus and
  Verilator, every mode, images back to back, and their latency and II
  against the analytic model (every word checked against the golden model);
* plans: the lane planner's MNIST cores for several multiplier budgets, their
  II and latency in Amaranth's simulator against the estimate and the ideal
  (the slowest layer's MACs / lanes; goal: within 1.05), and images/s at
  100 MHz (goal with the ULX3S-85F's 156 blocks: >= 60,000);
* boards: resources, Fmax and images/s at Fmax of every board build found
  under build/board/<board>/synth.json (the rest are skipped with a note).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from hw.plan import parse_lanes
from hw.presets import default_lanes
from model.fixed import MODES

SECTIONS = ("throughput", "cosim", "plans", "boards")
#: Images per co-simulation run: enough for a steady rate, few enough for a
#: short run (Icarus takes ~0.5 s per MNIST reconstruction).
COSIM_IMAGES = {"iris": {"icarus": 150, "verilator": 150},
                "mnist": {"icarus": 4, "verilator": 50}}
THROUGHPUT_GOAL = 0.5
#: Lane plans: II within this factor of the slowest layer's MACs / lanes, and with the
#: ULX3S-85F's multiplier blocks at least RATE_GOAL images/s at PLAN_MHZ.
IDEAL_GOAL = 1.05
RATE_GOAL = 60_000
PLAN_MHZ = 100


def parse_args(argv, prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--build", type=Path, default=Path("build"),
                   help="folder with <preset>/checkpoint.pt, <preset>/quant and board/")
    p.add_argument("--out", type=Path, default=Path("build/bench/bench.json"))
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--iris-lanes", type=parse_lanes, default=default_lanes("iris"))
    p.add_argument("--mnist-lanes", type=parse_lanes, default=default_lanes("mnist"))
    p.add_argument("--budgets", type=int, nargs="+", default=[40, 80, 120, 156],
                   help="multiplier budgets of the plans section")
    p.add_argument("--plan-modes", nargs="+", choices=MODES, default=["recon_sample", "encode"],
                   help="modes the plans section simulates")
    p.add_argument("--repeats", type=int, default=20, help="timing repeats (best counts)")
    return p.parse_args(argv)


def _grouped(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _lanes_text(lanes) -> str:
    return ",".join(map(str, lanes)) if isinstance(lanes, (list, tuple)) else str(lanes)


def bench_throughput(args, rows: list, problems: list) -> dict:
    from model.artifact import load_artifact
    from model.benchmark import throughput
    from model.data import load_dataset
    from model.vae import load_checkpoint
    checkpoint = load_checkpoint(args.build / "mnist/checkpoint.pt")
    artifact = load_artifact(args.build / "mnist/quant")
    data = load_dataset("mnist", mnist_dir=checkpoint.data_info.get("mnist_dir"),
                        seed=checkpoint.data_info.get("seed", 0))
    result = throughput(checkpoint.model, artifact, data.x_test, args.repeats)
    for threads in (1, 2):
        r = result[f"threads_{threads}"]
        ok = r["golden_over_float"] >= THROUGHPUT_GOAL
        if not ok:
            problems.append(f"golden / float throughput at {threads} threads below "
                            f"{THROUGHPUT_GOAL}")
        rows.append(("golden vs float", f"MNIST recon_mu, {len(data.x_test):,} images, "
                     f"{threads} thread{'s' if threads > 1 else ''}",
                     f"golden {_grouped(r['golden_images_per_s'])} img/s",
                     f"float {_grouped(r['float_images_per_s'])} img/s",
                     f"{r['golden_over_float']:.2f} ({'PASS' if ok else 'FAIL'} >= "
                     f"{THROUGHPUT_GOAL})"))
    return result


def bench_cosim(args, rows: list, notes: list, problems: list) -> list[dict]:
    """Every (preset, simulator, mode): images/s and cycles per image, exact or not."""
    from model.artifact import load_artifact
    from model.data import evaluation_set, load_dataset
    from sim.cosim import CoreCosim
    from sim.designs import core_design
    from sim.runner import SIMULATORS, simulator_problem

    from scripts.cosim import drop_lists

    sims = [sim for sim in SIMULATORS if not simulator_problem(sim)]
    notes += [f"co-simulation: {sim} skipped: {simulator_problem(sim)}"
              for sim in SIMULATORS if sim not in sims]
    lanes = {"iris": args.iris_lanes, "mnist": args.mnist_lanes}
    jobs = [(preset, sim, mode) for preset in lanes for sim in sims for mode in MODES]
    results = []
    cosims: dict = {}
    work = args.out.parent / "cosim"
    for preset, sim, mode in tqdm(jobs, desc="co-simulation", unit="run"):
        if (preset, sim) not in cosims:
            artifact = load_artifact(args.build / preset / "quant")
            x = artifact.input_fmt.quantize(evaluation_set(load_dataset(preset))[0])
            design = core_design(artifact, lanes[preset])
            cosims[preset, sim] = (CoreCosim(artifact, sim, design=design), x)
        cosim, x = cosims[preset, sim]
        n = min(COSIM_IMAGES[preset][sim], len(x))
        run, _ = cosim.run(mode, x=x[:n], n=n, workdir=work / preset, quiet=True)
        drop_lists(run)
        results.append({"preset": preset, **run})
        if (run["mismatches"] or run["protocol_errors"] or not run["latency_agrees"]
                or not run.get("ii_agrees", True)):
            problems.append(f"co-simulation {preset} {sim} {mode}: {run['mismatches']} "
                            f"mismatches, {len(run['protocol_errors'])} protocol errors, "
                            f"latency agrees with the model: {run['latency_agrees']}, "
                            f"II agrees: {run.get('ii_agrees')}")
        tqdm.write(f"{preset} {sim} {mode}: {run['images']} images, {run['mismatches']} "
                   f"mismatches, {run['images_per_second']:.1f} img/s, "
                   f"{run['cycles_per_image']:.0f} cycles/image")
    by_key = {(r["preset"], r["sim"], r["mode"]): r for r in results}
    speed_rows, cycle_rows = [], []
    for preset in lanes:
        for mode in MODES:
            runs = [by_key[preset, sim, mode] for sim in sims if (preset, sim, mode) in by_key]
            if not runs:
                continue
            speeds = {r["sim"]: r["images_per_second"] for r in runs}
            measured = ", ".join(f"{sim} {speeds[sim]:,.1f} img/s" for sim in speeds)
            ratio = (f"verilator/icarus {speeds['verilator'] / speeds['icarus']:.1f}x"
                     if {"icarus", "verilator"} <= set(speeds) and speeds["icarus"] else "")
            speed_rows.append(("co-simulation", f"{preset} {mode}, lanes "
                               f"{_lanes_text(lanes[preset])}, "
                               f"{'/'.join(str(r['images']) for r in runs)} images",
                               measured, "", ratio))
            r = runs[0]
            cycle_rows.append((
                "II, latency", f"{preset} {mode}, lanes {_lanes_text(lanes[preset])} "
                f"(co-simulation, {r['sim']})",
                f"II {_grouped(r['ii_measured'])}, latency {_grouped(r['latency_measured'])}",
                f"estimate {_grouped(r['ii_model'])} / {_grouped(r['latency_model'])}",
                f"{r['ii_measured'] / r['ii_model']:.3f}"))
    rows += speed_rows + cycle_rows
    return results


def bench_plans(args, rows: list, problems: list) -> list[dict]:
    """The lane planner at several multiplier budgets (the ULX3S-85F's core options):
    II and latency in Amaranth's simulator against the estimate and the ideal."""
    from hw.boards import board
    from hw.core import VAECore
    from hw.estimate import estimate
    from hw.planner import plan_for_budget
    from model.artifact import load_artifact
    from sim.pysim import measure_mode

    art = load_artifact(args.build / "mnist/quant")
    ulx3s = board("ulx3s-85f")
    results = []
    for budget in tqdm(args.budgets, desc="lane plans (Amaranth simulation)", unit="budget"):
        plan = plan_for_budget(art, budget, **ulx3s.core_options())
        est = estimate(plan)
        core = VAECore(plan)
        for mode in args.plan_modes:
            start = time.perf_counter()
            errors, latency, gaps = measure_mode(core, mode, 3, seed=0)
            ii, ideal = gaps[-1], est.ideal_ii[mode]
            rate = PLAN_MHZ * 1e6 / ii
            r = {"budget": budget, "lanes": plan.lanes, "simd": plan.simd,
                 "multipliers": est.multipliers,
                 "mode": mode, "sim_ii": ii, "model_ii": est.ii[mode], "sim_latency": latency,
                 "model_latency": est.latency[mode], "ideal_ii": ideal,
                 "ii_over_ideal": ii / ideal, f"images_per_s_at_{PLAN_MHZ}mhz": rate,
                 "bit_exact": not errors, "sim_wall_s": round(time.perf_counter() - start, 1)}
            results.append(r)
            if errors or ii != r["model_ii"] or latency != r["model_latency"]:
                problems.append(f"plan for {budget} blocks, {mode}: bit-exact {not errors}, "
                                f"II {ii} (estimate {r['model_ii']}), latency {latency} "
                                f"(estimate {r['model_latency']})")
            if ii > IDEAL_GOAL * ideal:
                problems.append(f"plan for {budget} blocks, {mode}: II {ii} above "
                                f"{IDEAL_GOAL} x the ideal {ideal:.0f}")
            rows.append(("plan", f"mnist {mode}, budget {budget}: lanes {_lanes_text(plan.lanes)}"
                         f" x SIMD {_lanes_text(plan.simd)}, {est.multipliers} blocks", f"II {_grouped(ii)}, latency "
                         f"{_grouped(latency)} ({_grouped(rate)} img/s at {PLAN_MHZ} MHz)",
                         f"estimate {_grouped(r['model_ii'])} / {_grouped(r['model_latency'])};"
                         f" ideal {_grouped(ideal)}", f"{ii / ideal:.3f}"))
        if budget == ulx3s.multipliers:
            worst = min(r[f"images_per_s_at_{PLAN_MHZ}mhz"] for r in results[-len(args.plan_modes):])
            if worst < RATE_GOAL:
                problems.append(f"{budget} blocks: {worst:,.0f} images/s at {PLAN_MHZ} MHz, "
                                f"below {RATE_GOAL:,}")
    return results


def bench_boards(args, rows: list, notes: list) -> list[dict]:
    from model.benchmark import load_board_builds
    builds, board_notes = load_board_builds(args.build / "board")
    notes += board_notes
    for b in builds:
        name = f"{b['board']} ({b['preset']}, {b['device']})"
        rows.append(("board", f"{name}: Fmax", f"{b['fmax_mhz']:.1f} MHz",
                     f"target {b['target_mhz']:g} MHz", f"{b['fmax_mhz'] / b['target_mhz']:.2f}"))
        for resource, r in b["resources"].items():
            share = b["utilisation"][resource]
            rows.append(("board", f"{name}: {resource}", _grouped(r["used"]),
                         f"of {_grouped(r['available'])}",
                         "" if share is None else f"{100 * share:.0f} %"))
        for mode, rate in b["images_per_s_at_fmax"].items():
            rows.append(("board", f"{name}: {mode} at Fmax", f"{_grouped(rate)} img/s",
                         f"{_grouped(b['cycles_per_image'][mode])} cycles/image", ""))
    return builds


def main(argv=None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    start = time.perf_counter()
    rows: list[tuple] = []
    notes: list[str] = []
    problems: list[str] = []
    result: dict = {"sections": args.only}
    steps = {"throughput": lambda: bench_throughput(args, rows, problems),
             "cosim": lambda: bench_cosim(args, rows, notes, problems),
             "plans": lambda: bench_plans(args, rows, problems),
             "boards": lambda: bench_boards(args, rows, notes)}
    for number, section in enumerate(args.only, 1):
        print(f"[{number}/{len(args.only)}] {section}", flush=True)
        result[section] = steps[section]()
    result["notes"] = notes
    result["problems"] = problems
    result["table"] = [dict(zip(("section", "item", "measured", "against", "ratio"), row))
                       for row in rows]
    result["seconds"] = round(time.perf_counter() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")

    from model.tables import format_table
    print()
    print(format_table(("section", "item", "measured", "against", "ratio"), rows))
    for note in notes:
        print(f"note: {note}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"\n{args.out} in {result['seconds']:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
