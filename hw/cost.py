"""What a block costs: multiplier blocks, memories, flip-flops.

Each block computes its :class:`Cost` from the same plan it elaborates from
(FINN's way: an op carries its own estimate), and :mod:`hw.estimate` only
adds them up.  Tests compare these figures with the flip-flops Amaranth
emits and with Yosys's mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Shape, Signal

__all__ = ["MemoryUse", "Cost", "counter", "counter_bits", "memory_attrs", "BlockRam",
           "BLOCK_RAMS"]


@dataclass(frozen=True)
class BlockRam:
    """A family's block RAM primitive and the ``(width, depth)`` shapes it can take."""

    primitive: str
    shapes: tuple[tuple[int, int], ...]     # widest first

    def column_width(self, depth: int) -> int:
        """The widest shape at least ``depth`` deep (else the deepest shape's width): a
        memory cut into columns this wide takes one block RAM per column, with no
        multiplexer after it (a cascade in depth would put one between the block RAM's
        output and the register it feeds)."""
        return next((w for w, d in self.shapes if d >= depth), self.shapes[-1][0])


#: Block RAM per FPGA family (Lattice's DP16KD and SB_RAM40_4K data sheets).
BLOCK_RAMS: dict[str, BlockRam] = {
    "ecp5": BlockRam("DP16KD", ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192),
                                (1, 16384))),
    "ice40": BlockRam("SB_RAM40_4K", ((16, 256), (8, 512), (4, 1024), (2, 2048))),
}


def _counter_shape(n: int) -> Shape:
    # at least one bit: a zero-width signal becomes a `[-1:0]` vector in the Verilog
    return Shape.cast(range(max(n, 2)))


def counter(n: int, name: str | None = None) -> Signal:
    """A register counting over ``range(n)``; every counter of the generator is one."""
    return Signal(_counter_shape(n), name=name, src_loc_at=1)


def counter_bits(n: int) -> int:
    """Flip-flops of :func:`counter` ``(n)``."""
    return _counter_shape(n).width


def memory_attrs(sync_read: bool) -> dict:
    """Where Yosys puts a memory: every memory with a synchronous read port in block RAM
    (its read register is the block RAM's), every asynchronous one in logic.  Saying so
    (rather than leaving it to Yosys's size heuristics) makes the estimate's block-RAM
    bits the bits Yosys maps."""
    return {"ram_style": "block" if sync_read else "logic"}


@dataclass(frozen=True)
class MemoryUse:
    """One ``amaranth.lib.memory.Memory``: ``depth`` words of ``width`` bits.

    ``sync_read``: its read port has a data register (block-RAM material);
    an asynchronous read port becomes logic or LUT RAM.
    """

    name: str
    depth: int
    width: int
    sync_read: bool
    writable: bool

    @property
    def bits(self) -> int:
        return self.depth * self.width


@dataclass(frozen=True)
class Cost:
    """``multipliers``: the ``"AxB"`` port widths of each multiplier block used;
    ``memories``; ``registers``: flip-flop bits outside memories."""

    multipliers: tuple[str, ...] = ()
    memories: tuple[MemoryUse, ...] = ()
    registers: int = 0

    def __post_init__(self):
        object.__setattr__(self, "multipliers", tuple(self.multipliers))
        object.__setattr__(self, "memories", tuple(self.memories))

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.multipliers + other.multipliers, self.memories + other.memories,
                    self.registers + other.registers)

    def plus_registers(self, bits: int) -> "Cost":
        return Cost(self.multipliers, self.memories, self.registers + bits)

    @property
    def multiplier_blocks(self) -> int:
        return len(self.multipliers)

    def memory_bits(self, *, sync_read: bool | None = None) -> int:
        return sum(m.bits for m in self.memories if sync_read is None or m.sync_read == sync_read)
