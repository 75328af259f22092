"""Long CLI operations show how far they have got on a terminal, and only there.

On a terminal (a real pseudo-terminal here, as a shell gives one) the status line is drawn and
erased at the end; through a pipe the output is the command's plain lines, nothing else.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import ROOT, process_env
from tests.integration.test_worker import ITEM_MAPPING

ERASE = "\r\x1b[K"


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    """Two mapping files."""
    folder = tmp_path / "mappings"
    folder.mkdir()
    for name in ("first", "second"):
        (folder / f"{name}.json").write_text(json.dumps({**ITEM_MAPPING, "name": name}))
    return folder


def on_a_terminal(settings: Any, *args: str) -> str:
    """What ``gateway ARGS`` writes to a terminal, its line ends as the program wrote them."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        env=process_env(settings),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    written = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's last reader is gone: the command has exited
            break
        if not chunk:
            break
        written += chunk
    os.close(leader)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors.decode()
    return written.decode().replace("\r\n", "\n")


def commands(mappings_dir: Path, failed_events: list[str], tmp_path: Path) -> list[Any]:
    """(arguments, status line shown last, a line of the command's own, whether a pipe gets
    each step's status as a line) of each command."""
    return [
        (
            ["mappings", "load", str(mappings_dir)],
            "loading mappings: 2/2",
            "first.json: first v1",
            False,  # a line per file already
        ),
        (
            ["mappings", "export", str(tmp_path / "exported")],
            "exporting mappings: 2/2",
            "first v1: ",
            False,
        ),
        (["events", "replay", *failed_events], "replaying: 2/2 events", "replayed 2 events", False),
        (
            ["events", "replay", "--status", "failed"],
            "replaying the events that match…",
            "replayed 2 events",
            False,
        ),
        (
            ["events", "purge", "--older-than-days", "0", "--include-failed"],
            "purging: 4 events and deliveries",  # the newest event and delivery are kept
            "purged 2 events and 2 deliveries",
            True,  # a batch may take a while: cron's mail shows how far it got
        ),
    ]


@pytest.mark.parametrize("command", range(5), ids=["load", "export", "replay", "match", "purge"])
def test_on_a_terminal_a_status_line_shows_progress_and_is_erased(
    settings: Any,
    mappings_dir: Path,
    failed_events: list[str],
    tmp_path: Path,
    command: int,
) -> None:
    if command == 1:  # something to export
        on_a_terminal(settings, "mappings", "load", str(mappings_dir))
    args, status, own, _ = commands(mappings_dir, failed_events, tmp_path)[command]

    shown = on_a_terminal(settings, *args)

    assert ERASE + status in shown
    assert own in shown
    after_the_last_erase = shown.split(ERASE)[-1]  # "", or lines of the command's own
    assert after_the_last_erase == "" or after_the_last_erase.endswith("\n"), "status left"


@pytest.mark.parametrize("command", range(5), ids=["load", "export", "replay", "match", "purge"])
def test_through_a_pipe_only_the_commands_own_lines_are_written(
    run: Any,
    mappings_dir: Path,
    failed_events: list[str],
    tmp_path: Path,
    command: int,
) -> None:
    if command == 1:
        run("mappings", "load", str(mappings_dir))
    args, status, own, step_lines = commands(mappings_dir, failed_events, tmp_path)[command]

    written: str = run(*args).output

    assert own in written
    assert (f"{status}\n" in written.splitlines(keepends=True)) is step_lines
    assert step_lines or status not in written
    assert "\r" not in written and "\x1b" not in written
