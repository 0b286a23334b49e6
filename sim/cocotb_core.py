"""cocotb tests for ``VAECore`` (:mod:`hw.core`) against the golden model.

The ``cocotb_`` modules run inside the Verilog simulator (Icarus, Verilator)
and drive the generated Verilog; :mod:`sim.pysim` drives the Amaranth
components in Amaranth's own simulator.

Protocol under test (hw/core.py): a ``cmd`` word ``{mode}`` starts a job;
modes that take an image read ``input_dim`` words on ``i``; the job emits
words ``{data, last}`` on ``o`` until one with ``last``.  One job at a time:
the core holds ``cmd.ready`` and ``i.ready`` low when it cannot take them.

So the testbench runs three independent coroutines for a whole run: the
``cmd`` driver (N commands), the ``i`` driver (all N images' words
back to back) and the ``o`` monitor (N jobs, split at ``last``).  Back-to-back
images are the default, and the core's own flow control is what separates
the jobs.  Config (:mod:`sim.exchange`):

``mode`` (code), ``mode_name``, ``vectors`` (``x``: (N, input_dim) or absent,
``expected``: (N, words)), ``stall_in``/``stall_out``/``burst``/``seed``,
``progress_every``, ``rtl_out`` (``.npz`` path), ``registered`` (take the
one-wake-up-per-word path of :mod:`sim.streams`), ``latency`` (the analytic
model's cycles from the ``cmd`` transfer to the last ``o`` transfer, to
compare with), ``timeout_cycles``.

``reset_mid_image`` additionally aborts three jobs with a reset - during the
input, during the computation and during the output - checks the aborted
job's partial output, then runs ``expected`` (golden outputs from a fresh
sampler: reset restarts the LFSRs from their seeds) exactly.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from sim import exchange
from sim.scoreboard import Scoreboard
from sim.streams import Stalls, StreamDriver, StreamMonitor, bring_up, pulse_reset


class CoreBench:
    def __init__(self, dut, cfg: dict, ck):
        self.dut, self.cfg, self.ck = dut, cfg, ck
        streams = cfg["ports"]["streams"]
        seed = int(cfg.get("seed", 0))
        burst = int(cfg.get("burst", 1))
        stall_in = float(cfg.get("stall_in", 0.0))
        stall_out = float(cfg.get("stall_out", 0.0))
        timeout = cfg.get("timeout_cycles")
        # The core's boundary is registered (hw/core.py: cmd.ready = ~busy,
        # i.ready and o.valid/o.payload come from registers), so the driving
        # side may take the one-wake-up-per-word path.
        registered = bool(cfg.get("registered", False))
        self.cmd = StreamDriver(dut, streams["cmd"], ck, name="cmd",
                                stalls=Stalls(stall_in, burst, seed * 7919 + 11),
                                timeout_cycles=None, registered=registered)
        self.cmd.record = True
        self.inp = StreamDriver(dut, streams["i"], ck, name="i",
                                stalls=Stalls(stall_in, burst, seed * 7919 + 12),
                                timeout_cycles=None, registered=registered)
        self.out = StreamMonitor(dut, streams["o"], ck, name="o",
                                 stalls=Stalls(stall_out, burst, seed * 7919 + 13),
                                 timeout_cycles=timeout, registered=registered)
        self.data_of = self.out.payload_codec.field_getter("data")
        self.last_of = self.out.payload_codec.field_getter("last")
        self.cmd_word = self.cmd.payload_codec.pack({"mode": int(cfg["mode"])})
        self.takes_image = cfg["mode_name"] != "generate"

    def start_producers(self, x: np.ndarray | None, n_jobs: int):
        tasks = [cocotb.start_soon(self.cmd.send([self.cmd_word] * n_jobs, packed=True))]
        if self.takes_image:
            words = np.asarray(x[:n_jobs], dtype=np.int64).reshape(-1).tolist()
            tasks.append(cocotb.start_soon(self.inp.send(words)))
        return tasks

    async def receive_job(self, n_words: int, board: Scoreboard, index: int, row: int):
        """One job's words up to ``last``; returns the edge of the last word."""
        last_of = self.last_of
        words, edges = await self.out.receive(n_words + 16, until=lambda w: last_of(w) == 1)
        lasts = [last_of(w) for w in words]
        if not lasts or lasts[-1] != 1:
            board.protocol_error(f"job {index}: no `last` within {len(words)} words")
        elif len(words) != n_words:
            board.protocol_error(f"job {index}: `last` on word {len(words)}, expected {n_words}")
        board.check(index, [self.data_of(w) for w in words], row=row)
        return edges[-1] if edges else -1

    async def run_jobs(self, x, expected: np.ndarray, board: Scoreboard, *, label: str,
                       row0: int = 0) -> dict:
        n = len(expected)
        words_per_job = expected.shape[1]
        first_cmd = len(self.cmd.edges)
        producers = self.start_producers(x, n)
        every = int(self.cfg.get("progress_every", 0) or 0)
        last_edges = []
        start = time.perf_counter()
        for k in range(n):
            try:
                last_edges.append(await self.receive_job(words_per_job, board, row0 + k,
                                                         row0 + k))
            except AssertionError:
                self.dut._log.error(
                    f"cmd edges {self.cmd.edges[-4:]}, last edges {last_edges[-3:]}, now "
                    f"{self.ck.next_edge()}")
                self.dut._log.error(
                    f"{label}: stuck in job {k}: cmd sent {self.cmd.sent}, i sent "
                    f"{self.inp.sent}, o received {self.out.received}; cmd.ready "
                    f"{self.cmd.read_ready()}, i.ready {self.inp.read_ready()}, o.valid "
                    f"{self.out.read_valid()}")
                raise
            if every and ((k + 1) % every == 0 or k + 1 == n):
                rate = (k + 1) / max(time.perf_counter() - start, 1e-9)
                self.dut._log.info(f"{label}: {k + 1}/{n} images, {board.mismatched_items} "
                                   f"mismatches, {rate:.1f} images/s")
        seconds = time.perf_counter() - start
        for task in producers:
            await task
        cmd_edges = self.cmd.edges[first_cmd:first_cmd + n]
        cycles = [int(e - c) for c, e in zip(cmd_edges, last_edges)]
        span = (last_edges[-1] - cmd_edges[0] + 1) if n else 0
        return {"images": n, "seconds": seconds, "cycles": cycles,
                "throughput_cycles_per_image": span / n if n else 0.0}


