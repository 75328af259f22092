"""A worker told to stop (SIGTERM) finishes its batch and exits cleanly."""

from __future__ import annotations

import signal
import time
from typing import Any

from sqlalchemy import func, select

from gateway.models import Event
from tests.payloads import xtnd_delivery


def test_sigterm_lets_the_batch_finish_and_leaves_no_claims(
    group_factory: Any, deliver: Any, gw: Any, start_worker: Any
) -> None:
    group = group_factory(connector="xtnd", function="backend", events=["OrderPicked"])
    deliver(group, xtnd_delivery("1", [{"OrderNumber": str(n)} for n in range(300)]))
    worker = start_worker(GATEWAY_WORKER_BATCH_SIZE="50")
    deadline = time.monotonic() + 30
    while _count(gw, Event.status != "pending") == 0:
        assert time.monotonic() < deadline, "the worker never started"
        time.sleep(0.01)

    worker.send_signal(signal.SIGTERM)

    assert worker.wait(timeout=30) == 0
    assert _count(gw, Event.status == "processing") == 0


def _count(gw: Any, condition: Any) -> int:
    with gw.db.read_session() as session:
        query = select(func.count()).select_from(Event).where(condition)
        return int(session.scalar(query) or 0)
