"""The durable inbox: deliveries and their events are on disk before the sender gets its 200.

Committing each request on its own costs one fsync per delivery, which caps a small machine at a
few hundred deliveries a second. Instead, request threads hand their delivery to one writer
thread per process, which writes whatever has queued up meanwhile in a single transaction (group
commit) and then wakes every request in it. Nothing is acknowledged before its commit is on
disk (:meth:`gateway.storage.base.Storage.driver_transaction`).
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from prometheus_client import Counter
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from gateway.connectors import subscribes
from gateway.errors import StoreUnavailable
from gateway.intake import IncomingEvent
from gateway.metrics import DELIVERIES, EVENTS_RECEIVED, labelled
from gateway.models import Delivery, Event, EventStatus, Group
from gateway.storage.base import JsonText, Storage, translate_outage
from gateway.storage.driver import ColumnarInsert, DriverQuery, DriverStatement
from gateway.storage.greenlets import gate_factory, let_ready_requests_run

log = logging.getLogger(__name__)

#: How often the watchdog looks for deliveries past their commit deadline.
WATCH_INTERVAL_S = 0.1
#: What a sender is told when its delivery was not committed in time.
LATE = "the database did not commit in time; retry later"
#: PostgreSQL's code for a transaction it aborted to end a deadlock.
DEADLOCK_DETECTED = "40P01"
#: Writes of a batch PostgreSQL aborts that way before its senders are told 503.
WRITES_PAST_DEADLOCKS = 3
#: The group's columns that decide whether and how a delivery is accepted.
GROUP_STATE = (
    Group.token,
    Group.active,
    Group.paused,
    Group.connector,
    Group.events,
    Group.connector_version,
    Group.secret_ciphertext,
    Group.previous_secret_ciphertext,
    Group.previous_secret_expires_at,
    Group.require_bearer,
    Group.api_key,
)


def group_state(group: Group) -> tuple[Any, ...]:
    """What a delivery was verified against, to be checked again when it commits."""
    return tuple(getattr(group, column.key) for column in GROUP_STATE)


_STORED_KEYS = select(Event.group_id, Event.dedupe_key).where(
    Event.delivery_id == bindparam("delivery_id")
)
#: The deliveries columns the receive path writes; NewDelivery has a field of each name.
DELIVERY_COLUMNS = (
    "group_id",
    "received_at",
    "remote_addr",
    "method",
    "content_type",
    "headers",
    "body",
)
#: The events columns the receive path writes (``event_row``).
EVENT_COLUMNS = (
    "group_id",
    "delivery_id",
    "type",
    "status",
    "dedupe_key",
    "payload",
    "received_at",
    "occurred_at",
    "attempts",
    "next_attempt_at",
)


class _Statements:
    """The writer's inserts for the database's dialect, run on the driver's cursor."""

    def __init__(self, database: Storage) -> None:
        dialect = database.engine.dialect
        #: Where the database holds the only write lock (SQLite), the writer numbers a batch's
        #: deliveries itself and inserts them in one statement (sqlite3's executemany returns
        #: no rows); elsewhere (psycopg) each row's id comes back from one pipelined statement.
        self.numbers_deliveries = database.numbers_deliveries
        if self.numbers_deliveries:
            self.deliveries = DriverStatement(insert(Delivery), ("id", *DELIVERY_COLUMNS), dialect)
            self.last_delivery_id = DriverQuery(select(func.max(Delivery.id)), dialect)
        else:
            returning = insert(Delivery).returning(Delivery.id)
            self.numbered_deliveries = ColumnarInsert(returning, DELIVERY_COLUMNS, dialect)
        self.new_events = database.many_rows_insert(insert_new_events(database), EVENT_COLUMNS)
        #: The events of one delivery, read back when some of a batch's were found taken.
        self.stored_keys = DriverQuery(_STORED_KEYS, dialect)
        self.events = database.many_rows_insert(insert(Event), EVENT_COLUMNS)
        #: A group's state, and the database's clock (which events are due by, as workers read
        #: due times on it) in the same round trip.
        self.group_state = DriverQuery(
            select(Group.id, *GROUP_STATE, *database.clock_query.selected_columns)
            .where(Group.id == bindparam("id"))
            .with_for_update(read=True),
            dialect,
        )
        self.clock = DriverQuery(database.clock_query, dialect)
        dbapi = dialect.loaded_dbapi
        #: What the database says when it refuses one delivery's values.
        self.refusals = (IntegrityError, DataError, dbapi.IntegrityError, dbapi.DataError)
        #: Errors of the database, wrapped by SQLAlchemy or raised by the driver's cursor.
        self.database_errors = (DBAPIError, dbapi.Error)


