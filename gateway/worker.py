"""The worker: claim pending events in batches, route, map, upsert, record what happened.

Claims are leases: a worker that dies mid-batch simply lets them expire and another worker takes
the events over. Upserts are idempotent and the local store commits together with the event's
status, so processing an event twice changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, column, func, select, update, values
from sqlalchemy.orm import Session

from gateway.bulk import insert_rows, rows_by_keys, update_rows
from gateway.config import Settings
from gateway.core import Gateway
from gateway.errors import GatewayError, MappingError, NotFound
from gateway.events import mapping_context
from gateway.mapping import CompiledMapping, PlannedUpsert, SkippedUpsert
from gateway.mapping.functions import show
from gateway.mapping_store import MappingStore
from gateway.models import (
    Event,
    EventResult,
    EventStatus,
    Group,
    TargetUsage,
    Webhook,
    WriteMark,
)
from gateway.routing import Route, compile_route, routes_for, why_unrouted
from gateway.staleness import compare
from gateway.targets.base import UpsertRequest, UpsertResult

log = logging.getLogger(__name__)


@dataclass
class Planned:
    """One upsert an event asks for through one webhook record."""

    event: Event
    route: Route
    mapping_version: int
    upsert: PlannedUpsert
    target: str
    result: UpsertResult | None = None
    stale: bool = False
    #: An earlier attempt of the event applied this very upsert: it is not sent again.
    applied: bool = False
    #: What the stale-write guard has to say about this upsert, for the history.
    note: str | None = None


@dataclass(frozen=True)
class Skipped:
    """One upsert of a webhook record's mapping that the event makes no record for, and why."""

    route: Route
    mapping_version: int
    upsert: SkippedUpsert
    target: str


@dataclass
class Outcome:
    """Where an event ends up after this attempt, and why."""

    event: Event
    status: str = EventStatus.DELIVERED
    message: str | None = None
    transient: bool = False
    #: The soonest a retry can pass, as the targets said (a pause over an API limit).
    retry_after_s: float = 0.0
    planned: list[Planned] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: History columns naming what a failure before any upsert concerns, as far as known.
    about: dict[str, Any] = field(default_factory=dict)


class MappingsOfBatch:
    """The mappings a batch uses, each looked up once for the whole batch.

    A record following a mapping's newest version would otherwise ask the database which
    version that is for every event.
    """

    def __init__(self, store: MappingStore) -> None:
        self._store = store
        self._found: dict[tuple[str, int | None], CompiledMapping | NotFound] = {}

    def get(self, name: str, version: int | None) -> CompiledMapping:
        key = (name, version)
        if key not in self._found:
            try:
                self._found[key] = self._store.compiled(name, version)
            except NotFound as exc:
                self._found[key] = exc
        found = self._found[key]
        if isinstance(found, NotFound):
            raise found
        return found


