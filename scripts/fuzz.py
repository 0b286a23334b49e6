"""Random-configuration fuzz: random cores, each exact against the golden model and on the model's cycles.

    fxvae fuzz --cores 200 --seed 1                      # Amaranth's simulator
    fxvae fuzz --cores 20 --seed 1 --sim verilator       # the Verilog, through cocotb
    fxvae fuzz --seed 1 --only 17                        # replay core 17 of that run
    fxvae fuzz --core-seed 2718281828 --sim icarus       # the same core, by its own seed

Core ``i`` of a run draws everything from its own seed, derived from
``(--seed, i)`` and printed with it: the shape (1-3 hidden layers, widths and
``input_dim`` 1..``--max-width``, latent 1..16), the formats (weights,
activations and inputs 4-16 bits; model.random_artifact's random weights),
the sigmoid and the sampler's correction, lanes per layer (1..n_out, now and
then above n_out, which the plan clamps), SIMD per layer (1 for half the
layers, else 2..min(n_in + 2, hw.planner.MAX_SIMD), clamped to n_in), the options (mult_width 9/16/18,
serial sigmoid, serial sampler, block RAM columns), a queue of 4-10 jobs of
mixed modes and the stall probabilities on ``cmd``, ``i`` and ``o``.

Checks per core:

* *exact*: the queue, under its stalls, word for word and ``last`` for
  ``last`` against the golden model (one sampler across the jobs):
  sim.pysim.run_core/job_errors in Amaranth's simulator, the cocotb test
  ``run_job_queue`` (sim.cosim.CoreCosim.run_jobs) in Icarus or Verilator;
* *latency*: when the queue ran without stalls, its first job's clocks from
  ``cmd`` to the last word equal hw.estimate's ``latency`` of its mode;
* *timing*: jobs of one mode (drawn) back to back without stalls: the first
  job's latency equals the model's, and the last two gaps between last words
  its ``ii`` (sim.pysim.measure_mode; a one-mode queue in the Verilog); twelve
  jobs, or as many as a serial sampler's buffer needs to drain
  (:func:`timing_run`).

One line per core while it runs, a summary table at the end, every core's
configuration and result in ``build/fuzz/<sim>.json``; exit status 1 if any
core fails, with the command that replays it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from model.fixed import MODES, SIGMOID_KINDS

SIMS = ("amaranth", "icarus", "verilator")
MULT_WIDTHS = (9, 16, 18)
#: block RAM column shapes drawn from (hw.cost.BLOCK_RAMS plus a tiny one that cuts
#: every ROM into many columns); None keeps whole words
BLOCK_RAM_CHOICES = (None, None, "ice40", "ecp5", "tiny")
CORRECTIONS = ("teichroew", "none")


def core_seed(seed: int, index: int) -> int:
    """Core ``index``'s own seed in the run seeded ``seed`` (independent of the other cores)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint32)[0])