class NotStorable(StoreUnavailable):
    """The database refused this delivery's values, and only this delivery's."""


def insert_new_events(database: Storage) -> Any:
    """An insert of events that skips those whose key is taken: the unique index decides,
    across processes too."""
    return database.insert(Event).on_conflict_do_nothing(
        index_elements=["group_id", "dedupe_key"], index_where=text("status <> 'duplicate'")
    )


class GroupChanged(Exception):
    """The group changed after the delivery was verified: look it up again and start over."""


@dataclass(frozen=True)
class NewDelivery:
    """A verified, parsed delivery ready to be stored."""

    group_id: str
    registered_events: frozenset[str]
    method: str
    remote_addr: str | None
    content_type: str | None
    headers: dict[str, str]
    body: bytes
    received_at: datetime
    events: Sequence[IncomingEvent]
    #: Whether its group is paused: its events are stored as held rather than queued.
    paused: bool = False
    #: The group's :func:`group_state` when verified; the delivery is stored only if it still
    #: holds at commit, so a group read from a cache cannot outlive a rotation or a disabling.
    group_state: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Receipt:
    """What the sender is told: the stored delivery and how its events were taken."""

    delivery_id: int
    accepted: int
    duplicates: int
    ignored: int


class Slot:
    """Where one delivery's outcome is left and its request waits for it.

    A bare gate (:func:`gateway.storage.greenlets.gate_factory`), closed from the start and
    opened once the outcome is in: the cheapest thing a request can block on, with threads or
    with greenlets (a Future wraps a condition around a lock, and waking requests is the
    inbox's hottest path after the database). The wait has no timeout of its own, which under gevent
    would start and cancel a timer for every delivery: the inbox's watchdog fails the slots
    that outlive their deadline instead.
    """

    __slots__ = ("_outcome", "_ready", "deadline")

    def __init__(self, deadline: float, ready: Any) -> None:
        self._ready = ready
        self._outcome: Receipt | Exception | None = None
        #: On the ``time.monotonic`` clock.
        self.deadline = deadline

    def set(self, outcome: Receipt | Exception) -> None:
        """Called once (:meth:`Inbox._resolve` sees to that)."""
        self._outcome = outcome
        self._ready.release()

    def wait(self) -> Receipt:
        """The receipt, or the exception it was resolved with."""
        self._ready.acquire()
        if isinstance(self._outcome, Exception):
            raise self._outcome
        assert self._outcome is not None
        return self._outcome


_Queued = tuple[NewDelivery, Slot]


