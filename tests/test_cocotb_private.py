"""The cocotb internals sim.cocotb_private relies on are still there (no simulator needed).

If one of these fails after a cocotb upgrade, update sim/cocotb_private.py
(or replace the workaround with the new version's public API).
"""

import inspect

import cocotb.handle
import cocotb.simulator
import pytest
from cocotb_tools.runner import Verilator

from sim.cocotb_private import CocotbInternalsChanged, signal_reader, verilator_runner


def test_gpi_objects_read_their_value_as_a_binary_string():
    assert callable(getattr(cocotb.simulator.sim_obj, "get_signal_val_binstr", None))
    # every handle keeps its GPI object as ``_handle`` and its name as ``_path``
    init = inspect.getsource(cocotb.handle.SimHandleBase.__init__)
    assert "self._handle = handle" in init and "self._path" in init


def test_signal_reader_refuses_a_handle_without_the_gpi_object():
    with pytest.raises(CocotbInternalsChanged, match="update sim/cocotb_private"):
        signal_reader(object())


def test_verilator_build_command_is_what_the_override_expects():
    assert list(inspect.signature(Verilator._build_command).parameters) == ["self"]
    source = inspect.getsource(Verilator._build_command)
    assert '"--public-flat-rw"' in source and '"Vtop.mk"' in source
    assert isinstance(verilator_runner([]), Verilator)
