"""The worker: claim due events in batches, then route, map and upsert each batch.

Upserts are idempotent and the local store commits together with the event's status, so
processing an event twice changes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence

from gateway.errors import GatewayError
from gateway.models import Event, EventStatus
from gateway.planning import plan_batch
from gateway.results import count_settled, log_event
from gateway.retries import idle_wait
from gateway.services import Gateway
from gateway.stale_guard import mark_applied, replayed_after
from gateway.storage.leases import Lease
from gateway.upserts import BatchUpserts

log = logging.getLogger(__name__)


class Worker:
    """Processes the queue until told to stop."""

    def __init__(self, gw: Gateway, worker_id: str | None = None) -> None:
        self.gw = gw
        self.settings = gw.settings
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

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
                stop.wait(idle_wait(self.settings.worker_poll_s, failures))
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

    def claim(self, limit: int | None = None) -> list[Event]:
        """Lease up to ``limit`` due events (:func:`gateway.storage.leases.claim`)."""
        lease = Lease(
            worker_id=self.id,
            limit=limit or self.settings.worker_batch_size,
            duration_s=self.settings.claim_timeout_s,
            max_attempts=self.settings.max_attempts,
        )
        claim = self.gw.db.claim(lease)
        for event, message in claim.given_up:
            log_event(event, EventStatus.DEAD, message)
            count_settled(EventStatus.DEAD)
        return claim.events

    def process(self, events: Sequence[Event]) -> None:
        """Route and map each event, then upsert what they ask for and record the outcomes."""
        outcomes = plan_batch(self.gw, events, self.id)
        planned = [p for o in outcomes for p in o.planned]
        retried = replayed_after(planned)
        if retried:
            mark_applied(planned, self.gw.db.applied_upserts(retried))
        self.gw.db.write_batch(BatchUpserts(self.gw, self.settings, self.id, outcomes))