class Inbox:
    """Stores deliveries through one writer thread per process (group commit)."""

    def __init__(
        self, database: Storage, max_batch: int = 128, commit_timeout_s: float = 4.0
    ) -> None:
        self._db = database
        self._max_batch = max_batch
        self._commit_timeout_s = commit_timeout_s
        self._queue: queue.Queue[_Queued] = queue.Queue()
        #: The slots not resolved yet, oldest first; popping one is what resolves it.
        self._unresolved: dict[Slot, bool] = {}
        self._writer_pid: int | None = None
        self._new_gate = gate_factory()
        self._start_lock = threading.Lock()
        self._sql = _Statements(database)
        self._outage = _Outage(self._sql.database_errors)

    def store(self, delivery: NewDelivery) -> Receipt:
        """Block until ``delivery`` is committed; StoreUnavailable if it cannot be in time."""
        self._ensure_writer()
        slot = self.slot()
        self._queue.put((delivery, slot))
        return slot.wait()

    def slot(self) -> Slot:
        """A new slot, failed by the watchdog unless resolved within the commit timeout."""
        slot = Slot(time.monotonic() + self._commit_timeout_s, self._new_gate())
        self._unresolved[slot] = True
        return slot

    def _resolve(self, slot: Slot, outcome: Receipt | Exception) -> None:
        """The first outcome wins: the writer's, or the watchdog's when it is too late."""
        # One atomic pop decides between the writer and the watchdog, threads or greenlets.
        if self._unresolved.pop(slot, False):
            slot.set(outcome)

    def _ensure_writer(self) -> None:
        # Gunicorn forks workers after import: each process needs its own writer thread.
        if self._writer_pid == os.getpid():
            return
        with self._start_lock:
            if self._writer_pid != os.getpid():
                self._queue = queue.Queue()
                self._unresolved = {}
                self._new_gate = gate_factory()
                for target, name in ((self._run, "inbox-writer"), (self._watch, "inbox-watchdog")):
                    threading.Thread(target=target, name=name, daemon=True).start()
                self._writer_pid = os.getpid()

    def _watch(self) -> None:
        """Fail every slot still unresolved at its deadline, so its sender can retry."""
        while True:
            time.sleep(WATCH_INTERVAL_S)
            now = time.monotonic()
            for slot in list(self._unresolved):
                if slot.deadline > now:
                    break
                self._resolve(slot, StoreUnavailable(LATE))

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            let_ready_requests_run()
            outcomes = self._commit(batch, top_up=True)
            told = [(d, outcome) for (d, _), outcome in zip(batch, outcomes, strict=True)]
            # First: a sender's answer never precedes its line, nor its count.
            self._log_commit(told)
            _count_commit(told)
            # Woken after the commit has let go of the write lock, which other processes await.
            for (_, slot), outcome in zip(batch, outcomes, strict=True):
                self._resolve(slot, outcome)

    def _log_commit(self, told: _Told) -> None:
        """The deliveries a commit stored, those the database refused one by one, and the
        start or the end of an outage (:class:`_Outage`)."""
        stored = [(d, outcome) for d, outcome in told if isinstance(outcome, Receipt)]
        _log_stored(stored)
        refused = [(d, outcome) for d, outcome in told if isinstance(outcome, NotStorable)]
        if refused:
            _log_not_stored(refused, self._sql.database_errors)
        unavailable = [
            (d, outcome)
            for d, outcome in told
            if isinstance(outcome, StoreUnavailable) and not isinstance(outcome, NotStorable)
        ]
        if unavailable:
            self._outage.failed(unavailable)
        elif stored:
            self._outage.over()

    def _top_up(self, batch: list[_Queued]) -> None:
        """Add whatever has queued meanwhile, up to the largest batch."""
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _commit(self, batch: list[_Queued], *, top_up: bool = False) -> list[Receipt | Exception]:
        """Each delivery's outcome, in order.

        With ``top_up``, ``batch`` first takes in whatever has queued meanwhile, once the
        write lock is ours: the longer the wait for it, the more deliveries share the commit.
        """
        try:
            return list(self._write_past_deadlocks(batch, top_up))
        except self._sql.refusals:
            # One bad apple must not sink its neighbours: retry each on its own.
            if len(batch) > 1:
                return [self._commit([item])[0] for item in batch]
            return [NotStorable("the delivery could not be stored")]
        except StoreUnavailable as unavailable:
            return [unavailable] * len(batch)
        except Exception as exc:
            error = StoreUnavailable()
            error.__cause__ = exc
            return [error] * len(batch)

    def _write_past_deadlocks(
        self, batch: list[_Queued], top_up: bool
    ) -> list[Receipt | GroupChanged]:
        """:meth:`_write`, again when PostgreSQL aborted it to end a deadlock.

        Two processes storing the same new events in different orders wait for each other on
        the dedupe index until one is aborted; written again, its events are the other's
        duplicates. A 503 would have its senders send them again only to learn as much.
        """
        for _ in range(WRITES_PAST_DEADLOCKS - 1):
            try:
                return self._write(batch, top_up)
            except Exception as exc:
                if _sqlstate(exc) != DEADLOCK_DETECTED:
                    raise
                log.info("a commit of %d deliveries deadlocked; writing it again", len(batch))
        return self._write(batch, top_up)

    def _write(self, batch: list[_Queued], top_up: bool) -> list[Receipt | GroupChanged]:
        """Store the deliveries whose group is as they were verified against, in one commit."""
        with translate_outage(), self._db.driver_transaction() as cursor:
            if top_up:
                self._top_up(batch)
            deliveries = [delivery for delivery, _ in batch]
            stale, clock = self._stale(cursor, deliveries)
            current = [d for i, d in enumerate(deliveries) if i not in stale]
            receipts = iter(self._insert(cursor, current, clock))
        return [GroupChanged() if i in stale else next(receipts) for i in range(len(deliveries))]

    def _stale(self, cursor: Any, deliveries: list[NewDelivery]) -> tuple[set[int], Any]:
        """Positions of the deliveries whose group no longer has the state they were verified
        against, and the database's clock as read with the groups (None if none was read).

        Read inside the writing transaction, which holds SQLite's write lock (and, on
        PostgreSQL, a share lock on the group rows): a change committed before is seen here,
        and one committed after waits until these deliveries are stored.
        """
        states = {}
        clock = None
        for group_id in {d.group_id for d in deliveries if d.group_state is not None}:
            for row in self._sql.group_state.rows(cursor, {"id": group_id}):
                states[row[0]] = tuple(row[1:-1])
                clock = row[-1]
        stale = {
            i
            for i, d in enumerate(deliveries)
            if d.group_state is not None and states.get(d.group_id) != d.group_state
        }
        return stale, clock

    def _insert(self, cursor: Any, deliveries: list[NewDelivery], clock: Any) -> list[Receipt]:
        if not deliveries:
            return []
        ids = self._insert_deliveries(cursor, deliveries)
        if clock is None:
            ((clock,),) = self._sql.clock.rows(cursor, {})
        due = self._db.clock_reading(clock)
        candidates: list[dict[str, Any]] = []
        repeats: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for delivery, delivery_id in zip(deliveries, ids, strict=True):
            for incoming in delivery.events:
                row = event_row(delivery, delivery_id, incoming, due)
                key = (delivery.group_id, incoming.dedupe_key)
                (repeats if key in seen else candidates).append(row)
                seen.add(key)
        inserted = self._insert_new(cursor, candidates, ids)
        repeats.extend(
            row for row in candidates if (row["group_id"], row["dedupe_key"]) not in inserted
        )
        for row in repeats:
            row["status"] = EventStatus.DUPLICATE
            row["next_attempt_at"] = None
        self._sql.events.execute_many(cursor, repeats)
        return _receipts(deliveries, ids, candidates, inserted)

    def _insert_deliveries(self, cursor: Any, deliveries: list[NewDelivery]) -> list[int]:
        """Insert the deliveries in one statement; their ids, in order."""
        rows = [_delivery_row(d) for d in deliveries]
        if not self._sql.numbers_deliveries:
            return self._sql.numbered_deliveries.inserted_ids(cursor, rows)
        ((last,),) = self._sql.last_delivery_id.rows(cursor, {})
        first = (last or 0) + 1
        ids = list(range(first, first + len(rows)))
        for row, delivery_id in zip(rows, ids, strict=True):
            row["id"] = delivery_id
        self._sql.deliveries.execute_many(cursor, rows)
        return ids

    def _insert_new(
        self, cursor: Any, candidates: list[dict[str, Any]], delivery_ids: list[int]
    ) -> set[tuple[str, str]]:
        """Insert the events whose key is not taken yet; the (group, key) of those inserted.

        In one statement for the whole batch; only when the database skipped some (a sender's
        retry) are the batch's events read back to learn which.
        """
        inserted = self._sql.new_events.execute_many(cursor, candidates)
        if inserted == len(candidates):
            return {(row["group_id"], row["dedupe_key"]) for row in candidates}
        return {
            (group_id, key)
            for delivery_id in delivery_ids
            for group_id, key in self._sql.stored_keys.rows(cursor, {"delivery_id": delivery_id})
        }


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver's error, raised as it is or wrapped by SQLAlchemy."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(original, "sqlstate", None)


