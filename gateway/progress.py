"""How far a long CLI operation has got, shown while it runs on a terminal.

On a terminal, one status line (``loading mappings: 3/12``) is redrawn in place under the
command's own lines, and erased when the operation ends. Anywhere else (a pipe, a log file,
cron's mail) only plain lines are written: the command's own, and for an operation whose steps
are few and slow (a purge's batches) the status after each step as a line of its own.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

import click

#: Back to the start of the line, and erase it.
_ERASE = "\r\x1b[K"


class Progress:
    """The status line of one operation: ``label``, then how many of ``total`` (if known)
    units are done; ``step_lines``: off a terminal, written as a line after each step."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        unit: str = "",
        stream: TextIO | None = None,
        *,
        step_lines: bool = False,
    ) -> None:
        self._label = label
        self._step_lines = step_lines
        self._total = total
        self._unit = f" {unit}" if unit else ""
        self._stream = stream or sys.stdout
        self._live = self._stream.isatty()
        self._done = 0
        self._shown = False

    def __enter__(self) -> Progress:
        self._draw()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._erase()

    def advance(self, done: int = 1) -> None:
        """``done`` more units are done."""
        self.reached(self._done + done)

    def reached(self, done: int) -> None:
        """``done`` units in all are done."""
        self._done = done
        if self._live:
            self._draw()
        elif self._step_lines:
            click.echo(self.status(), file=self._stream)

    def echo(self, line: str) -> None:
        """One of the command's own lines, written above the status line."""
        self._erase()
        click.echo(line, file=self._stream)
        self._draw()

    def _draw(self) -> None:
        if not self._live:
            return
        self._stream.write(_ERASE + self.status())
        self._stream.flush()
        self._shown = True

    def status(self) -> str:
        """The status line: ``label: done/total unit``; ``label…`` while nothing is counted
        of an operation whose total is not known."""
        if self._total is None and not self._done:
            return f"{self._label}…"
        of = f"/{self._total}" if self._total is not None else ""
        return f"{self._label}: {self._done}{of}{self._unit}"

    def _erase(self) -> None:
        if self._shown:
            self._stream.write(_ERASE)
            self._stream.flush()
            self._shown = False