def _summarise(cfg, board: Scoreboard, run: dict) -> dict:
    cycles = run["cycles"]
    out = {
        **board.summary(),
        "mode": cfg["mode_name"],
        "images": run["images"],
        "cycles": cycles,
        "cycles_per_image": float(np.mean(cycles)) if cycles else 0.0,
        "cycles_min": int(min(cycles)) if cycles else 0,
        "cycles_max": int(max(cycles)) if cycles else 0,
        "throughput_cycles_per_image": run["throughput_cycles_per_image"],
        "sim_seconds": run["seconds"],
        "images_per_second": run["images"] / run["seconds"] if run["seconds"] > 0 else 0.0,
    }
    latency = cfg.get("latency")
    if latency is not None and cycles:
        out["latency_model"] = int(latency)
        # Without stalls every job takes exactly the analytic model's cycles,
        # except that the first job after reset may wait for the sampler's
        # pipeline to prime (a few clocks in the sampling modes).
        out["first_image_cycles"] = int(cycles[0])
        out["latency_agrees"] = (all(c == int(latency) for c in cycles[1:])
                                 and cycles[0] >= int(latency))
    return out


def _finish(cfg, dut, board: Scoreboard, results: dict, rtl: np.ndarray) -> None:
    for line in board.reports + board.protocol_errors:
        dut._log.error(line)
    if cfg.get("rtl_out"):
        exchange.save_vectors(cfg["rtl_out"], rtl=rtl)
    exchange.write_results(cfg["results"], results)
    assert board.ok, (f"{board.mismatched_items} of {board.checked} images mismatch, "
                      f"{len(board.protocol_errors)} protocol errors")


