"""Generate the VAE core's Verilog (+ JSON description, optional $readmemh ROM files).

    fxvae verilog --artifact build/mnist/quant --lanes 16 --out build/mnist/rtl --hex
    fxvae verilog --artifact build/iris/quant --lanes 4,4,4,4 --out build/iris/rtl
    fxvae verilog --random mnist --lanes 16 --out build/rtl_random   # no training needed

``--lanes`` is one value for every layer or one per layer (encoder then
decoder order); the default is the preset's (:mod:`hw.presets`).
``--multipliers N`` or ``--target-ips RATE --freq MHZ`` plan them instead
(:mod:`hw.planner`).  The
Verilog is reproducible: Amaranth's bundled Yosys, no ``src`` attributes
unless ``--emit-src``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hw.cost import BLOCK_RAMS
from hw.mult import MULT_WIDTHS
from hw.planner import add_plan_arguments, plan_from_args
from hw.presets import DEFAULT_LANES, default_lanes


def main(argv=None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--artifact", type=Path, help="artifact directory (or its artifact.json)")
    src.add_argument("--random", metavar="PRESET", choices=list(DEFAULT_LANES),
                     help="a deterministic random artifact of a preset's shape instead")
    add_plan_arguments(parser)  # --lanes (default: the preset's), --multipliers, --target-ips
    parser.add_argument("--target", choices=sorted(MULT_WIDTHS), default="ecp5",
                        help="FPGA family whose multiplier blocks set the product split "
                             "(ecp5: 18x18, ice40: 16x16) and whose block RAMs the weight ROMs "
                             "are cut for (ecp5: DP16KD, ice40: SB_RAM40_4K); default ecp5")
    parser.add_argument("--serial-sigmoid", action="store_true",
                        help="run the sigmoid's Horner steps on one multiplier (fewer DSPs)")
    parser.add_argument("--serial-sampler", action="store_true",
                        help="run the Gaussian correction on one multiplier, with a draw buffer")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--name", help="Verilog module name (default fxvae_<preset>)")
    parser.add_argument("--hex", action="store_true", help="also write the ROMs as .hex files")
    parser.add_argument("--emit-src", action="store_true",
                        help="keep Amaranth src attributes (absolute paths: not reproducible)")
    args = parser.parse_args(argv)

    from model.artifact import ArtifactError, load_artifact
    from model.random_artifact import random_artifact
    from hw.verilog import write_core

    if args.artifact is not None:
        if not args.artifact.exists():
            parser.error(f"artifact path {args.artifact} does not exist "
                         "(train and quantize first, or use --random PRESET)")
        try:
            artifact = load_artifact(args.artifact)
        except ArtifactError as exc:
            parser.error(str(exc))
    else:
        artifact = random_artifact(args.random)
    try:
        options = {"mult_width": MULT_WIDTHS[args.target], "block_ram": BLOCK_RAMS[args.target],
                   "serial_sigmoid": args.serial_sigmoid, "serial_sampler": args.serial_sampler}
        plan = plan_from_args(args, artifact, default_lanes(artifact.preset), **options)
        paths = write_core(artifact, plan.lanes, args.out, name=args.name, hex_files=args.hex,
                           emit_src=args.emit_src, **options)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    desc = json.loads(paths["json"].read_text())
    est = desc["estimate"]
    print(f"{paths['verilog']}  ({paths['verilog'].stat().st_size / 1e6:.2f} MB)")
    print(f"{paths['json']}")
    if "hex" in paths:
        print(f"{paths['hex']}/  ({len(desc['hex']['roms'])} ROM files)")
    print(f"lanes {desc['lanes']}")
    print("II (clocks per image, jobs back to back) "
          + ", ".join(f"{m} {c}" for m, c in est["ii"].items()))
    print("latency (clocks, one job) " + ", ".join(f"{m} {c}" for m, c in est["latency"].items()))
    print(f"multiplier blocks {est['multipliers']} ({est['mult_width']}x{est['mult_width']})  "
          f"block-RAM bits {est['memory_bits']['block']}  registers {est['register_bits']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
