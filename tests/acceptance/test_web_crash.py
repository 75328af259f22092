"""Web processes killed while senders post: every delivery answered 200 is stored, and only once.

Requests cut off by the kill got no answer; they may or may not have been stored, and the sender
retries them: a retry of a stored one is a duplicate, never a second event.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.acceptance import senders
from tests.acceptance.conftest import Api

#: Deliveries answered 200 before a kill, and again after it to show the server serves again.
ACKS_AROUND_KILL = 150
#: Kills of a web worker at most, until one cuts off a request in flight.
MAX_KILLS = 5


def _children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (gunicorn's workers, for its master)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == pid and stat[0] != "Z":
                found.add(int(entry.name))
    return found


def _stat(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent pid; None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, ppid = raw.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def _gone(pid: int) -> bool:
    stat = _stat(pid)
    return stat is None or stat[0] == "Z"


def _wait_for(what: str, condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _web(start_web: Any, tmp_path: Path) -> tuple[str, Any]:
    metrics = tmp_path / f"metrics-{time.monotonic_ns()}"
    metrics.mkdir()
    return start_web(PROMETHEUS_MULTIPROC_DIR=str(metrics))  # SIGKILL skips gunicorn's cleanup


def test_killed_web_worker_loses_no_acknowledged_delivery(
    start_web: Any, settings: Any, gw: Any, tmp_path: Path
) -> None:
    url, master = _web(start_web, tmp_path)
    group = senders.create_group(Api(url, settings.admin_token))
    kills = 0
    with senders.Senders(group["callback_url"]) as load:
        for _ in range(MAX_KILLS):
            load.wait_for_acks(ACKS_AROUND_KILL)
            cut_before = load.answered(None)
            workers = _children(master.pid)
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            kills += 1
            _wait_for(
                "the master to replace the killed worker",
                lambda w=workers, v=victim: _gone(v) and len(_children(master.pid) - w) == 1,
            )
            load.wait_for_acks(ACKS_AROUND_KILL)
            if load.answered(None) > cut_before:
                break
    sent = load.sent
    unanswered = [s for s in sent if not s.acknowledged]

    assert master.poll() is None
    assert unanswered, f"none of {kills} kills cut off a request in flight"
    assert all(s.status is None for s in unanswered), "only cut-off requests may fail"
    stored_before = senders.stored_keys(gw, group["id"])
    duplicates = senders.resend(group["callback_url"], unanswered, stored_before)
    senders.check_stored_once(gw, group["id"], sent, duplicates)


@pytest.mark.parametrize(
    "victims",
    [
        # The whole server at once, as when its host or container dies.
        "master-and-workers",
        # The master alone: its orphaned workers stop accepting, finish what they hold, exit.
        "master",
    ],
)
def test_killed_web_server_loses_no_acknowledged_delivery(
    victims: str, start_web: Any, settings: Any, gw: Any, tmp_path: Path
) -> None:
    url, master = _web(start_web, tmp_path)
    group = senders.create_group(Api(url, settings.admin_token))
    with senders.Senders(group["callback_url"]) as load:
        load.wait_for_acks(ACKS_AROUND_KILL)
        workers = _children(master.pid)
        os.kill(master.pid, signal.SIGKILL)
        if victims == "master-and-workers":
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
        master.wait(timeout=10)
        if victims == "master":
            # Orphans serve the connections they hold for up to gunicorn's graceful timeout.
            load.stop()
        _wait_for("every web worker to exit", lambda: all(_gone(pid) for pid in workers))
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/healthz", timeout=5)
    sent = load.sent
    unanswered = [s for s in sent if not s.acknowledged]

    assert all(s.status is None for s in unanswered), "only cut-off requests may fail"
    url, _ = _web(start_web, tmp_path)  # the restart; senders post to the same token
    callback = f"{url}/hooks/{_token(group)}"
    stored_before = senders.stored_keys(gw, group["id"])
    duplicates = senders.resend(callback, unanswered, stored_before)
    senders.check_stored_once(gw, group["id"], sent, duplicates)


def _token(group: dict[str, Any]) -> str:
    return str(group["callback_url"]).rsplit("/", 1)[1]
