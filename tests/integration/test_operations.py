"""Operating the gateway: retention, structured logs, metrics and readiness."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, make_url, select, update

from gateway.config import Settings
from gateway.metrics import SETTLED_RECOUNT_S, StatusCounts
from gateway.migrate import upgrade
from gateway.models import Delivery, Event
from gateway.retention import purge
from gateway.services import Gateway
from gateway.storage import open_storage
from gateway.web import create_app
from tests.conftest import ADMIN_TOKEN, BACKENDS
from tests.postgres import another_client, once_it_waits_for

SECRET = "operations-test-secret-0123456789"


def _moved(n: int) -> bytes:
    return json.dumps(
        {"id": f"a{n}", "eventTimestamp": n, "topic": "inventory.moved", "data": {"n": n}}
    ).encode()


def _age_everything(gw: Any, days: int) -> None:
    past = datetime.now(UTC) - timedelta(days=days)
    with gw.db.session() as session:
        session.execute(update(Event).values(received_at=past))
        session.execute(update(Delivery).values(received_at=past))


def _count(gw: Any, model: Any, *where: Any) -> int:
    with gw.db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture
def events_of_every_kind(group_factory: Any, deliver: Any, admin: Any, gw: Any) -> dict[str, Any]:
    """Old events: two unrouted (settled), one failed, one ignored; plus one fresh unrouted."""
    group = group_factory(secret=SECRET, events=["inventory.moved"])
    for n in range(2):
        deliver(group, _moved(n))
    ignored = json.dumps({"id": "c", "eventTimestamp": 1, "topic": "asset.moved", "data": {}})
    deliver(group, ignored.encode())
    deliver(group, _moved(99))
    from gateway.worker import Worker

    Worker(gw).drain()
    with gw.db.session() as session:  # pretend the last one failed
        session.execute(
            update(Event)
            .where(Event.payload["data"]["n"].as_integer() == 99)
            .values(status="failed")
        )
    _age_everything(gw, days=40)
    deliver(group, _moved(7))  # a fresh one stays
    return group


def test_purge_removes_old_settled_events_and_their_deliveries_only(
    events_of_every_kind: Any, gw: Any
) -> None:
    purged = purge(gw, timedelta(days=30))

    assert (purged.events, purged.deliveries) == (3, 3)
    assert sorted(_statuses(gw)) == ["failed", "pending"]
    assert _count(gw, Delivery) == 2


def test_purge_can_include_failed_events(events_of_every_kind: Any, gw: Any) -> None:
    purged = purge(gw, timedelta(days=30), include_failed=True)

    assert purged.events == 4
    assert _statuses(gw) == ["pending"]


@pytest.mark.parametrize("include_failed", [False, True])
def test_a_dry_run_counts_what_the_purge_then_deletes_and_deletes_nothing(
    events_of_every_kind: Any, gw: Any, include_failed: bool
) -> None:
    before = (_count(gw, Event), _count(gw, Delivery))

    counted = purge(gw, timedelta(days=30), include_failed=include_failed, dry_run=True)
    kept = (_count(gw, Event), _count(gw, Delivery))
    purged = purge(gw, timedelta(days=30), include_failed=include_failed)

    assert kept == before
    assert counted == purged
    assert purged.events > 0


def test_purge_keeps_the_newest_event_and_delivery_so_no_id_is_handed_out_twice(
    group_factory: Any, deliver: Any, gw: Any, admin: Any, worker: Any
) -> None:
    group = group_factory(secret=SECRET, events=["inventory.moved"])
    for n in range(3):
        deliver(group, _moved(n))
    worker.drain()  # unrouted: settled
    before = admin.get("/events").get_json()["items"]
    _age_everything(gw, days=40)

    purged = purge(gw, timedelta(days=0), include_failed=True)
    deliver(group, _moved(3))

    assert (purged.events, purged.deliveries) == (2, 2)
    after = admin.get("/events").get_json()["items"]
    assert [e["id"] for e in after[1:]] == [before[0]["id"]]  # the newest was kept
    assert int(after[0]["id"]) > max(int(e["id"]) for e in before)
    assert int(after[0]["delivery_id"]) > max(int(e["delivery_id"]) for e in before)


def test_the_purge_command_uses_the_retention_setting(
    events_of_every_kind: Any, gw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import cli

    monkeypatch.setattr(cli, "_gateway", lambda: gw)

    result = CliRunner().invoke(cli.main, ["events", "purge", "--older-than-days", "30"])

    assert result.exit_code == 0, result.output
    assert "purged 3 events and 3 deliveries" in result.output


def _statuses(gw: Any) -> list[str]:
    with gw.db.read_session() as session:
        return list(session.scalars(select(Event.status)))


def test_json_logs_carry_the_event_and_delivery_ids(
    group_factory: Any, deliver: Any, gw: Any, admin: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway import logs
    from gateway.worker import Worker

    logger = logging.getLogger("gateway")
    saved = list(logger.handlers)
    logger.handlers = []
    try:
        logs.configure("json")
        group = group_factory(secret=SECRET, events=["inventory.moved"])
        admin.post(  # a record without a mapping: its events fail, and say so
            f"/webhooks/{group['template_webhook_id']}/clone",
            {"label": "Moves", "events": ["inventory.moved"]},
        )
        delivery_id = deliver(group, _moved(1)).get_json()["delivery_id"]
        Worker(gw).drain()
    finally:
        logger.handlers = saved
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    batch = next(line for line in lines if line["message"].startswith("batch of"))
    assert batch["level"] == "INFO"
    assert batch["logger"] == "gateway.worker"
    assert batch["events"] == 1
    assert batch["failed"] == 1
    failure = next(line for line in lines if line["level"] == "WARNING")
    assert failure["delivery_id"] == delivery_id  # text, as the API writes ids
    assert failure["event_id"] == admin.get("/events").get_json()["items"][0]["id"]
    assert "has no mapping" in failure["message"]
    stored = next(line for line in lines if line["message"].startswith("stored 1 deliveries"))
    assert stored["logger"] == "gateway.storage.inbox"
    assert stored["delivery_ids"] == [delivery_id]
    assert stored["group_ids"] == [group["id"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", x["time"]) for x in lines)


def test_metrics_show_deliveries_and_the_queue(
    group_factory: Any, deliver: Any, client: Any
) -> None:
    group = group_factory(secret=SECRET, events=["inventory.moved"])
    deliver(group, _moved(1))
    deliver(group, _moved(1))

    text = client.get("/metrics").get_data(as_text=True)

    assert f'gateway_deliveries_total{{group="{group["id"]}",outcome="accepted"}} 2.0' in text
    for disposition in ("accepted", "duplicate"):
        labels = f'disposition="{disposition}",group="{group["id"]}"'
        assert f"gateway_events_received_total{{{labels}}} 1.0" in text
    assert 'gateway_queue_events{status="pending"} 1.0' in text
    assert 'gateway_queue_events{status="duplicate"} 1.0' in text
    assert "gateway_receive_seconds_bucket" in text
    assert "gateway_oldest_pending_age_seconds" in text


def test_the_queue_is_counted_at_every_scrape_the_settled_events_only_now_and_then(
    gw: Any, group_factory: Any, deliver: Any, worker: Any
) -> None:
    clock = [0.0]
    counts = StatusCounts(clock=lambda: clock[0])
    group = group_factory(secret=SECRET, events=["inventory.moved"])
    deliver(group, _moved(1))

    def scrape() -> tuple[int, int]:
        with gw.db.read_session() as session:
            counted = counts.read(session)
        return counted["pending"], counted["unrouted"]

    first = scrape()
    worker.drain()  # unrouted: settled
    soon = scrape()
    clock[0] += SETTLED_RECOUNT_S
    later = scrape()
    deliver(group, _moved(2))
    worker.drain()
    with gw.db.read_session() as session:
        asked = counts.read(session, recount=True)["unrouted"]

    assert first == (1, 0)
    assert soon == (0, 0)  # the settled events as last counted
    assert later == (0, 1)
    assert asked == 2


@pytest.mark.parametrize(
    ("due", "waited"),
    [
        (timedelta(seconds=-90), (90, 150)),  # due for a minute and a half
        (timedelta(hours=1), (0, 0)),  # a retry backing off is not waiting
    ],
)
def test_the_oldest_pending_age_counts_from_when_the_event_fell_due(
    gw: Any,
    group_factory: Any,
    deliver: Any,
    client: Any,
    due: timedelta,
    waited: tuple[float, float],
) -> None:
    group = group_factory(secret=SECRET, events=["inventory.moved"])
    deliver(group, _moved(1))
    with gw.db.session() as session:
        session.execute(update(Event).values(next_attempt_at=datetime.now(UTC) + due))

    text = client.get("/metrics").get_data(as_text=True)

    (line,) = [x for x in text.splitlines() if x.startswith("gateway_oldest_pending_age_seconds ")]
    assert waited[0] <= float(line.split()[1]) <= waited[1]


def test_readyz_reflects_the_database(client: Any) -> None:
    assert client.get("/readyz").get_json() == {"status": "ready", "database": "ok"}


@pytest.fixture(params=BACKENDS)
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend that no migration has touched yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    server = make_url(request.getfixturevalue("postgres_url"))
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    admin_engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin_engine.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin_engine.dispose()


@pytest.mark.parametrize("revision", [None, "0003"], ids=["never migrated", "a migration behind"])
def test_readyz_and_the_api_say_the_schema_needs_migrating_until_it_is(
    unmigrated_url: str, settings: Settings, revision: str | None
) -> None:
    database = open_storage(unmigrated_url)
    if revision:
        upgrade(database, revision)
    gw = Gateway(settings.with_overrides({"database_url": unmigrated_url}))
    client = create_app(gateway=gw).test_client()
    try:
        ready = client.get("/readyz")
        listed = client.get("/api/v1/groups", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

        assert ready.status_code == 503
        assert ready.get_json()["error"]["code"] == "schema_not_migrated"
        assert "gateway db upgrade" in ready.get_json()["error"]["message"]
        if revision is None:  # tables missing altogether: every call says why, not just 503
            assert listed.status_code == 503
            assert listed.get_json()["error"]["code"] == "schema_not_migrated"

        upgrade(database)

        assert client.get("/readyz").status_code == 200
    finally:
        gw.close()
        database.dispose()


def test_a_postgresql_server_that_never_answers_is_unavailable_within_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket
    import time

    import gateway.storage.postgresql
    from gateway.errors import StoreUnavailable

    monkeypatch.setattr(gateway.storage.postgresql, "CONNECT_TIMEOUT_S", 1)
    with socket.socket() as silent:  # takes connections (the kernel does), answers nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        database = open_storage(f"postgresql+psycopg://nobody@127.0.0.1:{port}/none")
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            database.ping()
        waited = time.monotonic() - started
        database.dispose()

    assert waited < 10


def test_an_event_replayed_while_the_purge_deletes_it_stays_with_its_history(
    group_factory: Any, deliver: Any, gw: Any, admin: Any, worker: Any
) -> None:

    if gw.db.is_sqlite:
        pytest.skip("SQLite's purge holds the write lock from choosing to deleting")
    group = group_factory(secret=SECRET, events=["inventory.moved"])
    for n in range(2):
        deliver(group, _moved(n))
    worker.drain()  # unrouted: settled
    _age_everything(gw, days=40)
    replayed = min(int(e["id"]) for e in admin.get("/events").get_json()["items"])
    with another_client(gw.settings.database_url) as replay:
        # A replay that has queued the event again and not committed yet.
        replay.execute(
            update(Event).where(Event.id == replayed).values(status="pending", attempts=0)
        )
        once_it_waits_for(replay, lambda: purge(gw, timedelta(days=30)))

    event = admin.get(f"/events/{replayed}").get_json()
    assert event["status"] == "pending"
    assert [h["status"] for h in event["history"]] == ["unrouted"]
