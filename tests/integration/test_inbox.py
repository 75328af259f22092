"""The durable inbox: one refused delivery does not sink its batch, a late one is answered."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from gateway.errors import StoreUnavailable
from gateway.intake import IncomingEvent
from gateway.models import Delivery, Event, Group
from gateway.storage import sqlite
from gateway.storage.inbox import LATE, GroupChanged, Inbox, NewDelivery, group_state


def _delivery(
    group_id: str, event_type: str, state: tuple[Any, ...] | None = None, body: bytes = b"{}"
) -> NewDelivery:
    return NewDelivery(
        group_id=group_id,
        registered_events=frozenset({"inventory.moved"}),
        method="POST",
        remote_addr="127.0.0.1",
        content_type="application/json",
        headers={},
        body=body,
        received_at=datetime.now(UTC),
        events=[IncomingEvent(event_type, f"id:{event_type}", {}, None)],
        group_state=state,
    )


def test_a_delivery_the_database_refuses_does_not_fail_its_neighbours(
    gw: Any, group_factory: Any
) -> None:
    if gw.db.is_sqlite:
        pytest.skip("SQLite stores NUL characters; PostgreSQL refuses them in text")
    group = group_factory(events=["inventory.moved"])
    good, bad = _delivery(group["id"], "inventory.moved"), _delivery(group["id"], "bad\x00type")
    refused, stored = gw.inbox._commit([(bad, gw.inbox.slot()), (good, gw.inbox.slot())])

    assert isinstance(refused, StoreUnavailable)
    assert stored.accepted == 1


def test_a_delivery_not_committed_in_time_fails_and_the_writer_goes_on(
    gw: Any, group_factory: Any
) -> None:
    inbox = Inbox(gw.db, commit_timeout_s=0.3)
    group_id = group_factory(events=["inventory.moved"])["id"]
    with gw.db.session() as session:
        # Holds SQLite's write lock, or on PostgreSQL the group row the writer reads to commit.
        group = session.scalars(select(Group).where(Group.id == group_id).with_for_update()).one()
        state = group_state(group)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=LATE):
            inbox.store(_delivery(group_id, "inventory.moved", state))
        waited = time.monotonic() - started

    assert 0.3 <= waited < 3
    assert inbox.store(_delivery(group_id, "inventory.moved", state)).duplicates == 1


@pytest.mark.parametrize("change", [{"paused": True}, {"active": False}])
def test_a_delivery_verified_before_its_group_changed_is_verified_again_not_stored(
    gw: Any, admin: Any, group_factory: Any, change: dict[str, Any]
) -> None:
    group_id = group_factory(events=["inventory.moved"])["id"]
    with gw.db.read_session() as session:
        verified = group_state(session.get_one(Group, group_id))
    assert admin.patch(f"/groups/{group_id}", change).status_code == 200

    (outcome,) = gw.inbox._commit(
        [(_delivery(group_id, "inventory.moved", verified), gw.inbox.slot())]
    )

    assert isinstance(outcome, GroupChanged)  # a paused group's events are never stored pending
    with gw.db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 0


def test_a_batch_mixing_new_and_repeated_events_tells_each_delivery_which_are_which(
    gw: Any, group_factory: Any
) -> None:
    group_id = group_factory(events=["inventory.moved"])["id"]
    (earlier,) = gw.inbox._commit([(_delivery(group_id, "inventory.moved"), gw.inbox.slot())])
    batch = [
        _delivery(group_id, "inventory.counted"),
        _delivery(group_id, "inventory.moved"),  # a retry of the earlier one
        _delivery(group_id, "inventory.moved"),  # and again, in the same batch
        _delivery(group_id, "inventory.found"),
    ]

    receipts = gw.inbox._commit([(delivery, gw.inbox.slot()) for delivery in batch])

    assert earlier.accepted == 1
    counts = [(r.accepted + r.ignored, r.duplicates) for r in receipts]
    assert counts == [(1, 0), (0, 1), (0, 1), (1, 0)]


def test_deliveries_stored_together_are_each_counted_by_group_and_disposition(
    gw: Any, group_factory: Any
) -> None:
    group_id = group_factory(events=["inventory.moved"])["id"]
    deliveries = [_delivery(group_id, "inventory.moved") for _ in range(4)]  # one new, 3 repeats
    deliveries += [_delivery(group_id, f"inventory.counted.{n}") for n in range(3)]  # ignored
    before = _counts(group_id)

    with ThreadPoolExecutor(len(deliveries)) as pool:  # as many commits as it takes
        list(pool.map(gw.inbox.store, deliveries))

    after = _counts(group_id)
    assert {name: after[name] - before[name] for name in after} == {
        "deliveries accepted": 7,
        "events accepted": 1,
        "events duplicate": 3,
        "events ignored": 3,
    }


def test_deliveries_a_commit_could_not_store_are_logged_with_their_groups(
    gw: Any, group_factory: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    group_id = group_factory(events=["inventory.moved"])["id"]

    def unreachable(batch: Any, top_up: bool) -> Any:
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(gw.inbox, "_write_past_deadlocks", unreachable)
    logger = logging.getLogger("gateway.storage.inbox")
    logger.addHandler(caplog.handler)
    try:
        with pytest.raises(StoreUnavailable):
            gw.inbox.store(_delivery(group_id, "inventory.moved"))
    finally:
        logger.removeHandler(caplog.handler)

    # Once, whether or not the logger also propagates to the root's capturing handler.
    (line,) = {id(r): r for r in caplog.records if r.levelno == logging.WARNING}.values()
    assert line.getMessage().startswith("1 deliveries not stored (told 503)")
    assert (line.deliveries, line.group_ids) == (1, [group_id])  # type: ignore[attr-defined]


def _counts(group_id: str) -> dict[str, float]:
    def sample(name: str, label: str, value: str) -> float:
        labels = {"group": group_id, label: value}
        return REGISTRY.get_sample_value(name, labels) or 0.0

    return {
        "deliveries accepted": sample("gateway_deliveries_total", "outcome", "accepted"),
        **{
            f"events {how}": sample("gateway_events_received_total", "disposition", how)
            for how in ("accepted", "duplicate", "ignored")
        },
    }


def test_on_sqlite_a_commit_is_synced_to_disk_once_the_write_lock_is_free_and_before_it_is_told(
    gw: Any, group_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not gw.db.is_sqlite:
        pytest.skip("PostgreSQL syncs its own WAL at each commit")
    database = gw.db.url.database
    group_id = group_factory(events=["inventory.moved"])["id"]
    syncs: list[tuple[str, bool, int]] = []
    fdatasync = os.fdatasync

    def watched_fdatasync(fd: int) -> None:
        with gw.db.read_session() as session:
            visible = session.scalar(select(func.count()).select_from(Delivery))
        syncs.append(
            (os.readlink(f"/proc/self/fd/{fd}"), _unlocked(f"{database}-writers.lock"), visible)
        )
        fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", watched_fdatasync)
    receipt = gw.inbox.store(_delivery(group_id, "inventory.moved"))

    assert receipt.accepted == 1
    assert syncs == [(f"{database}-wal", True, 1)]  # the WAL, after the lock, after the commit
    for engine, level in ((gw.db.inbox_engine, 1), (gw.db.engine, 2), (gw.db.read_engine, 2)):
        with engine.connect() as conn:  # NORMAL (1) leaves the sync to the inbox; FULL (2)
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level


@pytest.fixture
def wal_group(gw: Any, group_factory: Any) -> str:
    """A group to store deliveries for, in tests of SQLite's WAL (skipped on PostgreSQL)."""
    if not gw.db.is_sqlite:
        pytest.skip("PostgreSQL has no WAL file to checkpoint")
    group_id: str = group_factory(events=["inventory.moved"])["id"]
    return group_id


