"""The database goes away under load: senders are told to retry, nothing acknowledged is lost,
and a worker that kept running through it delivers every event once the database is back.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from gateway.models import Event, EventStatus
from tests.acceptance import senders
from tests.acceptance.conftest import Api
from tests.postgres import start_server, stop_server

ACKS_AROUND_OUTAGE = 100
#: A batch claimed just before the outage stays claimed until its lease runs out; a short
#: lease keeps the wait for it short.
WORKER = {"GATEWAY_CLAIM_TIMEOUT_S": "5", "GATEWAY_BATCH_WINDOW_S": "0"}
#: The longest a request waits for its commit before it is answered 503 (GATEWAY_COMMIT_TIMEOUT_S).
COMMIT_TIMEOUT_S = 2  # set on the served gateway below, short to keep the test quick
WEB_WORKERS = 2
#: The line a web process logs when commits succeed again after an outage.
OUTAGE_ENDED = r"the database takes commits again after .* s: (\d+) deliveries were not stored"


def test_database_stopped_under_load(
    settings: Any, gw: Any, start_web: Any, start_worker: Any, tmp_path: Path
) -> None:
    if gw.db.is_sqlite:
        pytest.skip("an embedded SQLite file cannot be stopped; see the locked-database test")
    url = settings.database_url

    @contextlib.contextmanager
    def stopped(web: str, load: senders.Senders) -> Iterator[None]:
        try:
            stop_server(url)
            load.wait_until("senders to be told 503", lambda: load.answered(503) >= 20)
            assert requests.get(f"{web}/readyz", timeout=10).status_code == 503
            yield
        finally:
            start_server(url)  # the server is shared by the whole session
        assert requests.get(f"{web}/readyz", timeout=10).status_code == 200

    log = tmp_path / "web.log"
    with log.open("wb") as output:
        _outage(settings, gw, start_web, start_worker, stopped, exact=True, output=output)

    # Per web process that was told of it, one line when the outage started and one when it
    # ended, with how many deliveries were told 503 meanwhile; no traceback per failed commit.
    lines = log.read_text().splitlines()
    started = [line for line in lines if "counted, not logged" in line]
    ended = [re.search(OUTAGE_ENDED, line) for line in lines]
    told_503 = [int(found.group(1)) for found in ended if found]
    assert 1 <= len(started) == len(told_503) <= WEB_WORKERS, lines
    assert all(told_503), lines
    assert not [line for line in lines if "Traceback" in line]


def test_database_locked_under_load(
    settings: Any, gw: Any, start_web: Any, start_worker: Any
) -> None:
    if not gw.db.is_sqlite:
        pytest.skip("PostgreSQL has no whole-database lock; see the stopped-database test")
    path = make_url(settings.database_url).database

    @contextlib.contextmanager
    def locked(web: str, load: senders.Senders) -> Iterator[None]:
        holder = sqlite3.connect(path, timeout=10, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            # Every sender waits out the commit timeout on a request, then is told 503.
            load.wait_until(
                "every sender to be told 503",
                lambda: load.answered(503) >= load.threads,
                timeout=COMMIT_TIMEOUT_S + 10,
            )
            assert requests.get(f"{web}/healthz", timeout=10).status_code == 200
            yield
        finally:
            if holder.in_transaction:
                holder.execute("ROLLBACK")
            holder.close()

    # A 503 answers a request, not its write, which still waits for the lock and may land
    # once the lock goes: whether a retry is the first copy or a duplicate is not known here.
    _outage(settings, gw, start_web, start_worker, locked, exact=False, timeout=40)


def _outage(
    settings: Any,
    gw: Any,
    start_web: Any,
    start_worker: Any,
    outage: Callable[[str, senders.Senders], Any],
    *,
    exact: bool,
    timeout: float = 10,
    output: IO[bytes] | None = None,
) -> None:
    """Senders through an outage; the web processes' output to ``output`` if given."""
    web, _ = start_web(
        output, GATEWAY_COMMIT_TIMEOUT_S=str(COMMIT_TIMEOUT_S), GATEWAY_WEB_WORKERS=str(WEB_WORKERS)
    )
    group = senders.create_group(Api(web, settings.admin_token), routed=True)
    worker = start_worker(**WORKER)
    with senders.Senders(group["callback_url"], threads=6, limit_s=60, timeout_s=timeout) as load:
        load.wait_for_acks(ACKS_AROUND_OUTAGE)
        with outage(web, load):
            assert worker.poll() is None, "the worker died in the outage"
        load.wait_for_acks(ACKS_AROUND_OUTAGE)
    sent = load.sent
    refused = [s for s in sent if not s.acknowledged]

    assert refused
    for s in refused:
        assert s.status == 503, s
        assert s.answer["error"]["code"] == "database_unavailable", s.answer
        assert s.retry_after, "a 503 must say when to retry"
    stored_before = senders.stored_keys(gw, group["id"]) if exact else None
    duplicates = senders.resend(group["callback_url"], refused, stored_before)
    senders.check_stored_once(gw, group["id"], sent, duplicates if exact else None)
    _wait_until_delivered(gw, group["id"], len(sent), worker)
    assert senders.records(gw) == {senders.count_id(s.body) for s in sent}
    assert worker.poll() is None


def _wait_until_delivered(gw: Any, group_id: str, total: int, worker: Any) -> None:
    """Poll until the worker has delivered ``total`` events of the group; fail on a dead end."""
    query = (
        select(Event.status, func.count())
        .where(Event.group_id == group_id, Event.status != EventStatus.DUPLICATE)
        .group_by(Event.status)
    )
    deadline = time.monotonic() + 40
    while True:
        with gw.db.read_session() as session:
            statuses = Counter({status: n for status, n in session.execute(query)})
        if statuses[EventStatus.DELIVERED] == total:
            return
        assert worker.poll() is None, "the worker died"
        assert not statuses.keys() - {"pending", "processing", "delivered"}, statuses
        assert time.monotonic() < deadline, f"not every event was delivered: {statuses}"
        time.sleep(0.05)