def _delivery_row(d: NewDelivery) -> dict[str, Any]:
    """A deliveries row: each column is the NewDelivery field of the same name.

    The headers (text names, text values) are written by orjson, as JSON text the column
    stores as it is: the standard json module costs about as much as the rest of the row.
    """
    row = {column: getattr(d, column) for column in DELIVERY_COLUMNS}
    row["headers"] = JsonText(orjson.dumps(d.headers).decode())
    return row


def event_row(
    delivery: NewDelivery, delivery_id: int, incoming: IncomingEvent, due: datetime
) -> dict[str, Any]:
    """An events row, due at ``due`` (the database's clock) unless ignored; held instead of
    pending while its group is paused."""
    registered = subscribes(delivery.registered_events, incoming.type)
    return {
        "group_id": delivery.group_id,
        "delivery_id": delivery_id,
        "type": incoming.type,
        "status": _received_status(delivery, registered),
        "dedupe_key": incoming.dedupe_key,
        "payload": incoming.payload
        if incoming.payload_json is None
        else JsonText(incoming.payload_json),
        "received_at": delivery.received_at,
        "occurred_at": incoming.occurred_at,
        "attempts": 0,
        "next_attempt_at": due if registered else None,
    }


def _received_status(delivery: NewDelivery, registered: bool) -> EventStatus:
    if not registered:
        return EventStatus.IGNORED
    return EventStatus.HELD if delivery.paused else EventStatus.PENDING


