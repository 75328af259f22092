"""Alerts: rules evaluated by the workers, incidents in the database, messages to channels.

Every worker process calls :meth:`Alerts.tick_if_due` from its loop; however many there are,
on however many hosts, each incident is announced once when it opens and once when it
resolves (see ``incidents``).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from gateway.alerts import incidents
from gateway.alerts.checks import CHECKS
from gateway.alerts.rules import RuleKind, effective_params
from gateway.errors import GatewayError
from gateway.models import AlertRule

if TYPE_CHECKING:
    from gateway.services import Gateway

log = logging.getLogger(__name__)

#: How often a worker evaluates the rules at most.
TICK_EVERY_S = 5.0


class Alerts:
    """Evaluates the active rules and sends the messages due, for one process."""

    def __init__(self, gw: Gateway, every_s: float = TICK_EVERY_S) -> None:
        self.gw = gw
        self.every_s = every_s
        self._next_tick = 0.0
        self._due = threading.Lock()

    def tick_if_due(self) -> None:
        """A tick if the last one was ``every_s`` ago; called as often as the caller likes.

        Never raises: an alert that cannot be evaluated or sent must not stop the queue.
        """
        with self._due:
            started = time.monotonic()
            if started < self._next_tick:
                return
            self._next_tick = started + self.every_s
        try:
            self.tick(datetime.now(UTC))
        except GatewayError as exc:  # the database is down, say: the worker's log says more
            log.warning("alerts: not evaluated: %s", exc.message)
        except Exception:
            log.exception("alerts: evaluating the rules failed; tried again in %s s", self.every_s)

    def tick(self, now: datetime) -> None:
        """Evaluate every active rule at ``now``, then send what is due."""
        with self.gw.db.read_session() as session:
            rules = {r.id: r for r in session.scalars(select(AlertRule).where(AlertRule.active))}
        params = {r.id: effective_params(RuleKind(r.kind), r.params) for r in rules.values()}
        for rule in rules.values():
            try:
                self._evaluate(rule, params[rule.id], now)
            except Exception:
                log.exception("alerts: rule %r could not be evaluated", rule.name)
        incidents.close_orphans(self.gw, set(rules), now)
        digests = {rule_id: p["digest_s"] for rule_id, p in params.items()}
        incidents.send_due(self.gw, rules, digests, now)

    def _evaluate(self, rule: AlertRule, params: dict[str, Any], now: datetime) -> None:
        with self.gw.db.read_session() as session:
            findings = CHECKS[RuleKind(rule.kind)](self.gw, session, params, now)
        if findings is not None:
            incidents.follow(self.gw, rule, params, findings, now)
