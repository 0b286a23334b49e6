"""The one place that maps an Amaranth component's ports to Verilog names.

Amaranth's ``back.verilog.convert`` names every leaf of a component's
signature by joining its path with ``"__"`` (``amaranth/back/verilog.py``):
a stream ``i`` becomes ``i__payload``, ``i__valid``, ``i__ready``.  A
structured payload (``data.StructLayout``) is *one* packed vector port,
``o__payload``, whose fields sit at the layout's bit offsets (the
``o__payload.data`` wires in the Verilog are internal and may be optimised
away by Verilator, so the testbench never relies on them).  The clock and
reset of the ``sync`` domain are ``clk`` and ``rst``.

:func:`port_map` turns a component into a JSON-serialisable description
(the cocotb side reads it from the run's config and never imports Amaranth);
:func:`check_ports` asserts that every name in it is a port of the emitted
Verilog module, so a naming change in Amaranth fails loudly here.
"""

from __future__ import annotations

import re

from amaranth.hdl import Shape, ShapeCastable
from amaranth.lib import data, stream, wiring

__all__ = ["CLOCK", "RESET", "port_name", "describe_shape", "port_map", "verilog_ports",
           "check_ports"]

#: Names of the ``sync`` domain's clock and reset ports in Amaranth's Verilog.
CLOCK = "clk"
RESET = "rst"


def port_name(path) -> str:
    """Verilog port name of a signature path, exactly as ``amaranth.back.verilog`` makes it."""
    return "__".join(str(item) for item in path)


def describe_shape(shape) -> dict:
    """``{"width", "signed", "fields"}``; ``fields`` maps dotted names of a struct's
    leaves to ``{"offset", "width", "signed"}`` (``None`` for a plain shape)."""
    if isinstance(shape, data.Layout):
        layout = shape
    elif isinstance(shape, ShapeCastable):
        try:
            layout = data.Layout.cast(shape)
        except TypeError:
            layout = None
    else:
        layout = None
    if layout is None:
        plain = Shape.cast(shape)
        return {"width": plain.width, "signed": plain.signed, "fields": None}
    if not isinstance(layout, data.StructLayout):
        raise TypeError(f"only struct payloads are supported, not {layout!r}")
    fields: dict[str, dict] = {}

    def walk(lay, prefix, base):
        for name, field in lay:
            sub = field.shape
            if isinstance(sub, data.StructLayout):
                walk(sub, f"{prefix}{name}.", base + field.offset)
                continue
            plain = Shape.cast(sub)
            fields[f"{prefix}{name}"] = {"offset": base + field.offset, "width": plain.width,
                                         "signed": plain.signed}

    walk(layout, "", 0)
    return {"width": layout.size, "signed": False, "fields": fields}


def port_map(component: wiring.Component) -> dict:
    """Describe ``component``'s ports for the testbench.

    Returns ``{"clock", "reset", "streams": {name: {"dir", "valid", "ready",
    "payload", "shape"}}, "signals": {name: {"dir", "width", "signed"}}}``.
    ``dir`` is ``"in"`` for a stream the testbench drives (the component's
    sink) and ``"out"`` for one it consumes.
    """
    if not isinstance(component, wiring.Component):
        raise TypeError(f"port_map needs an amaranth wiring.Component, not {component!r}")
    streams: dict[str, dict] = {}
    signals: dict[str, dict] = {}
    for name, member in component.signature.members.items():
        if member.is_signature and isinstance(member.signature, stream.Signature):
            sig = member.signature
            # A stream member with flow In is a sink of the component: its
            # payload/valid are inputs, ready is an output.
            direction = "in" if member.flow == wiring.In else "out"
            streams[name] = {
                "dir": direction,
                "valid": port_name((name, "valid")),
                "ready": port_name((name, "ready")),
                "payload": port_name((name, "payload")),
                "shape": describe_shape(sig.members["payload"].shape),
                "always_valid": bool(sig.always_valid),
                "always_ready": bool(sig.always_ready),
            }
    for path, leaf, _value in component.signature.flatten(component):
        if path[0] in streams:
            continue
        signals[port_name(path)] = {
            "dir": "in" if leaf.flow == wiring.In else "out",
            **{k: v for k, v in describe_shape(leaf.shape).items() if k != "fields"},
        }
    return {"clock": CLOCK, "reset": RESET, "streams": streams, "signals": signals}


_HEADER = re.compile(r"^\s*module\s+(\\?\S+?)\s*\((.*?)\);", re.S | re.M)


def verilog_ports(verilog_text: str, module: str) -> set[str]:
    """The port names of ``module`` in Verilog text (its header)."""
    for match in _HEADER.finditer(verilog_text):
        if match.group(1).lstrip("\\") == module:
            return {p.strip().lstrip("\\") for p in match.group(2).split(",") if p.strip()}
    raise ValueError(f"module {module!r} not found in the Verilog")


def check_ports(ports: dict, verilog_text: str, module: str) -> None:
    """Raise ``ValueError`` unless every name in ``ports`` is a port of ``module``."""
    have = verilog_ports(verilog_text, module)
    want = {ports["clock"]}
    if ports.get("reset"):
        want.add(ports["reset"])
    for desc in ports["streams"].values():
        want.add(desc["payload"])
        if not desc["always_valid"]:
            want.add(desc["valid"])
        if not desc["always_ready"]:
            want.add(desc["ready"])
    want.update(ports["signals"])
    missing = sorted(want - have)
    if missing:
        raise ValueError(f"ports {missing} expected from the signature are not ports of "
                         f"Verilog module {module!r} (it has {sorted(have)})")