@dataclass(frozen=True)
class FuzzConfig:
    """Everything one core of the fuzz is: drawn by :func:`draw_config` from its seed."""

    core_seed: int
    input_dim: int
    hidden: tuple[int, ...]
    latent: int
    act_fmt: tuple[int, int]      # (width, frac)
    w_fmt: tuple[int, int]
    input_fmt: tuple[int, int]
    sigmoid: str
    correction: str
    lanes: tuple[int, ...]        # one per layer, encoder then decoder, as requested
    simd: tuple[int, ...]         # inputs per lane and clock, one per layer, as requested
    mult_width: int
    serial_sigmoid: bool
    serial_sampler: bool
    block_ram: str | None
    modes: tuple[str, ...]        # the queue
    stall_cmd: float
    stall_in: float
    stall_out: float
    burst: int
    timing_mode: str
    artifact_seed: int

    @property
    def stall_free(self) -> bool:
        return self.stall_cmd == self.stall_in == self.stall_out == 0.0

    @property
    def shape(self) -> str:
        return "-".join(map(str, (self.input_dim, *self.hidden, self.latent)))

    def options(self) -> dict:
        """The knobs of :func:`hw.plan.core_plan` besides lanes."""
        from hw.cost import BLOCK_RAMS, BlockRam
        options = {"simd": list(self.simd), "mult_width": self.mult_width,
                   "serial_sigmoid": self.serial_sigmoid, "serial_sampler": self.serial_sampler}
        if self.block_ram == "tiny":
            options["block_ram"] = BlockRam("tiny", ((8, 8), (2, 32)))
        elif self.block_ram is not None:
            options["block_ram"] = BLOCK_RAMS[self.block_ram]
        return options

    def artifact(self):
        from model.fixed import Fmt
        from model.random_artifact import random_artifact
        return random_artifact(
            "fuzz", self.artifact_seed, shape=(self.input_dim, self.hidden, self.latent),
            act_fmt=Fmt(*self.act_fmt), w_fmt=Fmt(*self.w_fmt), input_fmt=Fmt(*self.input_fmt),
            sigmoid_kind=self.sigmoid, correction=self.correction)

    def describe(self) -> str:
        fmt = "/".join(f"{w}.{f}" for w, f in (self.act_fmt, self.w_fmt, self.input_fmt))
        opts = [f"m{self.mult_width}"]
        opts += ["ssig"] if self.serial_sigmoid else []
        opts += ["ssmp"] if self.serial_sampler else []
        opts += [f"bram:{self.block_ram}"] if self.block_ram else []
        opts += ["minimax"] if self.sigmoid == "minimax5" else []
        opts += ["nocorr"] if self.correction == "none" else []
        stalls = ("no stalls" if self.stall_free else
                  f"stall {self.stall_cmd:.2f}/{self.stall_in:.2f}/{self.stall_out:.2f}"
                  f"x{self.burst}")
        return (f"shape {self.shape} a/w/in {fmt} lanes {','.join(map(str, self.lanes))} "
                f"simd {','.join(map(str, self.simd))} "
                f"{'+'.join(opts)} jobs {len(self.modes)} {stalls} timing {self.timing_mode}")


def _draw_fmt(rng, low: int, high: int, frac_lo: int, frac_hi: int) -> tuple[int, int]:
    """A width in [low, high] and a fraction in [width - frac_hi, width - frac_lo] (>= 0)."""
    width = int(rng.integers(low, high + 1))
    frac = int(rng.integers(max(0, width - frac_hi), max(0, width - frac_lo) + 1))
    return width, frac


def draw_config(seed: int, *, max_width: int = 40) -> FuzzConfig:
    """The configuration core seed ``seed`` stands for (the same on every machine)."""
    rng = np.random.default_rng(seed)
    n_hidden = int(rng.integers(1, 4))
    input_dim = int(rng.integers(1, max_width + 1))
    hidden = tuple(int(v) for v in rng.integers(1, max_width + 1, n_hidden))
    latent = int(rng.integers(1, min(16, max_width) + 1))
    # activations keep 2..7 integer bits (sign included), weights 1..4, inputs
    # (reals in [0, 1]) 1..2: wide enough for values that matter, narrow enough to saturate
    act_fmt = _draw_fmt(rng, 4, 16, 2, 7)
    w_fmt = _draw_fmt(rng, 4, 16, 1, 4)
    input_fmt = _draw_fmt(rng, 4, 16, 1, 2)
    n_outs = [*hidden, 2 * latent, *hidden[::-1], input_dim]
    lanes = tuple(int(rng.integers(n + 1, n + 4)) if rng.random() < 0.15
                  else int(rng.integers(1, n + 1)) for n in n_outs)
    # half the layers take one input per lane and clock, the rest up to the planner's
    # widest (past n_in, which the plan clamps, now and then)
    n_ins = [input_dim, *hidden, latent, *hidden[::-1]]
    from hw.planner import MAX_SIMD
    simd = tuple(1 if rng.random() < 0.5 else int(rng.integers(2, min(n + 2, MAX_SIMD) + 1))
                 for n in n_ins)
    n_jobs = int(rng.integers(4, 11))
    modes = tuple(str(m) for m in rng.choice(MODES, n_jobs))
    if rng.random() < 1 / 3:
        stalls, burst = (0.0, 0.0, 0.0), 1
    else:
        stalls = tuple(round(float(rng.uniform(0.0, 0.6)), 2) for _ in range(3))
        burst = int(rng.integers(1, 6))
    return FuzzConfig(
        core_seed=seed, input_dim=input_dim, hidden=hidden, latent=latent,
        act_fmt=act_fmt, w_fmt=w_fmt, input_fmt=input_fmt,
        sigmoid=str(rng.choice(sorted(SIGMOID_KINDS))), correction=str(rng.choice(CORRECTIONS)),
        lanes=lanes, simd=simd, mult_width=int(rng.choice(MULT_WIDTHS)),
        serial_sigmoid=bool(rng.random() < 0.5), serial_sampler=bool(rng.random() < 0.5),
        block_ram=BLOCK_RAM_CHOICES[int(rng.integers(len(BLOCK_RAM_CHOICES)))],
        modes=modes, stall_cmd=stalls[0], stall_in=stalls[1], stall_out=stalls[2], burst=burst,
        timing_mode=str(rng.choice(MODES)), artifact_seed=int(rng.integers(2 ** 31)))


