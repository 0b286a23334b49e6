"""cocotb tests for single stream blocks (sigmoid unit, sampler, any i->o map).

Like every ``cocotb_`` module this runs inside the Verilog simulator and
drives the generated Verilog (:mod:`sim.pysim` is the Amaranth-simulator side).

Run through :class:`sim.runner.Simulation`; everything comes from the JSON
config (:mod:`sim.exchange`):

``phases``: a list of ``{"inputs": key | null, "expected": key,
"field": name | null, "reset_before": bool, "reset_after_outputs": k | null}``
over the arrays of ``vectors`` (an ``.npz``).  Each phase drives
``inputs`` (if any) on stream ``in_stream`` while collecting
``len(expected)`` words from ``out_stream`` and compares them exactly
(``field`` picks a struct payload field).  ``reset_after_outputs = k``
collects only the first k words, then pulses reset in the middle of the
traffic (the driver is cancelled with words still in flight).
``stall_in``/``stall_out``/``burst``/``seed`` set the random gaps;
``registered_in``/``registered_out`` select the one-wake-up-per-word paths
of :mod:`sim.streams` (only where the block's ``ready``/``valid`` are registers).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from sim import exchange
from sim.scoreboard import Scoreboard
from sim.streams import (Stalls, StreamDriver, StreamMonitor, bring_up, pulse_reset)


def _stalls(cfg, key, salt):
    return Stalls(cfg.get(key, 0.0), cfg.get("burst", 1), seed=cfg.get("seed", 0) * 7919 + salt)


@cocotb.test()
async def stream_map(dut):
    cfg = exchange.load_config()
    vectors = exchange.load_vectors(cfg["vectors"])
    ck = await bring_up(dut, cfg)
    streams = cfg["ports"]["streams"]
    timeout = cfg.get("timeout_cycles", 100_000)
    driver = None
    if cfg.get("in_stream"):
        driver = StreamDriver(dut, streams[cfg["in_stream"]], ck, name=cfg["in_stream"],
                              stalls=_stalls(cfg, "stall_in", 1), timeout_cycles=timeout,
                              registered=bool(cfg.get("registered_in", False)))
    monitor = StreamMonitor(dut, streams[cfg["out_stream"]], ck, name=cfg["out_stream"],
                            stalls=_stalls(cfg, "stall_out", 2), timeout_cycles=timeout,
                            registered=bool(cfg.get("registered_out", False)))
    results = {"phases": [], "mismatches": 0, "mismatched_words": 0, "words": 0,
               "protocol_errors": []}
    rtl = {}
    start = time.perf_counter()
    for number, phase in enumerate(cfg["phases"]):
        if phase.get("reset_before"):
            await pulse_reset(dut, cfg, ck)
            monitor.forget()
            if driver is not None:
                driver.forget()
        expected = vectors[phase["expected"]].reshape(-1)
        count = len(expected)
        if phase.get("reset_after_outputs") is not None:
            count = int(phase["reset_after_outputs"])
        send = None
        first_edge = ck.next_edge()
        if phase.get("inputs") is not None:
            if driver is None:
                raise ValueError("a phase with inputs needs in_stream")
            send = cocotb.start_soon(driver.send(vectors[phase["inputs"]].reshape(-1)))
        words, edges = await monitor.receive(count)
        if phase.get("reset_after_outputs") is not None:
            if send is not None and not send.done():
                send.cancel()
            await pulse_reset(dut, cfg, ck)
            monitor.forget()
            if driver is not None:
                driver.forget()
        elif send is not None:
            await send
        codec = monitor.payload_codec
        field = phase.get("field")
        values = [codec.field(w, field) if field else codec.unpack(w) for w in words]
        board = Scoreboard(expected[:count].reshape(1, -1), name=f"phase{number}")
        board.check(0, values)
        rtl[f"phase{number}"] = np.asarray(values, dtype=np.int64)
        summary = board.summary()
        cycles = (edges[-1] - first_edge + 1) if edges else 0
        results["phases"].append({"words": count, "cycles": cycles, **summary})
        results["mismatched_words"] += summary["mismatched_words"]
        results["mismatches"] += summary["mismatches"]
        results["protocol_errors"] += summary["protocol_errors"]
        results["words"] += count
        for line in summary["reports"] + summary["protocol_errors"]:
            dut._log.error(line)
        dut._log.info(f"phase {number}: {count} words, {cycles} cycles, "
                      f"{summary['mismatched_words']} mismatched words")
    results["seconds"] = time.perf_counter() - start
    results["sent"] = driver.sent if driver else 0
    results["received"] = monitor.received
    if cfg.get("rtl_out"):
        exchange.save_vectors(cfg["rtl_out"], **rtl)
    exchange.write_results(cfg["results"], results)
    assert results["mismatched_words"] == 0 and not results["protocol_errors"], \
        f"{results['mismatched_words']} mismatched words, {len(results['protocol_errors'])} protocol errors"
