"""Cycles per image of the VAE core: Amaranth simulation vs the analytic model vs the limit.

    fxvae bench-hw                        # MNIST artifact, lanes 4 8 16 32 64
    fxvae bench-hw --lanes 16 32 --mode recon_mu

For each lane count (the same for every layer) one image is simulated
cycle-accurately (input offered one word per clock, output always ready)
and checked bit-exact against the golden model; the job period (command
taken -> next command possible) is compared with ``hw.estimate`` and with the
physical limit ``sum(MACs / lanes)``.  Writes ``build/bench/hw.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hw.plan import parse_lanes


def main(argv=None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifact", type=Path, default=Path("build/mnist/quant"),
                        help="artifact directory (default build/mnist/quant; a random artifact "
                             "of the MNIST shape is used if it does not exist)")
    parser.add_argument("--lanes", type=parse_lanes, nargs="+", default=[4, 8, 16, 32, 64],
                        help="lane configurations: ints, or one per layer like 64,20,16,64")
    parser.add_argument("--mode", default="recon_sample",
                        choices=["recon_mu", "recon_sample", "generate", "encode"])
    parser.add_argument("--out", type=Path, default=Path("build/bench/hw.json"))
    args = parser.parse_args(argv)

    from hw.core import VAECore
    from hw.estimate import estimate
    from hw.plan import core_plan
    from model.artifact import load_artifact
    from model.random_artifact import random_artifact
    from model.report import format_table
    from sim.pysim import job_errors, random_jobs, run_core

    if (args.artifact / "artifact.json").exists() or args.artifact.is_file():
        art = load_artifact(args.artifact)
        source = str(args.artifact)
    else:
        art = random_artifact("mnist")
        source = "model.random_artifact('mnist') (trained artifact not found at " \
                 f"{args.artifact})"
    jobs = random_jobs(art, [args.mode], seed=0)

    rows = []
    for lanes in args.lanes:
        plan = core_plan(art, lanes)
        est = estimate(plan)
        t0 = time.time()
        outputs, timing = run_core(VAECore(plan), jobs)
        wall = time.time() - t0
        exact = not job_errors(art, jobs, outputs)
        cycles = timing[0][1] - timing[0][0] + 1
        ideal = est.ideal_cycles[args.mode]
        rows.append({
            "lanes": lanes, "mode": args.mode, "sim_cycles": cycles,
            "model_cycles": est.cycles[args.mode], "ideal_cycles": ideal,
            "sim_over_ideal": cycles / ideal, "sim_minus_model": cycles - est.cycles[args.mode],
            "bit_exact": exact, "macs": est.macs_per_image[args.mode],
            "multipliers": est.multipliers, "block_ram_bits": est.memory_bits["block"],
            "register_bits": est.register_bits,
            "model_cycles_all_modes": est.cycles, "sim_wall_s": round(wall, 1),
            "layers": [{"name": l.name, "lanes": l.lanes, "passes": l.passes,
                        "cycles": l.cycles, "ideal_cycles": l.ideal_cycles} for l in est.layers],
        })
        print(f"lanes {str(lanes):>3}: {cycles} cycles (model {est.cycles[args.mode]}, "
              f"ideal {ideal:.0f}), bit-exact {exact}, {wall:.0f} s", flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"artifact": source, "preset": art.preset, "mode": args.mode,
                                    "rows": rows}, indent=1) + "\n")
    print()
    head = ("lanes", "sim cycles", "model", "MACs/lanes", "sim/ideal", "exact", "mults",
            "BRAM kbit")
    print(format_table(head, [
        (r["lanes"], r["sim_cycles"], r["model_cycles"], f"{r['ideal_cycles']:.0f}",
         f"{r['sim_over_ideal']:.3f}", r["bit_exact"], r["multipliers"],
         f"{r['block_ram_bits'] / 1000:.1f}") for r in rows], right=range(len(head))))
    print(f"\n{args.out}  (artifact: {source})")
    return 0 if all(r["bit_exact"] and r["sim_minus_model"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