# --------------------------------------------------------------------------
# Running one core


#: jobs of the timing run: at least (three gaps), at most (else another mode)
#: (several stages of nearly one period take a few jobs to fall into step: seed
#: 2710596152's gaps are 32, 32, 31, 30, 30, 29, then the model's 28)
TIMING_JOBS = (12, 32)


def timing_run(plan, est, mode: str) -> tuple[str, int]:
    """The mode and the number of jobs of the timing run: enough for the steady state.

    A serial sampler's buffer, full after reset, lets the first jobs of a sampling
    mode leave faster than the model's II when the sampler is the slowest stage:
    each job takes ``L`` draws while the sampler makes ``(others' II) / sampler.ii``,
    so the buffer (and the draw in the output slice and the one in the making) is
    gone after ``(buffer + 2) / deficit`` jobs.  Where that is more than
    ``TIMING_JOBS[1]`` jobs, time ``recon_mu`` instead (no draws)."""
    least, most = TIMING_JOBS
    stages = est.stages[mode]
    sampler = stages.get("sampler", 0)
    others = max(v for k, v in stages.items() if k != "sampler")
    if not plan.sampler.buffer or sampler <= others:
        return mode, least
    n = math.ceil((plan.sampler.buffer + 2) * plan.sampler.ii / (sampler - others)) + least
    return (mode, n) if n <= most else ("recon_mu", least)


def _steady(gaps: list[int]) -> list[int]:
    """The gaps once the pipeline is full (and a serial sampler's buffer drained):
    the last two."""
    return gaps[-2:]


def _timing_problems(what: str, latency: int, gaps: list[int], est, mode: str) -> list[str]:
    problems = []
    if latency != est.latency[mode]:
        problems.append(f"{what}: {mode} latency {latency}, model {est.latency[mode]}")
    if gaps is not None and any(g != est.ii[mode] for g in _steady(gaps)):
        problems.append(f"{what}: {mode} gaps {gaps}, model ii {est.ii[mode]}")
    return problems


def _check_amaranth(cfg: FuzzConfig, artifact, plan, est) -> tuple[list, list, dict]:
    from hw.core import VAECore
    from sim.pysim import job_errors, measure_mode, random_jobs, run_core
    core = VAECore(plan)
    jobs = random_jobs(artifact, list(cfg.modes), seed=cfg.core_seed)
    outputs, timing = run_core(core, jobs, p_gap=cfg.stall_in, p_stall=cfg.stall_out,
                               p_cmd_gap=cfg.stall_cmd, seed=cfg.core_seed)
    errors = job_errors(artifact, jobs, outputs)
    problems = []
    if cfg.stall_free and len(timing) == len(jobs):
        problems += _timing_problems("queue", timing[0][1] - timing[0][0], None, est, cfg.modes[0])
    mode, n = timing_run(plan, est, cfg.timing_mode)
    t_errors, latency, gaps = measure_mode(core, mode, n, seed=cfg.core_seed)
    errors += [f"timing run: {e}" for e in t_errors]
    problems += _timing_problems("timing run", latency, gaps, est, mode)
    return errors, problems, {"timing_mode": mode, "latency": latency, "gaps": gaps}


