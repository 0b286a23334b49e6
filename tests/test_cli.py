"""The ``fxvae`` command: dispatch, usage, errors, and the console script that names it."""

import importlib
import inspect
import tomllib
from pathlib import Path

import pytest

from scripts import cli

ROOT = Path(__file__).resolve().parents[1]


def test_console_script_is_cli_main():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module, _, function = project["project"]["scripts"]["fxvae"].partition(":")
    assert getattr(importlib.import_module(module), function) is cli.main
    assert "scripts" in project["tool"]["setuptools"]["packages"]


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert f"  {command} " in out


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_takes_argv_and_prog(command, capsys):
    main = importlib.import_module(cli.COMMANDS[command]).main
    assert list(inspect.signature(main).parameters) == ["argv", "prog"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: fxvae {command}")


def test_unknown_command_names_the_known_ones(capsys):
    assert cli.main(["trian"]) == 2
    assert "unknown command 'trian'; commands: train, quantize" in capsys.readouterr().err
    assert cli.main([]) == 2
