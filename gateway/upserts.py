"""Upsert: send a batch's planned upserts to their targets, and record how each event ended.

The storage decides when each step runs and in which transaction
(:meth:`gateway.storage.base.Storage.write_batch`); this module decides what each step does.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

from sqlalchemy import event
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.models import EventStatus
from gateway.planning import Outcome, Planned
from gateway.results import (
    count_attempts,
    event_changes,
    history_rows,
    log_batch,
    settle,
    written_marks,
)
from gateway.services import Gateway
from gateway.stale_guard import guarded_records, mark_stale
from gateway.storage.results import RecordKey
from gateway.targets.base import UpsertRequest, UpsertResult

log = logging.getLogger("gateway.worker")


class BatchUpserts:
    """The upserts of a batch (or a run of it) and what came of them."""

    def __init__(
        self, gw: Gateway, settings: Settings, worker_id: str, outcomes: list[Outcome]
    ) -> None:
        self._gw = gw
        self._settings = settings
        self._worker_id = worker_id
        self._outcomes = outcomes
        #: The API usage each remote target reported back: (used, limit).
        self._usage: dict[str, tuple[int, int]] = {}

    def _planned(self, wanted: Callable[[Planned], bool] = lambda p: True) -> list[Planned]:
        return [p for o in self._outcomes for p in o.planned if wanted(p)]

    def _remote(self, p: Planned) -> bool:
        return not self._gw.targets.is_local(p.target)

    def records(self) -> set[RecordKey]:
        return {p.record for p in self._planned()}

    def remote_records(self) -> set[RecordKey]:
        return {p.record for p in self._planned(self._remote)}

    def parts(self, records: int) -> list[BatchUpserts]:
        """Runs in order, each touching at most ``records`` records (an event is never split:
        its upserts commit together)."""
        runs: list[BatchUpserts] = []
        run: list[Outcome] = []
        touched: set[RecordKey] = set()
        for outcome in self._outcomes:
            mine = {p.record for p in outcome.planned}
            if run and len(touched | mine) > records:
                runs.append(BatchUpserts(self._gw, self._settings, self._worker_id, run))
                run, touched = [], set()
            run.append(outcome)
            touched |= mine
        if run:
            runs.append(BatchUpserts(self._gw, self._settings, self._worker_id, run))
        return runs

    def keep_leased(self, session: Session) -> None:
        attempts = {o.event.id: o.event.attempts for o in self._outcomes}
        held = self._gw.db.still_leased(session, self._worker_id, attempts)
        lost = [o.event.id for o in self._outcomes if o.event.id not in held]
        if lost:
            log.warning(
                "worker %s: lease of events %s ran out and was taken over; their results of"
                " this attempt are dropped",
                self._worker_id,
                " ".join(map(str, lost)),
                extra={"worker": self._worker_id, "event_ids": [str(i) for i in lost]},
            )
        self._outcomes = [o for o in self._outcomes if o.event.id in held]

    def check_stale(self, session: Session, *, remote: bool, local: bool) -> None:
        planned = self._planned(lambda p: remote if self._remote(p) else local)
        mark_stale(planned, self._gw.db.write_marks(session, guarded_records(planned)))

    def call_remote(self) -> None:
        """Send each remote target its upserts; keep the API usage each one reported back."""
        for name, due in _due_upserts(self._outcomes, self._remote).items():
            planned = self._within_limits(name, due)
            if not planned:
                continue
            target = None
            try:
                target = self._gw.targets.remote(name)
                results = target.upsert([_request(p) for p in planned])
            except GatewayError as exc:
                results = [UpsertResult.from_error(exc)] * len(planned)
            # Read after a refused batch too: over the org's limit is when the admin looks.
            reported = getattr(target, "api_usage", None)
            if reported is not None:
                self._usage[name] = reported
            for p, result in zip(planned, results, strict=True):
                p.result = result

    def finish(self, session: Session) -> None:
        local = _due_upserts(self._outcomes, lambda p: not self._remote(p))
        for name, due in local.items():
            planned = self._within_limits(name, due, session)
            target = self._gw.targets.open(name, session)
            for p, result in zip(
                planned, target.upsert([_request(p) for p in planned]), strict=True
            ):
                p.result = result
        settings = self._settings
        for outcome in self._outcomes:
            settle(outcome, settings)
        now = self._gw.db.now(session)
        self._gw.db.write_results(
            session,
            [row for o in self._outcomes for row in history_rows(o, now)],
            [event_changes(o, now, settings) for o in self._outcomes],
            written_marks(self._outcomes),
            self._usage,
            now,
        )
        log_batch(self._worker_id, self._outcomes)
        outcomes = list(self._outcomes)
        # Counted once they are the database's: a failed commit's events are tried again.
        event.listen(session, "after_commit", lambda _: count_attempts(outcomes, now), once=True)

    def _within_limits(
        self, name: str, planned: list[Planned], session: Session | None = None
    ) -> list[Planned]:
        """The upserts that may go to target ``name`` now, by whole events in batch order; the
        events after the first one over a limit wait for the window to pass.

        Counted in ``session``, or in a transaction of its own for a remote target, which is
        called outside the batch's transaction on some databases.
        """
        limiter = self._gw.limiter
        if name not in limiter.limits:
            return planned
        by_event: dict[int, list[Planned]] = defaultdict(list)
        for p in planned:
            by_event[p.event.id].append(p)
        wanted = [len(upserts) for upserts in by_event.values()]
        if session is None:
            with self._gw.db.session() as own:
                decided = limiter.reserve(own, name, wanted)
        else:
            decided = limiter.reserve(session, name, wanted)
        waiting = set(list(by_event)[decided.granted :])
        for outcome in self._outcomes:
            if outcome.event.id in waiting:
                outcome.status = EventStatus.PENDING
                outcome.message = decided.reason
                outcome.wait_until = decided.until
        return [p for p in planned if p.event.id not in waiting]


def _due_upserts(
    outcomes: Iterable[Outcome], wanted: Callable[[Planned], bool]
) -> dict[str, list[Planned]]:
    by_target: dict[str, list[Planned]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.status != EventStatus.DELIVERED:
            continue
        for p in outcome.planned:
            if not p.stale and not p.applied and wanted(p):
                by_target[p.target].append(p)
    return by_target


def _request(p: Planned) -> UpsertRequest:
    return p.upsert.request(str(p.event.id))
