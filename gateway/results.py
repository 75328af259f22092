"""How an attempt ends: each event's status from its upserts' results, the history rows that
say what each upsert did, and the log lines of a batch."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from gateway.config import Settings
from gateway.metrics import EVENTS_PROCESSED, PROCESSING_LATENCY, RETRIES, TARGET_CALLS
from gateway.models import Event, EventStatus, aware
from gateway.planning import Outcome, Planned, Skipped, about
from gateway.retries import retry_delay
from gateway.storage.leases import EMPTY_RESULT
from gateway.storage.results import RecordKey

log = logging.getLogger("gateway.worker")


def settle(outcome: Outcome, settings: Settings) -> None:
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


def event_changes(outcome: Outcome, now: datetime, settings: Settings) -> dict[str, Any]:
    """The event's row after this attempt, its next attempt due ``now`` plus a backoff."""
    event = outcome.event
    retry = outcome.status == EventStatus.PENDING
    delay = max(retry_delay(event.attempts, settings), outcome.retry_after_s)
    due = outcome.wait_until or now + timedelta(seconds=delay)
    return {
        "id": event.id,
        "status": outcome.status,
        "last_error": outcome.message if outcome.status != EventStatus.DELIVERED else None,
        "processed_at": None if retry else now,
        "next_attempt_at": due if retry else None,
        # Waiting for a limit is no attempt: it must never make the event dead.
        "attempts": event.attempts - (outcome.wait_until is not None),
        "claimed_by": None,
        "claim_expires_at": None,
    }


def written_marks(outcomes: list[Outcome]) -> dict[RecordKey, tuple[Any, int]]:
    """The ordering value and event of the last successful guarded write to each record."""
    marks: dict[RecordKey, tuple[Any, int]] = {}
    for outcome in outcomes:
        for p in outcome.planned:
            if p.result is not None and p.result.ok and p.upsert.order_value is not None:
                marks[p.record] = (p.upsert.order_value, outcome.event.id)
    return marks


def history_rows(outcome: Outcome, now: datetime) -> list[dict[str, Any]]:
    """One history row per upsert of this attempt, made or skipped; else one for the event;
    none for an event that waits for a limit.

    Attempts keep their numbers across replays (``Event.attempts_before_replay``).
    """
    if outcome.wait_until is not None:  # not an attempt; ``last_error`` says why it waits
        return []
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
        **about(p.route, p.mapping_version, p.upsert.key),
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
        **about(s.route, s.mapping_version, s.upsert.key),
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
    if p.result.parent_failed:
        return "parent_failed"
    if not p.result.ok:
        return "retry" if p.result.transient else "failed"
    return "created" if p.result.created else "updated"


def count_attempts(outcomes: list[Outcome], now: datetime) -> None:
    """Count a committed attempt in /metrics: how each event ended, what each target call
    gave, and how long each event delivered took from its receipt."""
    for outcome in outcomes:
        count_settled(outcome.status)
        if outcome.status == EventStatus.DELIVERED:
            waited = aware(now) - aware(outcome.event.received_at)
            PROCESSING_LATENCY.observe(max(0.0, waited.total_seconds()))
        for p in outcome.planned:
            if p.result is not None and not p.stale:
                TARGET_CALLS.labels(p.target, _upsert_outcome(p)).inc()


def count_settled(status: str) -> None:
    """Count an attempt that left its event in ``status``: a retry when it is pending again."""
    EVENTS_PROCESSED.labels(status).inc()
    if status == EventStatus.PENDING:
        RETRIES.inc()


def log_batch(worker_id: str, outcomes: list[Outcome]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        counts[outcome.status] += 1
        if outcome.status in (EventStatus.FAILED, EventStatus.DEAD):
            log_event(outcome.event, outcome.status, outcome.message)
    log.info(
        "batch of %d: %s",
        len(outcomes),
        ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
        extra={"worker": worker_id, "events": len(outcomes), **counts},
    )


def log_event(event: Event, status: str, message: str | None) -> None:
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