async def _open_bench(dut):
    """Config, vectors, a bench on the reset DUT and an empty scoreboard for one test."""
    cfg = exchange.load_config()
    vectors = exchange.load_vectors(cfg["vectors"])
    bench = CoreBench(dut, cfg, await bring_up(dut, cfg))
    return cfg, vectors, bench, Scoreboard(vectors["expected"], name=cfg["mode_name"])


@cocotb.test()
async def run_images(dut):
    """N images of one mode, back to back, exact against the golden model."""
    cfg, vectors, bench, board = await _open_bench(dut)
    expected = vectors["expected"]
    run = await bench.run_jobs(vectors.get("x"), expected, board, label=cfg["mode_name"])
    results = _summarise(cfg, board, run)
    results["sent_cmd"] = bench.cmd.sent
    results["sent_words"] = bench.inp.sent
    results["received_words"] = bench.out.received
    want_words = int(expected.size)
    if bench.out.received != want_words:
        board.protocol_error(f"received {bench.out.received} words in all, expected {want_words}")
    if bench.takes_image and bench.inp.sent != len(expected) * vectors["x"].shape[1]:
        board.protocol_error(f"the core took {bench.inp.sent} input words, expected "
                             f"{len(expected) * vectors['x'].shape[1]}")
    results.update(board.summary())
    _finish(cfg, dut, board, results, board.rtl)


async def _abort(bench: CoreBench, x_row, where: str, n_words: int, board: Scoreboard,
                 compute_wait: int):
    """Start one job, reset during ``where`` (input | compute | output)."""
    dut, cfg, ck = bench.dut, bench.cfg, bench.ck
    tasks = [cocotb.start_soon(bench.cmd.send([bench.cmd_word], packed=True))]
    got = []
    if where == "input":
        if bench.takes_image:
            half = x_row[: max(1, len(x_row) // 2)].tolist()
            tasks.append(cocotb.start_soon(bench.inp.send(half)))
        await tasks[-1]
    elif where == "compute":
        if bench.takes_image:
            tasks.append(cocotb.start_soon(bench.inp.send(x_row.tolist())))
        for task in tasks:
            await task
        await ck.cycles(compute_wait)
    else:  # output: take about half of the job's words, then reset
        if bench.takes_image:
            tasks.append(cocotb.start_soon(bench.inp.send(x_row.tolist())))
        words, _ = await bench.out.receive(max(1, n_words // 2))
        got = [bench.data_of(w) for w in words]
        if any(bench.last_of(w) for w in words[:-1]) or (len(words) < n_words and
                                                          bench.last_of(words[-1])):
            board.protocol_error(f"aborted job ({where}): early `last`")
    for task in tasks:
        if not task.done():
            task.cancel()
    await pulse_reset(dut, cfg, ck, cycles=3)
    for port in (bench.cmd, bench.inp, bench.out):
        port.forget()
    dut._log.info(f"reset during {where}: done")
    return got


@cocotb.test()
async def reset_mid_image(dut):
    """Reset during input, computation and output of a job; then exact images."""
    cfg, vectors, bench, board = await _open_bench(dut)
    expected = vectors["expected"]
    x = vectors.get("x")
    words = expected.shape[1]
    x0 = x[0] if x is not None else np.zeros(0, dtype=np.int64)
    compute_wait = max(2, int(cfg.get("latency", 20)) // 3)
    aborted = {}
    for where in ("input", "compute", "output"):
        got = await _abort(bench, x0, where, words, board, compute_wait)
        if where == "output":
            # The job began right after a reset, so its words are image 0's
            # golden outputs (fresh sampler): check the prefix that came out.
            want = expected[0, :len(got)]
            aborted["output_prefix_words"] = len(got)
            aborted["output_prefix_exact"] = bool(np.array_equal(np.asarray(got), want))
            if not aborted["output_prefix_exact"]:
                board.protocol_error("aborted job's partial output differs from the golden prefix")
    run = await bench.run_jobs(x, expected, board, label=f"{cfg['mode_name']} after reset")
    results = _summarise(cfg, board, run)
    results["aborted"] = aborted
    _finish(cfg, dut, board, results, board.rtl)
