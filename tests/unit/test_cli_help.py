"""The command line as docs/cli.md's table and ``--help`` describe it, option by option."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gateway import cli

REFERENCE = Path(__file__).parents[2] / "docs" / "cli.md"


def commands(group: click.Group, prefix: str = "gateway") -> Iterator[tuple[str, click.Command]]:
    """Every command an admin can type, by its full name (``gateway events replay``)."""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", command


def options(command: click.Command) -> set[str]:
    """The long options of ``command`` (``--help`` aside)."""
    return {
        name
        for param in command.params
        if isinstance(param, click.Option)
        for name in param.opts
        if name.startswith("--")
    }


def documented(name: str) -> str:
    """The first cell of the reference's row that shows how to type ``name``."""
    table = REFERENCE.read_text(encoding="utf-8").split("## Every command")[1].split("\n\n")[1]
    cells = [row.split(" | ")[0] for row in table.splitlines()]
    matching = [cell for cell in cells if re.search(rf"`{name}( [^`]*)?`", cell)]
    assert matching, f"docs/cli.md's table of commands has no row for {name}"
    return matching[0]


COMMANDS = dict(commands(cli.main))


@pytest.mark.parametrize("name", COMMANDS)
def test_the_reference_shows_every_option_of_every_command(name: str) -> None:
    shown = set(re.findall(r"--[a-z-]+", documented(name)))

    assert shown == options(COMMANDS[name])


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_says_in_help_what_it_is_for(name: str) -> None:
    unexplained = [
        param.opts[0]
        for param in COMMANDS[name].params
        if isinstance(param, click.Option) and not param.help
    ]

    assert unexplained == []


def test_version_is_the_installed_package_s() -> None:
    result = CliRunner().invoke(cli.main, ["--version"])

    assert result.exit_code == 0
    assert result.output == f"gateway, version {metadata.version('webhook-gateway')}\n"
