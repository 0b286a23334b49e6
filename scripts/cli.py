"""``fxvae <command> [options]``: one console entry point for every script.

    fxvae train --preset mnist --out build/mnist
    fxvae verilog --artifact build/mnist/quant --out build/mnist/rtl --hex
    fxvae cosim --preset iris --sim both --mode all
    fxvae <command> --help

Without an installed console script: ``python -m scripts.cli <command> ...``
from the repository root (what the Makefile runs).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from pathlib import Path

__all__ = ["COMMANDS", "main"]

#: command -> module of :mod:`scripts` whose ``main(argv, prog)`` runs it.
COMMANDS = {
    "train": "scripts.train",
    "quantize": "scripts.quantize",
    "verilog": "scripts.gen_verilog",
    "cosim": "scripts.cosim",
    "fuzz": "scripts.fuzz",
    "figures": "scripts.figures",
    "compare": "scripts.compare",
    "bench-quant": "scripts.bench_quant",
    "bench": "scripts.bench",
    "host": "scripts.host",
    "bitstream": "scripts.build_board",
}


def _summary(module: str) -> str:
    """The first line of a module's docstring, read without importing it (torch is slow)."""
    source = Path(importlib.util.find_spec(module).origin).read_text()
    return ast.get_docstring(ast.parse(source)).splitlines()[0]


def _usage() -> str:
    lines = ["usage: fxvae <command> [options]   (fxvae <command> --help for its options)", "",
             "commands:"]
    lines += [f"  {command:<12} {_summary(module)}" for command, module in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, *rest = argv
    if command not in COMMANDS:
        print(f"fxvae: unknown command {command!r}; commands: {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS[command]).main(rest, prog=f"fxvae {command}")


if __name__ == "__main__":
    sys.exit(main())