def _check_cocotb(cfg: FuzzConfig, artifact, plan, est, sim: str, workdir: Path):
    from sim.cosim import CoreCosim
    from sim.designs import core_design
    from sim.pysim import random_jobs
    from sim.runner import SimulationFailed
    lanes, options = list(cfg.lanes), cfg.options()
    design = core_design(artifact, lanes, **options)
    cosim = CoreCosim(artifact, sim, lanes=lanes, design=design, options=options)
    errors, problems, info = [], [], {}
    jobs = random_jobs(artifact, list(cfg.modes), seed=cfg.core_seed)
    mode, n = timing_run(plan, est, cfg.timing_mode)
    runs = [("queue", jobs, {"stall_cmd": cfg.stall_cmd, "stall_in": cfg.stall_in,
                             "stall_out": cfg.stall_out, "burst": cfg.burst,
                             "settle": cfg.stall_free}),
            ("timing run", random_jobs(artifact, [mode] * n, seed=cfg.core_seed),
             {"settle": True})]
    for what, run_jobs, kwargs in runs:
        try:
            results, _ = cosim.run_jobs(run_jobs, workdir=workdir / what.split()[0],
                                        seed=cfg.core_seed % 100_000, quiet=True, **kwargs)
        except SimulationFailed as exc:
            lines = [ln.strip() for ln in str(exc).splitlines()
                     if "ERROR" in ln or "item" in ln or "failed" in ln]
            errors.append(f"{what}: " + " | ".join(lines[:6]))
            continue
        if what == "timing run" or cfg.stall_free:
            gaps = results["gaps"] if what == "timing run" else None
            problems += _timing_problems(what, results["latency_measured"], gaps, est,
                                         run_jobs[0][0])
            if what == "timing run":
                info = {"timing_mode": mode, "latency": results["latency_measured"],
                        "gaps": gaps}
    info["build_seconds"] = cosim.simulation.build_seconds
    return errors, problems, info


def run_core_check(index: int | None, seed: int, sim: str, max_width: int, out_dir: str) -> dict:
    """Build and check core seed ``seed``; a JSON-able record of its config and result."""
    from hw.estimate import estimate
    from hw.plan import core_plan
    start = time.perf_counter()
    cfg = draw_config(seed, max_width=max_width)
    record = {"index": index, "core_seed": seed, "config": asdict(cfg),
              "summary": cfg.describe()}
    errors, problems, info = [], [], {}
    try:
        artifact = cfg.artifact()
        plan = core_plan(artifact, list(cfg.lanes), **cfg.options())
        est = estimate(plan)
        record["built_lanes"] = list(plan.lanes)
        mode, _ = timing_run(plan, est, cfg.timing_mode)
        record["latency_model"] = est.latency[mode]
        record["ii_model"] = est.ii[mode]
        if sim == "amaranth":
            errors, problems, info = _check_amaranth(cfg, artifact, plan, est)
        else:
            workdir = Path(out_dir) / sim / f"core-{seed}"
            errors, problems, info = _check_cocotb(cfg, artifact, plan, est, sim, workdir)
    except Exception as exc:  # noqa: BLE001 - a crash is a finding, reported with the core
        errors.append(f"crash: {type(exc).__name__}: {exc}"[:2000])
    record.update(info)
    record["errors"] = [e[:2000] for e in errors]
    record["timing_problems"] = problems
    record["result"] = ("mismatch" if any(not e.startswith("crash") for e in errors) else
                        "crash" if errors else "timing" if problems else "ok")
    record["seconds"] = round(time.perf_counter() - start, 2)
    return record


