"""The status line of a long CLI operation: redrawn in place on a terminal, absent elsewhere."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest

from gateway.progress import Progress

ERASE = "\r\x1b[K"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def load_two(progress: Progress) -> None:
    progress.echo("a.yaml: a v1 (created)")
    progress.advance()
    progress.echo("b.yaml: b v1 (created)")
    progress.advance()


def purge_in_batches(progress: Progress) -> None:
    progress.reached(1000)
    progress.reached(1500)


CASES = [
    pytest.param(
        ("loading mappings", 2),
        load_two,
        ERASE
        + "loading mappings: 0/2"
        + ERASE
        + "a.yaml: a v1 (created)\n"
        + ERASE
        + "loading mappings: 0/2"
        + ERASE
        + "loading mappings: 1/2"
        + ERASE
        + "b.yaml: b v1 (created)\n"
        + ERASE
        + "loading mappings: 1/2"
        + ERASE
        + "loading mappings: 2/2"
        + ERASE,
        id="counted to a known total, the command's lines above it",
    ),
    pytest.param(
        ("purging", None, "events"),
        purge_in_batches,
        ERASE
        + "purging…"
        + ERASE
        + "purging: 1000 events"
        + ERASE
        + "purging: 1500 events"
        + ERASE,
        id="a total not known beforehand",
    ),
]


@pytest.mark.parametrize(("args", "work", "shown"), CASES)
def test_on_a_terminal_one_status_line_is_redrawn_then_erased(
    args: tuple[Any, ...],
    work: Callable[[Progress], None],
    shown: str,
) -> None:
    terminal = Terminal()

    with Progress(*args, stream=terminal) as progress:
        work(progress)

    assert terminal.getvalue() == shown


@pytest.mark.parametrize(("args", "work", "shown"), CASES)
def test_elsewhere_only_the_commands_own_lines_are_written(
    args: tuple[Any, ...],
    work: Callable[[Progress], None],
    shown: str,
) -> None:
    piped = io.StringIO()

    with Progress(*args, stream=piped) as progress:
        work(progress)

    own = [line for line in shown.split(ERASE) if line.endswith("\n")]
    assert piped.getvalue() == "".join(own)
    assert "\r" not in piped.getvalue() and "\x1b" not in piped.getvalue()


def test_off_a_terminal_slow_steps_may_each_write_their_status_as_a_line() -> None:
    piped = io.StringIO()

    with Progress("purging", unit="events", stream=piped, step_lines=True) as progress:
        purge_in_batches(progress)

    assert piped.getvalue() == "purging: 1000 events\npurging: 1500 events\n"


def test_the_status_line_is_erased_when_the_operation_fails() -> None:
    terminal = Terminal()

    with pytest.raises(RuntimeError), Progress("purging", stream=terminal) as progress:
        progress.reached(10)
        raise RuntimeError("the database went away")

    assert terminal.getvalue().endswith(ERASE)
