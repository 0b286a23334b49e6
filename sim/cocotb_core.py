"""cocotb tests for ``VAECore`` (:mod:`hw.core`) against the golden model.

The ``cocotb_`` modules run inside the Verilog simulator (Icarus, Verilator)
and drive the generated Verilog; :mod:`sim.pysim` drives the Amaranth
components in Amaranth's own simulator.

Protocol under test (hw/core.py): a ``cmd`` word ``{mode}`` starts a job;
modes that take an image read ``input_dim`` words on ``i``; the job emits
words ``{data, last}`` on ``o`` until one with ``last``.  The core takes the
next ``cmd`` while earlier jobs are still in flight (images pipelined through
the layers); outputs leave in job order; it holds ``cmd.ready`` and
``i.ready`` low when it cannot take them.

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
compare with), ``ii`` (its clocks between jobs' last words), ``timeout_cycles``.

``reset_mid_image`` additionally aborts three jobs with a reset - during the
input, during the computation and during the output - checks the aborted
job's partial output, then runs ``expected`` (golden outputs from a fresh
sampler: reset restarts the LFSRs from their seeds) exactly.

``run_job_queue`` runs a queue of jobs of mixed modes: ``modes`` (a code per
job) instead of ``mode``; ``x`` holds the images of the jobs that take one,
in order; ``expected`` is ragged, padded with :data:`sim.scoreboard.MISSING`
to the longest job, with ``lengths`` (words per job: ``2L`` for ``encode``,
``input_dim`` otherwise); ``latency_by_mode``/``ii_by_mode`` the analytic
model's figures (the first job's latency is compared, and the II when every
job has one mode); ``settle_cycles`` idles that long after reset first (the
sampler primes, so the first job takes exactly the model's latency);
``stall_cmd`` (default ``stall_in``) the ``cmd`` stalls.  ``reset_in_flight``
first starts the jobs ``abort_modes`` (images ``abort_x``, golden words
``abort_expected``/``abort_lengths``), idles ``abort_wait`` cycles so that
several images are in flight in different layers, takes ``abort_take`` of
their output words (checked against the golden prefix), pulses reset, and then
runs the queue exactly (golden outputs from a fresh sampler).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from model.fixed import MODES, SAMPLING_MODES
from sim import exchange
from sim.scoreboard import MISSING, Scoreboard
from sim.streams import Stalls, StreamDriver, StreamMonitor, bring_up, pulse_reset

#: The ``cmd`` code of the one mode that takes no image.
GENERATE = MODES.index("generate")


class CoreBench:
    def __init__(self, dut, cfg: dict, ck):
        self.dut, self.cfg, self.ck = dut, cfg, ck
        streams = cfg["ports"]["streams"]
        seed = int(cfg.get("seed", 0))
        burst = int(cfg.get("burst", 1))
        stall_in = float(cfg.get("stall_in", 0.0))
        stall_out = float(cfg.get("stall_out", 0.0))
        stall_cmd = float(cfg.get("stall_cmd", stall_in))
        timeout = cfg.get("timeout_cycles")
        # The core's boundary is registered (hw/core.py: cmd.ready = ~busy,
        # i.ready and o.valid/o.payload come from registers), so the driving
        # side may take the one-wake-up-per-word path.
        registered = bool(cfg.get("registered", False))
        self.cmd = StreamDriver(dut, streams["cmd"], ck, name="cmd",
                                stalls=Stalls(stall_cmd, burst, seed * 7919 + 11),
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
        self.mode_words = [self.cmd.payload_codec.pack({"mode": code})
                           for code in range(len(MODES))]
        if "mode" in cfg:  # the single-mode tests
            self.cmd_word = self.mode_words[int(cfg["mode"])]
            self.takes_image = int(cfg["mode"]) != GENERATE

    def start_producers(self, x: np.ndarray | None, modes):
        """One coroutine sends the ``cmd`` words of ``modes`` (codes), another the
        images (rows of ``x``, in order) of the jobs that take one."""
        tasks = [cocotb.start_soon(self.cmd.send([self.mode_words[m] for m in modes],
                                                 packed=True))]
        n_images = sum(1 for m in modes if m != GENERATE)
        if n_images:
            words = np.asarray(x[:n_images], dtype=np.int64).reshape(-1).tolist()
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
        data = [self.data_of(w) for w in words]
        # ragged jobs: the expected row is padded with MISSING beyond n_words
        data += [MISSING] * (board.expected.shape[1] - len(data))
        board.check(index, data, row=row)
        return edges[-1] if edges else -1

    async def run_jobs(self, x, expected: np.ndarray, board: Scoreboard, *, label: str,
                       row0: int = 0, modes=None, lengths=None) -> dict:
        """Jobs ``row0...`` of ``expected`` back to back: ``modes`` (codes; default
        the config's ``mode`` for every job), ``lengths`` (words per job; default
        ``expected``'s width)."""
        n = len(expected)
        modes = [int(self.cfg["mode"])] * n if modes is None else [int(m) for m in modes]
        lengths = [expected.shape[1]] * n if lengths is None else [int(w) for w in lengths]
        first_cmd = len(self.cmd.edges)
        producers = self.start_producers(x, modes)
        every = int(self.cfg.get("progress_every", 0) or 0)
        last_edges = []
        start = time.perf_counter()
        for k in range(n):
            try:
                last_edges.append(await self.receive_job(lengths[k], board, row0 + k,
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
        gaps = [int(b - a) for a, b in zip(last_edges, last_edges[1:])]
        span = (last_edges[-1] - cmd_edges[0] + 1) if n else 0
        return {"images": n, "seconds": seconds, "cycles": cycles, "gaps": gaps,
                "cycles_per_image": span / n if n else 0.0}


def _summarise(board: Scoreboard, run: dict, *, mode: str, latency=None, ii=None,
               settled: bool = False) -> dict:
    """Results of one run: the scoreboard's, the cycles, and -- given the model's
    ``latency`` of the first job's mode and the ``ii`` of a one-mode run -- whether
    the measured ones agree (``settled``: the sampler was primed before the first
    command)."""
    cycles, gaps = run["cycles"], run["gaps"]
    out = {
        **board.summary(),
        "mode": mode,
        "images": run["images"],
        "cycles": cycles,
        "gaps": gaps,
        "cycles_per_image": run["cycles_per_image"],
        "sim_seconds": run["seconds"],
        "images_per_second": run["images"] / run["seconds"] if run["seconds"] > 0 else 0.0,
    }
    if latency is not None and cycles:
        # Without stalls the first job (into an idle core) takes exactly the model's
        # latency, unless it waits for the sampler to prime (sampling modes, right
        # after reset); later jobs queue behind it, so their cmd-to-last counts grow
        out["latency_model"] = int(latency)
        out["latency_measured"] = int(cycles[0])
        out["latency_agrees"] = (cycles[0] == int(latency) or
                                 (not settled and mode in SAMPLING_MODES
                                  and cycles[0] > int(latency)))
    if ii is not None and gaps:
        # once the pipeline is full, consecutive jobs leave exactly II clocks apart
        steady = gaps[len(gaps) // 2:]
        out["ii_model"] = int(ii)
        out["ii_measured"] = int(steady[-1])
        out["ii_agrees"] = all(g == int(ii) for g in steady)
    return out


def _count_words(bench: "CoreBench", board: Scoreboard, results: dict, *, since=(0, 0, 0),
                 cmds: int, in_words: int, out_words: int) -> None:
    """The words that moved on each port (since the counts ``since`` = (cmd, i, o)),
    into ``results``; a protocol error where they differ from what the jobs need."""
    sent_cmd = bench.cmd.sent - since[0]
    sent_words = bench.inp.sent - since[1]
    received = bench.out.received - since[2]
    results.update({"sent_cmd": sent_cmd, "sent_words": sent_words, "received_words": received})
    if received != out_words:
        board.protocol_error(f"received {received} words in all, expected {out_words}")
    if sent_words != in_words:
        board.protocol_error(f"the core took {sent_words} input words, expected {in_words}")
    if sent_cmd != cmds:
        board.protocol_error(f"the core took {sent_cmd} commands, expected {cmds}")


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
    return cfg, vectors, bench, Scoreboard(vectors["expected"],
                                           name=cfg.get("mode_name", "queue"))


@cocotb.test()
async def run_images(dut):
    """N images of one mode, back to back, exact against the golden model."""
    cfg, vectors, bench, board = await _open_bench(dut)
    expected = vectors["expected"]
    run = await bench.run_jobs(vectors.get("x"), expected, board, label=cfg["mode_name"])
    results = _summarise(board, run, mode=cfg["mode_name"], latency=cfg.get("latency"),
                         ii=cfg.get("ii"))
    _count_words(bench, board, results, cmds=len(expected), out_words=int(expected.size),
                 in_words=len(expected) * vectors["x"].shape[1] if bench.takes_image else 0)
    results.update(board.summary())
    _finish(cfg, dut, board, results, board.rtl)


async def _reset(bench: "CoreBench") -> None:
    """Reset the core (from a falling edge), every port idle; the drivers and the
    monitor forget what they last wrote."""
    await pulse_reset(bench.dut, bench.cfg, bench.ck, cycles=3)
    for port in (bench.cmd, bench.inp, bench.out):
        port.forget()


def _cancel(tasks) -> None:
    for task in tasks:
        if not task.done():
            task.cancel()


async def _abort(bench: CoreBench, x_row, where: str, n_words: int, board: Scoreboard,
                 compute_wait: int):
    """Start one job, reset during ``where`` (input | compute | output)."""
    dut, ck = bench.dut, bench.ck
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
    _cancel(tasks)
    await _reset(bench)
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
    results = _summarise(board, run, mode=cfg["mode_name"], latency=cfg.get("latency"),
                         ii=cfg.get("ii"))
    results["aborted"] = aborted
    _finish(cfg, dut, board, results, board.rtl)


def _queue_words(expected: np.ndarray, lengths) -> tuple[list[int], list[int]]:
    """A ragged queue's golden words one after the other, and the ``last`` flag of each."""
    data, lasts = [], []
    for row, n in zip(expected, lengths):
        data += [int(v) for v in row[:int(n)]]
        lasts += [0] * (int(n) - 1) + [1]
    return data, lasts


async def _run_queue(cfg, vectors, bench: CoreBench, board: Scoreboard, *, label: str,
                     settled: bool = False) -> dict:
    """The config's queue (``modes``) through the core, every word and ``last`` checked."""
    modes = [int(m) for m in cfg["modes"]]
    names = [MODES[m] for m in modes]
    lengths = vectors["lengths"]
    since = (bench.cmd.sent, bench.inp.sent, bench.out.received)
    x = vectors.get("x")
    run = await bench.run_jobs(x, vectors["expected"], board, label=label, modes=modes,
                               lengths=lengths)
    one_mode = len(set(names)) == 1
    results = _summarise(board, run, mode=names[0] if one_mode else "mixed",
                         latency=cfg["latency_by_mode"][names[0]],
                         ii=cfg["ii_by_mode"][names[0]] if one_mode else None, settled=settled)
    results["modes"] = names
    results["lengths"] = [int(n) for n in lengths]
    _count_words(bench, board, results, since=since, cmds=len(modes),
                 out_words=int(np.sum(lengths)),
                 in_words=0 if x is None else sum(m != GENERATE for m in modes) * x.shape[1])
    return results


@cocotb.test()
async def run_job_queue(dut):
    """A queue of jobs of mixed modes back to back (several images in flight), under
    the config's stalls: every word and every ``last`` exact against the golden model."""
    cfg, vectors, bench, board = await _open_bench(dut)
    settle = int(cfg.get("settle_cycles", 0))
    await bench.ck.cycles(settle)
    results = await _run_queue(cfg, vectors, bench, board, label="queue", settled=settle > 0)
    results.update(board.summary())
    _finish(cfg, dut, board, results, board.rtl)


@cocotb.test()
async def reset_in_flight(dut):
    """Start the jobs ``abort_modes`` (several images in flight), wait ``abort_wait``
    cycles, take ``abort_take`` of their words (exact golden prefix), reset; then the
    queue ``modes`` exact against golden outputs from a fresh sampler."""
    cfg, vectors, bench, board = await _open_bench(dut)
    abort_modes = [int(m) for m in cfg["abort_modes"]]
    want_data, want_lasts = _queue_words(vectors["abort_expected"], vectors["abort_lengths"])
    take = min(int(cfg.get("abort_take", 0)), len(want_data))
    tasks = bench.start_producers(vectors.get("abort_x"), abort_modes)
    await bench.ck.cycles(int(cfg.get("abort_wait", 0)))
    got_data, got_lasts = [], []
    if take:
        words, _ = await bench.out.receive(take)
        got_data = [bench.data_of(w) for w in words]
        got_lasts = [bench.last_of(w) for w in words]
    aborted = {"jobs": len(abort_modes), "cmd_taken": bench.cmd.sent,
               "input_words_taken": bench.inp.sent, "output_words_taken": len(got_data),
               "jobs_finished": sum(got_lasts),
               "prefix_exact": got_data == want_data[:take] and got_lasts == want_lasts[:take]}
    if not aborted["prefix_exact"]:
        board.protocol_error(f"in-flight jobs' first {take} words differ from the golden "
                             f"prefix: rtl {list(zip(got_data, got_lasts))[:12]}..., golden "
                             f"{list(zip(want_data, want_lasts))[:12]}...")
    _cancel(tasks)
    await _reset(bench)
    dut._log.info(f"reset with jobs in flight: {aborted}")
    results = await _run_queue(cfg, vectors, bench, board, label="queue after reset")
    results["aborted"] = aborted
    results.update(board.summary())
    _finish(cfg, dut, board, results, board.rtl)