# --------------------------------------------------------------------------
# Command line


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def parse_args(argv=None, prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--cores", type=_positive, default=20, help="random cores to check (default 20)")
    p.add_argument("--seed", type=_non_negative, default=1, help="seed of the run (default 1)")
    p.add_argument("--sim", choices=SIMS, default="amaranth",
                   help="Amaranth's simulator (default), or the Verilog in Icarus or Verilator")
    p.add_argument("--jobs", type=_positive, default=1,
                   help="cores checked side by side, one process each (default 1)")
    one = p.add_mutually_exclusive_group()
    one.add_argument("--only", type=_non_negative, default=None, metavar="I",
                     help="check only core I of the run (replay)")
    one.add_argument("--core-seed", type=_non_negative, default=None, metavar="X",
                     help="check only the core of seed X (as printed; --seed is ignored)")
    p.add_argument("--max-width", type=_positive, default=40,
                   help="largest input_dim and hidden width (default 40)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON of every core (default build/fuzz/<sim>.json)")
    args = p.parse_args(argv)
    if args.sim != "amaranth":
        from sim.runner import simulator_problem
        problem = simulator_problem(args.sim)
        if problem:
            p.error(f"cannot simulate with {args.sim}: {problem}")
    return args


def replay_command(args, record: dict) -> str:
    base = f"python -m scripts.fuzz --sim {args.sim}"
    if args.max_width != 40:
        base += f" --max-width {args.max_width}"
    if record["index"] is None:
        return f"{base} --core-seed {record['core_seed']}"
    return f"{base} --seed {args.seed} --only {record['index']}"


def _line(record: dict) -> str:
    index = "-" if record["index"] is None else record["index"]
    summary = record["summary"]
    if record.get("timing_mode", record["config"]["timing_mode"]) != record["config"]["timing_mode"]:
        summary += f" (timed {record['timing_mode']})"
    text = (f"core {index:>4} seed {record['core_seed']:>10}  {summary}  "
            f"{record['result'].upper()}  {record['seconds']:.1f} s")
    details = record["errors"] + record["timing_problems"]
    return text + "".join(f"\n    {d.splitlines()[0][:300]}" for d in details[:4])


def summary_table(records: list[dict]) -> str:
    """Cores, failures and seconds per (hidden layers, options) group, and in all."""
    from model.tables import format_table
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        c = r["config"]
        key = (len(c["hidden"]), c["mult_width"], "serial" if c["serial_sigmoid"] else "-",
               "serial" if c["serial_sampler"] else "-", c["block_ram"] or "-")
        groups.setdefault(key, []).append(r)
    rows = []
    for key in sorted(groups, key=str):
        rs = groups[key]
        rows.append((*key, len(rs), sum(r["result"] != "ok" for r in rs),
                     f"{sum(r['seconds'] for r in rs):.0f}"))
    rows.append(("all", "", "", "", "", len(records), sum(r["result"] != "ok" for r in records),
                 f"{sum(r['seconds'] for r in records):.0f}"))
    return format_table(("hidden", "mult", "sigmoid", "sampler", "block RAM", "cores",
                         "failed", "seconds"), rows, right=(5, 6, 7))


def main(argv=None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    out = args.out or Path("build") / "fuzz" / f"{args.sim}.json"
    if args.core_seed is not None:
        todo = [(None, args.core_seed)]
    elif args.only is not None:
        todo = [(args.only, core_seed(args.seed, args.only))]
    else:
        todo = [(i, core_seed(args.seed, i)) for i in range(args.cores)]
    print(f"fuzz: {len(todo)} core(s), seed {args.seed}, {args.sim}, {args.jobs} side by side",
          flush=True)
    start = time.perf_counter()
    work = [(i, s, args.sim, args.max_width, str(out.parent)) for i, s in todo]
    records = []
    if args.jobs == 1 or len(work) == 1:
        for item in work:
            records.append(run_core_check(*item))
            print(_line(records[-1]), flush=True)
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            for record in pool.map(run_core_check, *zip(*work)):
                records.append(record)
                print(_line(record), flush=True)
    wall = time.perf_counter() - start
    failed = [r for r in records if r["result"] != "ok"]
    print()
    print(summary_table(records))
    print(f"\n{len(records)} cores, {len(failed)} failed, {wall:.0f} s wall")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"seed": args.seed, "sim": args.sim, "cores": len(records),
                               "failed": len(failed), "wall_seconds": round(wall, 1),
                               "max_width": args.max_width, "records": records}, indent=1))
    print(f"wrote {out}")
    for r in failed:
        print(f"FAILED core {r['index']} (seed {r['core_seed']}, {r['result']}): "
              f"{replay_command(args, r)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