class Worker:
    """Processes the queue until told to stop."""

    def __init__(self, gw: Gateway, worker_id: str | None = None) -> None:
        self.gw = gw
        self.settings = gw.settings
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    # --- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.id)
        failures = 0
        while not stop.is_set():
            self.gw.alerts.tick_if_due()
            try:
                handled = self.run_once()
                failures = 0
            except GatewayError as exc:
                failures += 1
                cause = " ".join(str(exc.__cause__ or "").split())[:300]
                log.warning("worker %s: %s%s", self.id, exc.message, f" ({cause})" if cause else "")
                handled = 0
            except Exception:
                # A bug must not stop the queue: the batch's leases expire and it is claimed
                # again, each event at most max_attempts times (see claim).
                failures += 1
                log.exception("worker %s: unexpected error; its batch will be retried", self.id)
                handled = 0
            if handled == 0:
                stop.wait(_idle_wait(self.settings.worker_poll_s, failures))
        log.info("worker %s stopped", self.id)

    def run_once(self) -> int:
        """Claim one batch and process it; the number of events handled."""
        events = self.claim()
        if (
            events
            and self.settings.batch_window_s > 0
            and len(events) < self.settings.worker_batch_size
        ):
            # A burst arriving over a second or two shares target calls if we wait a little.
            time.sleep(self.settings.batch_window_s)
            events += self.claim(self.settings.worker_batch_size - len(events))
        if events:
            self.process(events)
        return len(events)

    def drain(self, max_rounds: int = 1000) -> int:
        """Process until nothing is due (tests, ``gateway events replay --now``)."""
        total = 0
        for _ in range(max_rounds):
            handled = self.run_once()
            if not handled:
                break
            total += handled
        return total

    # --- claiming ------------------------------------------------------------------------

    def claim(self, limit: int | None = None) -> list[Event]:
        """Lease up to ``limit`` due events: expired leases first, then pending events.

        Both are found in the queue index (status, due time) in its own order, so a claim reads
        about as many rows as it takes. In id order it would walk past every settled event older
        than the first due one: after a large backlog drains, most of the table.

        An expired lease is an attempt that never finished: its worker stopped, or held the
        batch past ``claim_timeout_s``. Its history says so, and an event whose attempts are
        all used up that way is dead rather than claimed again, so that one event that takes
        its worker down cannot do so forever.
        """
        now = datetime.now(UTC)
        wanted = limit or self.settings.worker_batch_size
        lease = {
            "status": EventStatus.PROCESSING,
            "claimed_by": self.id,
            "claim_expires_at": now + timedelta(seconds=self.settings.claim_timeout_s),
            "attempts": Event.attempts + 1,
        }
        expired = and_(Event.status == EventStatus.PROCESSING, Event.claim_expires_at < now)
        exhausted = Event.attempts >= self.settings.max_attempts
        with self.gw.db.session() as session:
            given_up = list(
                session.scalars(
                    _lease(and_(expired, exhausted), wanted, {**_GIVEN_UP, "processed_at": now})
                )
            )
            events = list(session.scalars(_lease(and_(expired, ~exhausted), wanted, lease)))
            dead = [_unfinished_row(e, now, 0, EventStatus.DEAD) for e in given_up]
            again = [_unfinished_row(e, now, 1, EventStatus.PENDING) for e in events]
            insert_rows(session, EventResult.__table__, dead + again)
            if len(events) < wanted:
                pending = and_(Event.status == EventStatus.PENDING, Event.next_attempt_at <= now)
                events += session.scalars(_lease(pending, wanted - len(events), lease))
        for event, row in zip(given_up, dead, strict=True):
            _log_event(event, EventStatus.DEAD, row["message"])
        return sorted(events, key=lambda e: e.id)

    # --- processing ----------------------------------------------------------------------

    def process(self, events: Sequence[Event]) -> None:
        groups, routes = self._configuration({e.group_id for e in events})
        mappings = MappingsOfBatch(self.gw.mappings)
        plan = partial(self._plan, groups=groups, routes=routes, mappings=mappings)
        outcomes = [self._plan_or_fail(event, plan) for event in events]
        planned = [p for o in outcomes for p in o.planned]
        _mark_applied(planned, self._applied_before(planned))
        if self.gw.db.is_sqlite:
            # One host, and SQLite already serialises writers: call remote targets before
            # taking the write lock, so deliveries never wait on a CRM, but under the records
            # lock, so other workers' remote writes wait; the local store's stale check
            # happens under the write lock.
            remote = [p for p in planned if not self.gw.targets.is_local(p.target)]
            with self.gw.db.records_lock() if remote else contextlib.nullcontext():
                with self.gw.db.read_session() as session:
                    _mark_stale(remote, _marks(session, remote))
                usage = self._upsert_remote(outcomes)
                with self.gw.db.session() as session:
                    # A remote upsert of a lease lost meanwhile goes unrecorded: the worker
                    # that took the event over sends it again, to the same effect.
                    leased = self._still_leased(session, outcomes)
                    local = [
                        p for o in leased for p in o.planned if self.gw.targets.is_local(p.target)
                    ]
                    _mark_stale(local, _marks(session, local))
                    self._finish(session, leased, usage)
            return
        for part in _lock_sized(outcomes, RECORD_LOCKS_PER_TRANSACTION):
            with self.gw.db.session() as session:
                leased = self._still_leased(session, part)
                planned = [p for o in leased for p in o.planned]
                # Workers on many hosts: hold each target record's lock from the stale check
                # to the commit, so two events for one record are never applied concurrently.
                _lock_records(session, planned)
                _mark_stale(planned, _marks(session, planned))
                usage = self._upsert_remote(leased)
                self._finish(session, leased, usage)

    def _still_leased(self, session: Session, outcomes: list[Outcome]) -> list[Outcome]:
        """The outcomes whose event this worker still leases, their rows locked to the commit.

        A batch held past ``claim_timeout_s`` may have lost events to another worker's claim,
        which takes them over or gives them up as dead; this attempt's results would overwrite
        what that worker decided, so they are dropped. While locked, an event is skipped by
        every claim (``SKIP LOCKED``), so a lease held to here is held to the commit.
        """
        attempts = {o.event.id: o.event.attempts for o in outcomes}
        held: set[int] = set()
        for ids in _chunks(list(attempts), 500):
            query = (
                select(Event.id, Event.attempts)
                .where(
                    Event.id.in_(ids),
                    Event.status == EventStatus.PROCESSING,
                    Event.claimed_by == self.id,
                )
                .with_for_update()
            )
            held.update(i for i, n in session.execute(query) if attempts[i] == n)
        lost = [o.event.id for o in outcomes if o.event.id not in held]
        if lost:
            log.warning(
                "worker %s: lease of events %s ran out and was taken over; their results of"
                " this attempt are dropped",
                self.id,
                " ".join(map(str, lost)),
                extra={"worker": self.id, "event_ids": [str(i) for i in lost]},
            )
        return [o for o in outcomes if o.event.id in held]

    def _finish(
        self, session: Session, outcomes: list[Outcome], usage: dict[str, tuple[int, int]]
    ) -> None:
        self._upsert_local(session, outcomes)
        for outcome in outcomes:
            _settle(outcome, self.settings)
        self._record(session, outcomes)
        _save_usage(session, usage)
        _log(self.id, outcomes)

    def _configuration(
        self, group_ids: set[str]
    ) -> tuple[dict[str, Group], dict[str, list[Route]]]:
        with self.gw.db.read_session() as session:
            groups = {
                g.id: g for g in session.scalars(select(Group).where(Group.id.in_(group_ids)))
            }
            webhooks = session.scalars(
                select(Webhook)
                .where(
                    Webhook.group_id.in_(group_ids),
                    Webhook.active,
                    Webhook.is_template.is_(False),
                )
                .order_by(Webhook.created_at, Webhook.id)
            )
            routes: dict[str, list[Route]] = defaultdict(list)
            for w in webhooks:
                routes[w.group_id].append(
                    compile_route(
                        w.id, w.label, w.events, w.filter, w.mapping_name, w.mapping_version
                    )
                )
        return groups, routes

    def _plan_or_fail(self, event: Event, plan: Callable[[Event], Outcome]) -> Outcome:
        """``plan(event)``, with an error nobody foresaw failing this event alone, not the batch."""
        try:
            return plan(event)
        except Exception:
            log.exception("worker %s: unexpected error planning event %s", self.id, event.id)
            return _fail(
                Outcome(event), "an unexpected error occurred while mapping it; it has been logged"
            )

    def _plan(
        self,
        event: Event,
        groups: dict[str, Group],
        routes: dict[str, list[Route]],
        mappings: MappingsOfBatch,
    ) -> Outcome:
        outcome = Outcome(event)
        group = groups.get(event.group_id)
        if group is None:
            return _fail(outcome, "the event's webhook group was deleted")
        context = mapping_context(event, group)
        candidates = routes.get(group.id, [])
        try:
            matched = routes_for(candidates, event.type, context)
        except MappingError as exc:
            return _fail(outcome, exc.message, {"webhook_id": exc.webhook_id})
        if not matched:
            outcome.status = EventStatus.UNROUTED
            outcome.message = why_unrouted(candidates, event.type)
            return outcome
        target = group.target or self.gw.targets.default_name()
        for route in matched:
            if not route.mapping_name:
                return _fail(
                    outcome,
                    f"webhook record {route.label!r} has no mapping; attach one and replay",
                    _about(route),
                )
            try:
                mapping = mappings.get(route.mapping_name, route.mapping_version)
            except NotFound as exc:
                about = _about(route, route.mapping_version)
                return _fail(outcome, f"webhook record {route.label!r}: {exc.message}", about)
            try:
                plan = mapping.explained_plan(context)
            except MappingError as exc:
                about = _about(route, mapping.version, exc.upsert_key)
                return _fail(outcome, f"webhook record {route.label!r}: {exc.message}", about)
            version = mapping.version
            outcome.planned += [Planned(event, route, version, u, target) for u in plan.upserts]
            outcome.skipped += [Skipped(route, version, u, target) for u in plan.skipped]
        return outcome

    def _applied_before(self, planned: list[Planned]) -> dict[tuple[Any, ...], EventResult]:
        """The upserts that earlier attempts of retried events applied, since their last replay.

        A batch a target failed part-way through leaves some of an event's upserts applied and
        others to retry; sending those again would apply them twice, and would overwrite
        whatever another event wrote to the record meanwhile.
        """
        replayed_after = {
            p.event.id: p.event.attempts_before_replay for p in planned if p.event.attempts > 1
        }
        if not replayed_after:
            return {}
        query = select(EventResult).where(
            EventResult.event_id.in_(replayed_after),
            EventResult.outcome.in_(("created", "updated")),
        )
        with self.gw.db.read_session() as session:
            rows = session.scalars(query).all()
        return {
            _applied_key(row): row for row in rows if row.attempt > replayed_after[row.event_id]
        }

    def _upsert_remote(self, outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
        """Send each remote target its upserts; the API usage each one reported back."""
        usage: dict[str, tuple[int, int]] = {}
        by_target = _due_upserts(outcomes, lambda name: not self.gw.targets.is_local(name))
        for name, planned in by_target.items():
            target = None
            try:
                target = self.gw.targets.remote(name)
                results = target.upsert([_request(p) for p in planned])
            except GatewayError as exc:
                results = [UpsertResult.from_error(exc)] * len(planned)
            # Read after a refused batch too: over the org's limit is when the admin looks.
            reported = getattr(target, "api_usage", None)
            if reported is not None:
                usage[name] = reported
            for p, result in zip(planned, results, strict=True):
                p.result = result
        return usage

    def _upsert_local(self, session: Session, outcomes: list[Outcome]) -> None:
        by_target = _due_upserts(outcomes, self.gw.targets.is_local)
        for name, planned in by_target.items():
            target = self.gw.targets.open(name, session)
            for p, result in zip(
                planned, target.upsert([_request(p) for p in planned]), strict=True
            ):
                p.result = result

    def _record(self, session: Session, outcomes: list[Outcome]) -> None:
        now = datetime.now(UTC)
        results: list[dict[str, Any]] = []
        marks: dict[tuple[str, str, str], tuple[Any, int]] = {}
        for outcome in outcomes:
            results += _result_rows(outcome, now)
            for p in outcome.planned:
                if p.result is not None and p.result.ok and p.upsert.order_value is not None:
                    marks[(p.target, p.upsert.object, p.upsert.external_id)] = (
                        p.upsert.order_value,
                        outcome.event.id,
                    )
        insert_rows(session, EventResult.__table__, results)
        _save_marks(session, marks)
        changes = [_event_changes(o, now, self.settings) for o in outcomes]
        update_rows(session, Event.__table__, ("id",), changes)


# --- pure helpers ------------------------------------------------------------------------


#: The longest a worker waits between tries while the database keeps failing.
MAX_FAILING_WAIT_S = 10.0


def _idle_wait(poll_s: float, failures: int) -> float:
    """The poll interval, doubling with each failure in a row up to MAX_FAILING_WAIT_S: an
    outage should not fill the log with a line every poll, nor a recovery wait long."""
    return min(MAX_FAILING_WAIT_S, poll_s * 2 ** min(failures, 32)) if failures else poll_s


def _lease(due: ColumnElement[bool], limit: int, lease: dict[str, Any]) -> Any:
    """Lease ``limit`` events matching ``due``, skipping rows other workers are leasing."""
    candidates = (
        select(Event.id)
        .where(due)
        .order_by(Event.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (
        update(Event)
        .where(Event.id.in_(candidates.scalar_subquery()))
        .values(**lease)
        .returning(Event)
        .execution_options(synchronize_session=False)
    )


#: What an event whose last attempt never finished becomes when it has no attempt left.
_GIVEN_UP = {
    "status": EventStatus.DEAD,
    "last_error": "its last attempt never finished and no attempt is left; replay it once the"
    " cause is found (the worker's log has it)",
    "claimed_by": None,
    "claim_expires_at": None,
    "next_attempt_at": None,
}


def _unfinished_row(event: Event, now: datetime, leased_since: int, status: str) -> dict[str, Any]:
    """The history row of an attempt that never finished; ``leased_since``: attempts counted
    since it began (1 when the event was just leased again)."""
    attempt = event.attempts_before_replay + event.attempts - leased_since
    ending = "no attempt is left" if status == EventStatus.DEAD else "it is tried again"
    return {
        **EMPTY_RESULT,
        "event_id": event.id,
        "attempt": attempt,
        "at": now,
        "status": status,
        "message": f"attempt {attempt} never finished: its worker stopped, or held it past the"
        f" claim timeout; {ending}",
    }


def _fail(outcome: Outcome, message: str, about: dict[str, Any] | None = None) -> Outcome:
    outcome.status = EventStatus.FAILED
    outcome.message = message
    outcome.planned = []
    outcome.skipped = []
    outcome.about = about or {}
    return outcome


def _about(
    route: Route, mapping_version: int | None = None, upsert_key: str | None = None
) -> dict[str, Any]:
    """The history columns naming the webhook record, mapping version and upsert of a row."""
    return {
        "webhook_id": route.webhook_id,
        "mapping_name": route.mapping_name,
        "mapping_version": mapping_version,
        "upsert_key": upsert_key,
    }


def _record_key(p: Planned) -> tuple[str, str, str]:
    return (p.target, p.upsert.object, p.upsert.external_id)


#: Record locks one PostgreSQL transaction takes at most, unless one event needs more. All
#: sessions share the server's lock table (max_locks_per_transaction x max_connections: 6,400
#: by default), and a batch that touches 15,000 records would fill it whatever its size in events.
RECORD_LOCKS_PER_TRANSACTION = 1000


def _lock_sized(outcomes: list[Outcome], budget: int) -> Iterator[list[Outcome]]:
    """The batch's outcomes in runs, in order, each touching at most ``budget`` records (an
    event is never split: its upserts commit together)."""
    run: list[Outcome] = []
    records: set[tuple[str, str, str]] = set()
    for outcome in outcomes:
        mine = {_record_key(p) for p in outcome.planned}
        if run and len(records | mine) > budget:
            yield run
            run, records = [], set()
        run.append(outcome)
        records |= mine
    if run:
        yield run


def _lock_records(session: Session, planned: list[Planned]) -> None:
    """PostgreSQL advisory locks on every target record, in one global order (no deadlocks)."""
    keys = sorted({_lock_id(_record_key(p)) for p in planned})
    for start in range(0, len(keys), 1000):
        session.execute(
            select(func.pg_advisory_xact_lock(column("k"))).select_from(
                values(column("k", BigInteger), name="keys").data(
                    [(k,) for k in keys[start : start + 1000]]
                )
            )
        )


def _lock_id(key: tuple[str, str, str]) -> int:
    digest = hashlib.blake2b("\x1f".join(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _marks(session: Session, planned: list[Planned]) -> dict[tuple[str, str, str], Any]:
    """The ordering value that last wrote each record the batch will touch."""
    keys = sorted({_record_key(p) for p in planned if p.upsert.guarded})
    columns = ("target", "object", "external_id", "order_value")
    return {
        (t, o, x): value
        for t, o, x, value in rows_by_keys(session, WriteMark.__table__, keys, columns)
    }


def _mark_stale(planned: list[Planned], marks: dict[tuple[str, str, str], Any]) -> None:
    """Skip upserts older than what last wrote the record; later events in the batch count too.

    A value that cannot be ordered against the last one (``gateway.staleness``), or a null one,
    is written, and its history says so.
    """
    current = dict(marks)
    for p in planned:
        if not p.upsert.guarded or p.applied:
            continue
        value = p.upsert.order_value
        key = _record_key(p)
        if value is None:
            if key in current:
                p.note = (
                    f"order_by yields null, so this write was not checked against"
                    f" {show(current[key])}, the value that last wrote the record"
                )
            continue
        if key in current:
            order = compare(value, current[key])
            if order == -1:
                p.stale = True
                p.note = f"order_by value {show(value)} is older than {show(current[key])}"
                continue
            if order is None:
                p.note = (
                    f"order_by value {show(value)} cannot be ordered against"
                    f" {show(current[key])}; written anyway"
                )
        current[key] = value


def _applied_key(row: EventResult) -> tuple[Any, ...]:
    """What makes two attempts' upserts the same: event, webhook record, mapping version,
    upsert and record (see :func:`_planned_key`)."""
    record = (row.target, row.object, row.external_id)
    return (row.event_id, row.webhook_id, row.mapping_version, row.upsert_key, *record)


def _planned_key(p: Planned) -> tuple[Any, ...]:
    return (p.event.id, p.route.webhook_id, p.mapping_version, p.upsert.key, *_record_key(p))


def _mark_applied(planned: list[Planned], applied: dict[tuple[Any, ...], EventResult]) -> None:
    for p in planned:
        earlier = applied.get(_planned_key(p))
        if earlier is not None:
            p.applied = True
            p.note = f"applied by attempt {earlier.attempt} ({earlier.outcome}); not sent again"


def _due_upserts(outcomes: Iterable[Outcome], wanted: Any) -> dict[str, list[Planned]]:
    by_target: dict[str, list[Planned]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.status != EventStatus.DELIVERED:
            continue
        for p in outcome.planned:
            if not p.stale and not p.applied and wanted(p.target):
                by_target[p.target].append(p)
    return by_target


def _request(p: Planned) -> UpsertRequest:
    return p.upsert.request(str(p.event.id))


def _settle(outcome: Outcome, settings: Settings) -> None:
    """Decide the event's status from its upserts' results."""
    if outcome.status != EventStatus.DELIVERED:
        return
    failed = [p for p in outcome.planned if p.result is not None and not p.result.ok]
    transient = [p for p in failed if p.result is not None and p.result.transient]
    permanent = [p for p in failed if p not in transient]
    if permanent:
        outcome.status = EventStatus.FAILED
        outcome.message = "; ".join(_describe(p) for p in permanent)
    elif transient:
        outcome.transient = True
        outcome.message = "; ".join(_describe(p) for p in transient)
        outcome.retry_after_s = max(p.result.retry_after_s for p in transient if p.result)
        exhausted = outcome.event.attempts >= settings.max_attempts
        outcome.status = EventStatus.DEAD if exhausted else EventStatus.PENDING
    elif outcome.planned and all(p.stale for p in outcome.planned):
        outcome.status = EventStatus.STALE
        outcome.message = "older than the event that last wrote its records"


def _describe(p: Planned) -> str:
    error = p.result.error if p.result else "no result"
    return f"{p.upsert.object} {p.upsert.external_id!r} (upsert {p.upsert.key!r}): {error}"


def _retry_delay(attempts: int, settings: Settings) -> float:
    """Exponential backoff with jitter, so a recovering target is not hit by a thundering herd."""
    delay: float = min(settings.retry_max_s, settings.retry_base_s * 2 ** max(attempts - 1, 0))
    return delay * (0.5 + random.random() / 2)


def _event_changes(outcome: Outcome, now: datetime, settings: Settings) -> dict[str, Any]:
    event = outcome.event
    retry = outcome.status == EventStatus.PENDING
    delay = max(_retry_delay(event.attempts, settings), outcome.retry_after_s)
    return {
        "id": event.id,
        "status": outcome.status,
        "last_error": outcome.message if outcome.status != EventStatus.DELIVERED else None,
        "processed_at": None if retry else now,
        "next_attempt_at": now + timedelta(seconds=delay) if retry else None,
        "claimed_by": None,
        "claim_expires_at": None,
    }


#: Every result row carries every column, so the rows of a batch go in one executemany.
EMPTY_RESULT = dict.fromkeys(
    (
        "webhook_id",
        "mapping_name",
        "mapping_version",
        "upsert_key",
        "target",
        "object",
        "external_id",
        "outcome",
        "record_id",
    )
)


def _result_rows(outcome: Outcome, now: datetime) -> list[dict[str, Any]]:
    """One history row per upsert of this attempt, made or skipped; else one for the event.

    Attempts keep their numbers across replays (``Event.attempts_before_replay``).
    """
    event = outcome.event
    base = {
        "event_id": event.id,
        "attempt": event.attempts_before_replay + event.attempts,
        "at": now,
        "status": outcome.status,
    }
    rows = [_planned_row(base, p) for p in outcome.planned]
    rows += [_skipped_row(base, s) for s in outcome.skipped]
    if not rows:  # not routed, or failed before any upsert: the event's own row says why
        rows.append({**base, **EMPTY_RESULT, **outcome.about, "message": outcome.message})
    return rows


def _planned_row(base: dict[str, Any], p: Planned) -> dict[str, Any]:
    result = p.result
    return {
        **base,
        **_about(p.route, p.mapping_version, p.upsert.key),
        "target": p.target,
        "object": p.upsert.object,
        "external_id": p.upsert.external_id,
        "outcome": _upsert_outcome(p),
        "record_id": result.record_id if result else None,
        "message": result.error if result and result.error else p.note,
    }


def _skipped_row(base: dict[str, Any], s: Skipped) -> dict[str, Any]:
    return {
        **base,
        **EMPTY_RESULT,
        **_about(s.route, s.mapping_version, s.upsert.key),
        "target": s.target,
        "object": s.upsert.object,
        "outcome": "skipped",
        "message": s.upsert.reason,
    }


def _upsert_outcome(p: Planned) -> str:
    if p.stale:
        return "stale"
    if p.result is None:  # applied by an earlier attempt, or skipped as its event failed
        return "skipped"
    if not p.result.ok:
        return "retry" if p.result.transient else "failed"
    return "created" if p.result.created else "updated"


def _save_marks(session: Session, marks: dict[tuple[str, str, str], tuple[Any, int]]) -> None:
    table = WriteMark.__table__
    keys = ("target", "object", "external_id")
    existing = {tuple(row) for row in rows_by_keys(session, table, list(marks), keys)}
    rows = [
        {"target": t, "object": o, "external_id": x, "order_value": v, "event_id": e}
        for (t, o, x), (v, e) in marks.items()
    ]
    insert_rows(session, table, [r for r in rows if tuple(r[k] for k in keys) not in existing])
    update_rows(session, table, keys, [r for r in rows if tuple(r[k] for k in keys) in existing])


def _log(worker_id: str, outcomes: list[Outcome]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        counts[outcome.status] += 1
        if outcome.status in (EventStatus.FAILED, EventStatus.DEAD):
            _log_event(outcome.event, outcome.status, outcome.message)
    log.info(
        "batch of %d: %s",
        len(outcomes),
        ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
        extra={"worker": worker_id, "events": len(outcomes), **counts},
    )


def _log_event(event: Event, status: str, message: str | None) -> None:
    """The line of an event that failed or is dead, however it came to be, with its ids."""
    log.warning(
        "event %s %s: %s",
        event.id,
        status,
        message,
        extra={
            "event_id": str(event.id),  # as the API writes ids
            "delivery_id": str(event.delivery_id),
            "group_id": event.group_id,
            "status": status,
        },
    )


def _save_usage(session: Session, usage: dict[str, tuple[int, int]]) -> None:
    now = datetime.now(UTC)
    for name, (used, limit) in usage.items():
        session.merge(TargetUsage(target=name, used=used, limit=limit, updated_at=now))


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
