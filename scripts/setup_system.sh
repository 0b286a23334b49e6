#!/usr/bin/env bash
# Install the system simulator (Icarus Verilog) when it is missing; print the
# exact command when we lack the rights to do it ourselves.
set -euo pipefail
if command -v iverilog >/dev/null 2>&1; then
    exit 0
fi
cmd="apt-get update && apt-get install -y iverilog"
if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Icarus Verilog: $cmd"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "setup: installing Icarus Verilog: sudo $cmd"
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog
else
    echo "setup: Icarus Verilog (iverilog) is missing and this user cannot install it." >&2
    echo "setup: run as root:  $cmd" >&2
    exit 1
fi
