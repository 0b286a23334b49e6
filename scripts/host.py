"""Run data-set images through a board over its USB serial port and check every word.

    fxvae host --port /dev/ttyUSB1 --preset iris --mode all --images 30

Opens the port (8N1, --baud, default 3,000,000), asks the board for INFO and
checks it against the artifact (a wrong bitstream is an error naming the
field that differs), resets it, sends test-split images (quantized to the
artifact's input format; ``generate`` sends none), keeps the board's buffer
full, and compares every output word with the golden model (one sampler
carried across the jobs, so sampled modes are exact too).  Writes one PNG per
mode into --out (input beside the board's output; generated images; latent
codes) and prints "N images, M mismatches".  Exit status: 0 all exact, 1 any
mismatch, 2 an error (no port, wrong bitstream, timeout, ...).

Without a board, ``--sim icarus|verilator`` (instead of ``--port``) runs the
same session against the Verilog of ``hw.frontend.UartFrontend`` around the
artifact's core (``--board`` for exactly a board's lanes, serial units and
clock; else ``--lanes``, ``--clock-mhz``), the client talking to the
simulated pins (``sim/cocotb_uart.py``); rates are then in board time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from hw.boards import BOARDS
from hw.host import BoardClient, BoardSession, HostError, SerialTransport
from hw.plan import parse_lanes
from hw.presets import default_lanes, preset_lanes_help
from hw.protocol import DEFAULT_BAUD, ProtocolError
from model.artifact import ArtifactError, load_artifact
from model.data import DataError, load_dataset
from model.fixed import MODES
from model.plots import save, subplots
from sim.runner import SIMULATORS, SimulationFailed, SimulatorMissing, require_simulator
from sim.uart_cosim import run_session, uart_design

BUILD = Path("build")
#: Images drawn per figure at most.
FIGURE_IMAGES = 16


def parse_args(argv=None, prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--port", help="serial port of the board, e.g. /dev/ttyUSB1")
    target.add_argument("--sim", choices=SIMULATORS,
                        help="no board: run the frontend's Verilog in this simulator, this "
                             "client talking to its simulated pins")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", choices=("iris", "mnist"), help="use build/<preset>/quant")
    src.add_argument("--artifact", type=Path, help="quantized artifact directory")
    p.add_argument("--mode", default="recon_mu", choices=(*MODES, "all"))
    p.add_argument("--images", type=int, default=16, help="images per mode (default 16)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the PNGs (default build/<preset>/board)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD,
                   help=f"line rate the bitstream was built for (default {DEFAULT_BAUD:,})")
    p.add_argument("--timeout", type=float, default=1.0,
                   help="seconds to wait for the board's next byte (default 1)")
    p.add_argument("--lanes", type=parse_lanes, default=None,
                   help="--sim: MAC lanes of the simulated core, one or one per layer "
                        f"(default: the preset's, {preset_lanes_help()})")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="--sim: the simulated board's clock (sets the divisor; default 48, or "
                        "the board's)")
    p.add_argument("--board", choices=BOARDS,
                   help="--sim: simulate the core and frontend this board's bitstream holds "
                        "(its lanes, serial units and clock)")
    return p.parse_args(argv)


def load_inputs(artifact, n: int):
    """``n`` test-split images spread evenly over the split (it is ordered by class),
    as ints in the input format, with their labels."""
    data = load_dataset(artifact.preset)
    if data.input_dim != artifact.input_dim:
        raise DataError(f"the {artifact.preset} data set has {data.input_dim} features, the "
                        f"artifact takes {artifact.input_dim}")
    if n > len(data.x_test):
        raise DataError(f"the {artifact.preset} test split has {len(data.x_test)} images, "
                        f"--images asks for {n}")
    pick = np.linspace(0, len(data.x_test) - 1, n).round().astype(int)
    x = artifact.input_fmt.quantize(data.x_test[pick])
    return x, data.y_test[pick], data.feature_shape


def figure(artifact, mode: str, x, board, labels, feature_shape) -> Figure:
    """Input beside the board's output (reconstructions), the outputs (generate), or
    the latent means coloured by label (encode), in real units."""
    k = min(len(board), FIGURE_IMAGES)
    if mode == "encode":
        mu = artifact.mu_fmt.to_real(board[:, :artifact.latent_dim])
        fig, ax = subplots(figsize=(4.5, 4))
        y = mu[:, 1] if artifact.latent_dim > 1 else np.zeros(len(mu))
        for label in np.unique(labels):
            ax.scatter(mu[labels == label, 0], y[labels == label], s=14, label=str(label))
        ax.legend(title="label", fontsize=7)
        ax.set(xlabel="mu[0]", ylabel="mu[1]" if artifact.latent_dim > 1 else "",
               title=f"board: encode, {len(mu)} images")
        return fig
    out = artifact.sigmoid.out_fmt.to_real(board[:k])
    shown = [("board", out)] if mode == "generate" else [
        ("input", artifact.input_fmt.to_real(x[:k])), ("board", out)]
    if len(feature_shape) == 2:                    # images: rows of pictures
        fig, axes = subplots(len(shown), k, figsize=(0.9 * k, 1.0 * len(shown) + 0.3),
                                 squeeze=False)
        for row, (name, values) in enumerate(shown):
            for col in range(k):
                ax = axes[row, col]
                ax.imshow(values[col].reshape(feature_shape), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            axes[row, 0].set_ylabel(name)
    else:                                          # feature vectors: one plot each
        cols = min(k, 4)
        fig, axes = subplots(-(-k // cols), cols, figsize=(2.6 * cols, 1.9 * -(-k // cols)),
                                 squeeze=False, sharey=True)
        for n, ax in enumerate(axes.flat):
            if n >= k:
                ax.axis("off")
                continue
            for name, values in shown:
                ax.plot(values[n], marker="o", label=name)
            ax.set_xticks(range(artifact.input_dim))
        axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"board: {mode}")
    return fig


def prepare(args) -> dict:
    """The artifact, modes and inputs (checked before the port is opened)."""
    if args.images < 1:
        raise DataError(f"--images must be >= 1, not {args.images}")
    path = args.artifact if args.artifact else BUILD / args.preset / "quant"
    if not path.exists():
        raise ArtifactError(f"no artifact at {path}"
                            + (" (run `make quantize` first)" if args.preset else ""))
    artifact = load_artifact(path)
    modes = list(MODES) if args.mode == "all" else [args.mode]
    x, labels, feature_shape = load_inputs(artifact, 0 if modes == ["generate"] else args.images)
    return {"artifact": artifact, "path": path, "modes": modes, "x": x, "labels": labels,
            "feature_shape": feature_shape,
            "out_dir": args.out or BUILD / artifact.preset / "board"}


def report(job: dict, mode: str, board, mismatched, rate: str) -> None:
    png = save(figure(job["artifact"], mode, job["x"], board, job["labels"],
                      job["feature_shape"]), job["out_dir"] / f"{mode}.png")
    print(f"{mode}: {len(board)} images, {len(mismatched)} mismatches ({rate}) -> {png}")
    if mismatched:
        print(f"  mismatching images: {mismatched[:20]}")


def run(job: dict, transport, *, images: int, timeout: float) -> int:
    """Check the board on ``transport`` against the artifact; returns the exit status."""
    artifact, x = job["artifact"], job["x"]
    session = BoardSession(BoardClient(transport, timeout=timeout), artifact)
    info = session.open()
    print(f"board: protocol {info.version}, artifact {info.digest.hex()[:16]}, lanes "
          f"{','.join(map(str, info.lanes))}, {info.clk_hz / 1e6:g} MHz, {info.baud:,} baud, "
          f"{info.slots} frames buffered")
    total = bad = 0
    for mode in job["modes"]:
        start = time.perf_counter()
        result = (session.run(mode, n=images, progress=True) if mode == "generate"
                  else session.run(mode, x, progress=True))
        seconds = time.perf_counter() - start
        total += len(result.board)
        bad += len(result.mismatched_images)
        report(job, mode, result.board, result.mismatched_images,
               f"{len(result.board) / seconds:.0f} images/s; the link allows "
               f"{info.link_images_per_second(mode):.0f}")
    print(f"{total} images, {bad} mismatches")
    return 1 if bad else 0


def simulate(job: dict, args) -> int:
    """The same session against the frontend's Verilog in ``args.sim``."""
    require_simulator(args.sim)
    artifact = job["artifact"]
    board = BOARDS[args.board] if args.board else None
    lanes = args.lanes if args.lanes is not None else (
        board.lanes if board else default_lanes(artifact.preset))
    clock_mhz = args.clock_mhz or (board.clock_mhz if board else 48.0)
    options = board.core_options() if board else {}
    print(f"simulated board{f' {board.name}' if board else ''}: lanes {lanes}, "
          f"{clock_mhz:g} MHz, {args.baud:,} baud, {args.sim}")
    design = uart_design(artifact, lanes, clk_hz=round(clock_mhz * 1e6), baud=args.baud,
                         **options)
    start = time.perf_counter()
    results, outputs = run_session(design, args.sim, job["path"], job["x"], scenario="images",
                                   modes=job["modes"], images=args.images,
                                   timeout_s=args.timeout,
                                   workdir=job["out_dir"] / f"sim_{args.sim}")
    print(f"{args.sim}: built and simulated in {time.perf_counter() - start:.0f} s")
    for mode, row in results["modes"].items():
        report(job, mode, outputs[mode], row["mismatched"],
               f"{row['images'] / row['board_seconds']:.0f} images/s of board time, the link "
               f"allows {row['link_images_per_second']:.0f}; {row['seconds']:.1f} s simulated")
    print(f"{results['images']} images, {results['mismatches']} mismatches")
    return 1 if results["mismatches"] else 0


def main(argv=None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    try:
        if args.port and (args.board or args.lanes or args.clock_mhz):
            raise ValueError("--board, --lanes and --clock-mhz describe a simulated board "
                             "(--sim); a real one reports its own in INFO")
        job = prepare(args)
        if args.sim:
            return simulate(job, args)
        with SerialTransport(args.port, args.baud) as transport:
            return run(job, transport, images=args.images, timeout=args.timeout)
    except (HostError, ProtocolError, ArtifactError, DataError, SimulatorMissing,
            SimulationFailed, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