def test_on_sqlite_the_inbox_checkpoints_the_wal_beside_its_commits_not_inside_them(
    gw: Any, wal_group: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY", 3)
    group_id = wal_group
    database = gw.db.url.database

    for number in range(3):
        gw.inbox.store(_delivery(group_id, f"inventory.moved.{number}"))
        if number < 2:
            assert _in_database_file(database) == 0  # still in the WAL only

    deadline = time.monotonic() + 10
    while _in_database_file(database) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _in_database_file(database) == 3
    with gw.db.inbox_engine.connect() as inbox:
        assert inbox.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0


def test_on_sqlite_the_writer_commits_on_the_connection_it_used_last(gw: Any) -> None:
    """A connection that did not make the last commit has to read every page it touches again
    from the WAL; the checkpoint's connection, back in the pool, must not take turns with it."""
    if not gw.db.is_sqlite:
        pytest.skip("PostgreSQL keeps no page cache per connection")
    with gw.db.driver_transaction() as cursor:
        writer = cursor.connection
    with gw.db.inbox_engine.connect(), gw.db.inbox_engine.connect():
        pass  # the checkpoint's connection beside the writer's, both back in the pool after

    for _ in range(3):
        with gw.db.driver_transaction() as cursor:
            assert cursor.connection is writer


def _in_database_file(path: str) -> int:
    """Deliveries in the database file itself, as if the WAL were not there."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])


def _unlocked(path: str) -> bool:
    """Whether no one holds the lock on ``path`` (a second open of it conflicts with ours)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_each_delivery_of_a_batch_is_stored_under_the_id_its_receipt_gives(
    gw: Any, group_factory: Any
) -> None:
    group_id = group_factory(events=["inventory.moved"])["id"]
    types = ["inventory.moved", "inventory.counted", "inventory.found"]

    def commit(round_: int) -> list[Any]:
        batch = [
            _delivery(group_id, f"{t}.{round_}", body=f'{{"type":"{t}.{round_}"}}'.encode())
            for t in types
        ]
        return gw.inbox._commit([(delivery, gw.inbox.slot()) for delivery in batch])

    first, second = commit(1), commit(2)

    with gw.db.read_session() as session:
        for round_, receipts in ((1, first), (2, second)):
            for t, receipt in zip(types, receipts, strict=True):
                delivery = session.get(Delivery, receipt.delivery_id)
                events = session.scalars(
                    select(Event.type).where(Event.delivery_id == receipt.delivery_id)
                ).all()
                assert delivery is not None
                assert delivery.body == f'{{"type":"{t}.{round_}"}}'.encode()
                assert events == [f"{t}.{round_}"]
    ids = [r.delivery_id for r in first + second]
    assert ids == sorted(set(ids))


def test_a_batch_that_deadlocks_with_another_process_on_the_same_events_is_stored_again(
    gw: Any, group_factory: Any
) -> None:
    from sqlalchemy import text
    from sqlalchemy.dialects.postgresql import insert

    from tests.postgres import another_client, once_it_waits_for

    if gw.db.is_sqlite:
        pytest.skip("SQLite commits one writer at a time")
    group_id = group_factory(events=["inventory.moved"])["id"]
    first, second = (_delivery(group_id, t) for t in ("inventory.moved", "inventory.counted"))

    def other_process_stores(conn: Any, delivery: NewDelivery) -> None:
        (incoming,) = delivery.events
        row = {
            "group_id": group_id,
            "delivery_id": 0,
            "type": incoming.type,
            "status": "pending",
            "dedupe_key": incoming.dedupe_key,
            "payload": {},
            "received_at": delivery.received_at,
            "attempts": 0,
        }
        conn.execute(
            insert(Event)
            .values(row)
            .on_conflict_do_nothing(
                index_elements=["group_id", "dedupe_key"],
                index_where=text("status <> 'duplicate'"),
            )
        )

    with another_client(gw.settings.database_url) as other:
        # The other process's batch has the same events in the other order.
        other.execute(text("SET deadlock_timeout = '5s'"))  # so that ours is the one aborted
        other_process_stores(other, second)
        receipts = once_it_waits_for(
            other,
            lambda: gw.inbox._commit([(first, gw.inbox.slot()), (second, gw.inbox.slot())]),
            then=lambda: other_process_stores(other, first),
        )

    assert [(r.accepted, r.duplicates) for r in receipts] == [(0, 1), (0, 1)]


def test_on_sqlite_the_wal_starts_over_after_each_checkpoint_while_deliveries_keep_coming(
    gw: Any, wal_group: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WAL that never starts over grows by every commit for as long as the gateway runs."""
    monkeypatch.setattr(sqlite, "CHECKPOINT_EVERY", 4)
    group_id = wal_group
    wal = f"{gw.db.url.database}-wal"
    gw.inbox.store(_delivery(group_id, "inventory.moved.first"))
    one_commit = os.path.getsize(wal)

    for number in range(200):
        gw.inbox.store(_delivery(group_id, f"inventory.moved.{number}", body=b"{}" * 2000))

    assert os.path.getsize(wal) < 40 * one_commit  # 200 commits would take more than 200