#: Each delivery of a commit with what its sender is told.
_Told = list[tuple[NewDelivery, Receipt | Exception]]


def _log_stored(stored: list[tuple[NewDelivery, Receipt]]) -> None:
    """One line per commit (not per delivery, which would cost the receive path more than a
    tenth of its time)."""
    if stored and log.isEnabledFor(logging.INFO):  # its fields are not built for nothing
        ids = [str(receipt.delivery_id) for _, receipt in stored]
        log.info(
            "stored %d deliveries: %s",
            len(ids),
            " ".join(ids),
            extra={
                "delivery_ids": ids,
                "group_ids": sorted({d.group_id for d, _ in stored}),
                "events": sum(len(d.events) for d, _ in stored),
            },
        )


def _log_not_stored(
    failed: Sequence[tuple[NewDelivery, StoreUnavailable]],
    database_errors: tuple[type[BaseException], ...],
    more: str = "",
) -> None:
    """One line for deliveries not stored, with what their commit failed with, and ``more``."""
    error = failed[0][1]
    cause = error.__cause__
    log.warning(
        "%d deliveries not stored (told 503): %s%s%s",
        len(failed),
        error.message,
        f" ({' '.join(str(cause).split())[:300]})" if cause else "",
        more,
        # A database's refusal says it all; anything else is a bug worth its traceback.
        exc_info=None if cause is None or isinstance(cause, database_errors) else cause,
        extra={"deliveries": len(failed), "group_ids": sorted({d.group_id for d, _ in failed})},
    )


class _Outage:
    """What the log says while commits fail: the first failure, then nothing until a commit
    succeeds again, and then how long it lasted and how many deliveries were told 503
    meanwhile, by this process.

    A database that is down fails every commit, hundreds a second under load: a line for
    each would bury the two that matter.
    """

    def __init__(self, database_errors: tuple[type[BaseException], ...]) -> None:
        self._database_errors = database_errors
        #: When the outage started (``time.monotonic``); None while commits succeed.
        self._since: float | None = None
        self._not_stored = 0

    def failed(self, failed: list[tuple[NewDelivery, StoreUnavailable]]) -> None:
        if self._since is None:
            self._since = time.monotonic()
            until = "; those not stored until a commit succeeds again are counted, not logged"
            _log_not_stored(failed, self._database_errors, until)
        self._not_stored += len(failed)

    def over(self) -> None:
        if self._since is None:
            return
        lasted = time.monotonic() - self._since
        log.warning(
            "the database takes commits again after %.1f s: %d deliveries were not stored"
            " (told 503) meanwhile",
            lasted,
            self._not_stored,
            extra={"deliveries": self._not_stored, "outage_s": round(lasted, 3)},
        )
        self._since = None
        self._not_stored = 0


def _count_commit(told: _Told) -> None:
    """Count a commit's deliveries and their events, with one increment per group and outcome.

    An increment of a metric that several processes share takes a lock, checks the process id
    and writes the metric's file: once per delivery and disposition, the counts cost the
    receive path more than checking a delivery's signature does.
    """
    totals: collections.Counter[tuple[Counter, str, str]] = collections.Counter()
    for delivery, outcome in told:
        if not isinstance(outcome, Receipt):
            continue  # a refusal is counted where it is answered
        totals[DELIVERIES, delivery.group_id, "accepted"] += 1
        for disposition, count in (
            ("accepted", outcome.accepted),
            ("duplicate", outcome.duplicates),
            ("ignored", outcome.ignored),
        ):
            if count:
                totals[EVENTS_RECEIVED, delivery.group_id, disposition] += count
    for (metric, group, label), count in totals.items():
        labelled(metric, group, label).inc(count)


def _receipts(
    deliveries: list[NewDelivery],
    ids: list[int],
    candidates: list[dict[str, Any]],
    inserted: set[tuple[str, str]],
) -> list[Receipt]:
    """Count per delivery: new events taken, new events ignored, and the rest duplicates."""
    counts = {delivery_id: [0, 0] for delivery_id in ids}  # accepted, ignored
    for row in candidates:
        if (row["group_id"], row["dedupe_key"]) in inserted:
            counts[row["delivery_id"]][row["status"] == EventStatus.IGNORED] += 1
    return [
        Receipt(delivery_id, accepted, len(d.events) - accepted - ignored, ignored)
        for d, (delivery_id, (accepted, ignored)) in zip(deliveries, counts.items(), strict=True)
    ]
