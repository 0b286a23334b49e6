"""The one registry of the presets' hardware defaults: MAC lanes per layer.

The Makefile, ``fxvae verilog``, ``fxvae cosim`` and the co-simulation
harness all read the default lanes from here (``iris_LANES=``/``mnist_LANES=``
on the make command line override them).  The preset names are those of
:data:`model.vae.PRESETS` (a test checks that the two lists agree).

Why these lanes: IRIS is tiny, 4 lanes keep it small.  MNIST gives the wide
layers (enc0: 784 -> 128, dec_out: 128 -> 784) 64 lanes and the narrow ones
what they can use (enc_head: 20 outputs, dec0: 10 inputs); ``fxvae verilog``
prints what a choice costs (``hw.estimate``: cycles, multipliers, ROM bits).
"""

from __future__ import annotations

__all__ = ["DEFAULT_LANES", "default_lanes", "preset_lanes_help"]

#: preset -> lanes: one int for every layer, or one per layer (encoder then decoder).
DEFAULT_LANES: dict[str, int | tuple[int, ...]] = {
    "iris": 4,
    "mnist": (64, 20, 16, 64),
}


def default_lanes(preset: str) -> int | tuple[int, ...]:
    """The default lanes of ``preset``; ``ValueError`` naming the known presets otherwise."""
    try:
        return DEFAULT_LANES[preset]
    except KeyError:
        raise ValueError(f"no default lanes for preset {preset!r}; known presets: "
                         f"{', '.join(DEFAULT_LANES)} (or give the lanes explicitly)") from None


def preset_lanes_help() -> str:
    """``"iris 4, mnist 64,20,16,64"``: the defaults as a command line would spell them."""
    return ", ".join(f"{preset} {lanes if isinstance(lanes, int) else ','.join(map(str, lanes))}"
                     for preset, lanes in DEFAULT_LANES.items())
