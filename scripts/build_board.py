"""Build a bitstream for an FPGA board with the open toolchain (YoWASP Yosys + nextpnr).

    fxvae bitstream --board icebreaker                 # IRIS on the iCE40UP5K
    fxvae bitstream --board ulx3s-85f --freq 120       # MNIST on the ECP5-85F
    fxvae bitstream --board ulx3s-85f --artifact DIR --lanes 64,12,8,56

Writes OUT/top.bin (iCE40) or OUT/top.bit (ECP5), the tools' logs, and
OUT/synth.json: resources used/available, post-route Fmax, Yosys's
multiplier blocks, flip-flops and block-RAM bits beside the analytic
estimate, cycles and images per second at Fmax and through the UART.
Program the board with `iceprog OUT/top.bin` or
`openFPGALoader -b ulx3s OUT/top.bit`, then talk to it with `fxvae host`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hw.bitstream import BuildError, build_bitstream
from hw.boards import BOARDS, board as lookup_board
from hw.planner import add_plan_arguments, plan_from_args
from hw.protocol import DEFAULT_BAUD
from model.artifact import ArtifactError, load_artifact
from model.tables import format_table


def main(argv=None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--board", required=True,
                        help=f"the board: {', '.join(f'{b.name} ({b.device})' for b in BOARDS.values())}")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--preset", help="use build/<preset>/quant (default: the board's preset)")
    src.add_argument("--artifact", type=Path, help="quantized artifact directory")
    add_plan_arguments(parser, freq=False)  # --lanes (default: the board's), --multipliers,
    #                                          --target-ips (at --freq)
    parser.add_argument("--freq", type=float, default=None,
                        help="sync clock in MHz (default: the board's; a multiple of 3 MHz "
                             "keeps the 3 Mbaud UART exact)")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    parser.add_argument("--out", type=Path, default=None,
                        help="build folder (default build/board/<board>)")
    args = parser.parse_args(argv)

    try:
        board = lookup_board(args.board)
        preset = args.preset or board.preset
        path = args.artifact or Path("build") / preset / "quant"
        if not path.exists():
            raise ArtifactError(f"no artifact at {path} (`make quantize` trains and quantizes "
                                "the presets)")
        artifact = load_artifact(path)
        plan = plan_from_args(args, artifact, board.lanes, mhz=args.freq or board.clock_mhz,
                              **board.core_options())
        summary = build_bitstream(board, artifact, args.out or Path("build/board") / board.name,
                                  lanes=plan.lanes, simd=plan.simd, clock_mhz=args.freq,
                                  baud=args.baud,
                                  seed=args.seed)
    except (BuildError, ArtifactError, ValueError) as exc:
        print(f"bitstream: {exc}", file=sys.stderr)
        return 2

    rows = [(name, r["used"], r["available"], f"{100 * r['used'] / r['available']:.0f} %")
            for name, r in summary["resources"].items()]
    print()
    print(format_table(("resource", "used", "available", "share"), rows, right=(1, 2, 3)))
    est, yos, ratio = summary["estimate"], summary["yosys"], summary["estimate_over_yosys"]
    print()
    print(format_table(("figure", "estimate", "Yosys", "estimate / Yosys"),
                       [(k, est[k], yos[k], "" if ratio[k] is None else f"{ratio[k]:.3f}")
                        for k in est], right=(1, 2, 3)))
    print()
    print(format_table(
        ("mode", "cycles/image", "images/s at Fmax", "images/s through the UART"),
        [(m, c, f"{summary['images_per_s_at_fmax'][m]:,.0f}",
          f"{summary['uart']['images_per_s'][m]:,.0f}")
         for m, c in summary["cycles_per_image"].items()], right=(1, 2, 3)))
    print(f"\nFmax {summary['fmax_mhz']:.1f} MHz (clock {summary['target_mhz']:g} MHz); "
          f"built in {summary['build_seconds']:.0f} s; {summary['bitstream']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
