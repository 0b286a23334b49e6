"""The Verilog ports of an Amaranth component, read from its signature.

One description serves everyone: ``fxvae.json`` lists it as ``"ports"``
(:mod:`hw.verilog`) and the cocotb testbench finds its signals through it
(:mod:`sim.designs` puts it in every run's config; the cocotb side never
imports Amaranth).

Naming follows ``amaranth.back.verilog.convert``: it walks
``component.signature.flatten(component)`` and names each leaf by its path
joined with ``"__"``, so a stream ``i`` becomes ``i__payload``, ``i__valid``,
``i__ready``.  A structured payload (``data.StructLayout``) is *one* packed
vector port whose fields sit at the layout's bit offsets (the per-field wires
in the Verilog are internal and may be optimised away, so nothing relies on
them).  The clock and reset of the ``sync`` domain are ``clk`` and ``rst``.
:func:`check_ports` compares the description with the emitted Verilog's
port declarations, so a naming change in Amaranth fails loudly.
"""

from __future__ import annotations

import re

from amaranth.hdl import Shape, ShapeCastable
from amaranth.lib import data, stream, wiring

__all__ = ["CLOCK", "RESET", "port_name", "describe_shape", "port_map", "port_directions",
           "verilog_ports", "check_ports"]

#: Names of the ``sync`` domain's clock and reset ports in Amaranth's Verilog.
CLOCK = "clk"
RESET = "rst"


def port_name(path) -> str:
    """Verilog port name of a signature path, exactly as ``amaranth.back.verilog`` makes it."""
    return "__".join(str(item) for item in path)


def describe_shape(shape) -> dict:
    """``{"width", "signed", "fields"}``; ``fields`` maps dotted names of a struct's
    leaves to ``{"offset", "width", "signed"}`` (``None`` for a plain shape)."""
    layout = None
    if isinstance(shape, data.Layout):
        layout = shape
    elif isinstance(shape, ShapeCastable):
        try:
            layout = data.Layout.cast(shape)
        except TypeError:  # an enum or other shape-castable that is not a layout
            layout = None
    if layout is None:
        plain = Shape.cast(shape)
        return {"width": plain.width, "signed": plain.signed, "fields": None}
    if not isinstance(layout, data.StructLayout):
        raise TypeError(f"only struct payloads are supported, not {layout!r}")
    fields: dict[str, dict] = {}

    def walk(lay, prefix, base):
        for name, field in lay:
            if isinstance(field.shape, data.StructLayout):
                walk(field.shape, f"{prefix}{name}.", base + field.offset)
                continue
            plain = Shape.cast(field.shape)
            fields[f"{prefix}{name}"] = {"offset": base + field.offset, "width": plain.width,
                                         "signed": plain.signed}

    walk(layout, "", 0)
    return {"width": layout.size, "signed": False, "fields": fields}


def _is_stream(member: wiring.Member) -> bool:
    return member.is_signature and isinstance(member.signature, stream.Signature)


def port_map(component: wiring.Component) -> dict:
    """Every port of ``component``, streams grouped (JSON-serialisable).

    Returns ``{"clock", "reset", "streams": {name: {"dir", "payload", "valid",
    "ready", "shape"}}, "signals": {name: {"dir", "width", "signed"}}}``:
    ``dir`` is ``"in"`` for what the component consumes (a stream it is the
    sink of; its ``ready`` is then an output) and ``"out"`` for what it
    produces; ``payload``/``valid``/``ready`` are Verilog port names and
    ``shape`` is :func:`describe_shape` of the payload.
    """
    if not isinstance(component, wiring.Component):
        raise TypeError(f"port_map needs an amaranth wiring.Component, not {component!r}")
    members = component.signature.members
    streams: dict[str, dict] = {}
    signals: dict[str, dict] = {}
    for path, leaf, _value in component.signature.flatten(component):
        top = members[path[0]]
        direction = "in" if (top if _is_stream(top) else leaf).flow == wiring.In else "out"
        if not _is_stream(top):
            signals[port_name(path)] = {"dir": direction, **{
                k: v for k, v in describe_shape(leaf.shape).items() if k != "fields"}}
            continue
        if top.signature.always_valid or top.signature.always_ready:
            raise ValueError(f"stream {path[0]!r}: always_valid/always_ready streams have no "
                             "handshake port for a testbench to drive or watch")
        desc = streams.setdefault(path[0], {"dir": direction})
        desc[path[1]] = port_name(path)
        if path[1] == "payload":
            desc["shape"] = describe_shape(leaf.shape)
    return {"clock": CLOCK, "reset": RESET, "streams": streams, "signals": signals}


def port_directions(ports: dict) -> dict[str, tuple[str, int]]:
    """Verilog port name -> ``("input" | "output", width)`` for a :func:`port_map`."""
    verilog_dir = {"in": "input", "out": "output"}
    out = {ports["clock"]: ("input", 1), ports["reset"]: ("input", 1)}
    for desc in ports["streams"].values():
        forward, backward = ("input", "output") if desc["dir"] == "in" else ("output", "input")
        out[desc["payload"]] = (forward, desc["shape"]["width"])
        out[desc["valid"]] = (forward, 1)
        out[desc["ready"]] = (backward, 1)
    for name, desc in ports["signals"].items():
        out[name] = (verilog_dir[desc["dir"]], desc["width"])
    return out


_HEADER = re.compile(r"^\s*module\s+(\\?\S+?)\s*\((.*?)\);", re.S | re.M)
_DECLARATION = re.compile(r"^\s*(input|output)\s*(?:\[(\d+):0\]\s*)?(\\?\S+?)\s*;", re.M)


def verilog_ports(verilog_text: str, module: str) -> dict[str, tuple[str, int]]:
    """The ports of ``module`` in Verilog text: name -> ``(direction, width)``."""
    for match in _HEADER.finditer(verilog_text):
        if match.group(1).lstrip("\\") != module:
            continue
        names = [p.strip().lstrip("\\") for p in match.group(2).split(",") if p.strip()]
        body = verilog_text[match.end():verilog_text.index("endmodule", match.end())]
        declared = {m.group(3).lstrip("\\"): (m.group(1), int(m.group(2) or 0) + 1)
                    for m in _DECLARATION.finditer(body)}
        return {name: declared.get(name, ("undeclared", 0)) for name in names}
    raise ValueError(f"module {module!r} not found in the Verilog")


def check_ports(ports: dict, verilog_text: str, module: str) -> None:
    """``ValueError`` unless ``module``'s ports are exactly those of ``ports``
    (a :func:`port_map`), with the same directions and widths."""
    have = verilog_ports(verilog_text, module)
    want = port_directions(ports)
    wrong = {name: (want.get(name), have.get(name)) for name in sorted(set(want) | set(have))
             if want.get(name) != have.get(name)}
    if wrong:
        detail = "; ".join(f"{name}: signature {w or 'none'}, Verilog {h or 'none'}"
                           for name, (w, h) in wrong.items())
        raise ValueError(f"the ports of Verilog module {module!r} differ from its signature: "
                         f"{detail}")
