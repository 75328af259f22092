"""Incidents and their notices, kept in the database so that every worker agrees on them.

An incident opens when a rule first finds something for a subject, gathers for the rule's
``digest_s`` (a storm of findings is one incident, announced once with their number), and
resolves once the rule has not held for its ``cooldown_s`` (a flapping condition stays one
incident). Each step is a conditional write that only one of several racing workers can make:
the incident's unique ``open_key`` when it opens, ``state = 'open'`` when it resolves, and
one notice row per incident, channel and kind, which is the claim to send that message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError

from gateway.alerts.channels import Message
from gateway.alerts.configuration import send
from gateway.alerts.rules import Finding, aware, duration
from gateway.errors import GatewayError, NotFound
from gateway.models import AlertChannel, AlertIncident, AlertNotice, AlertRule, iso
from gateway.validation import whole_number

if TYPE_CHECKING:
    from gateway.services import Gateway

log = logging.getLogger(__name__)

OPEN = "open"
RESOLVED = "resolved"
#: Notice kinds, which are also what ``AlertIncident.notify`` holds.
OPENED = "opened"
#: Notice states.
SENDING, SENT, FAILED = "sending", "sent", "failed"
#: A channel that fails is tried this many times, the n-th try RETRY_S * n after the last.
MAX_ATTEMPTS = 5
RETRY_S = 60
#: A notice claimed this long ago and never finished belongs to a worker that stopped; it is
#: not sent again (a message twice is worse than one late message lost, which the log shows).
ABANDONED_S = 300
#: The largest incident id (a PostgreSQL bigint).
MAX_ID = 2**63 - 1


def follow(
    gw: Gateway,
    rule: AlertRule,
    params: dict[str, Any],
    findings: dict[str, Finding],
    now: datetime,
) -> None:
    """Open, update or resolve the rule's incidents after what it found now."""
    with gw.db.read_session() as session:
        current = {
            i.subject: i
            for i in session.scalars(
                select(AlertIncident).where(
                    AlertIncident.rule_id == rule.id, AlertIncident.state == OPEN
                )
            )
        }
    for subject, finding in findings.items():
        incident = current.get(subject)
        if incident is None:
            _open(gw, rule, subject, finding, now)
        else:
            _seen(gw, incident, finding, now)
    for subject, incident in current.items():
        if subject in findings:
            continue
        since = aware(incident.clear_since) if incident.clear_since else None
        if since is None:
            _clear(gw, incident, now)
        elif now - since >= timedelta(seconds=params["cooldown_s"]):
            resolve(gw, [incident.id], now, announce=True)


def resolve(gw: Gateway, ids: Iterable[int], now: datetime, *, announce: bool) -> None:
    """Resolve the incidents still open among ``ids``; ``announce``: with a message to the
    channels told of their opening."""
    notify = case((AlertIncident.announced, RESOLVED), else_=None) if announce else None
    with gw.db.session() as session:
        session.execute(
            update(AlertIncident)
            .where(AlertIncident.id.in_(list(ids)), AlertIncident.state == OPEN)
            .values(state=RESOLVED, open_key=None, resolved_at=now, notify=notify)
        )


def close_orphans(gw: Gateway, active_rule_ids: set[str], now: datetime) -> None:
    """Resolve, without a message, the open incidents of rules deleted or switched off."""
    with gw.db.read_session() as session:
        orphans = [
            i.id
            for i in session.scalars(select(AlertIncident).where(AlertIncident.state == OPEN))
            if i.rule_id not in active_rule_ids
        ]
    if orphans:
        resolve(gw, orphans, now, announce=False)


def _open(gw: Gateway, rule: AlertRule, subject: str, finding: Finding, now: datetime) -> None:
    incident = AlertIncident(
        open_key=f"{rule.id}:{subject}",
        rule_id=rule.id,
        rule_name=rule.name,
        kind=rule.kind,
        subject=subject,
        state=OPEN,
        count=finding.count,
        summary=finding.summary,
        opened_at=now,
        last_seen_at=now,
        announced=False,
        notify=OPENED,
    )
    try:
        with gw.db.session() as session:
            session.add(incident)
    except IntegrityError:
        return  # another worker opened it a moment ago
    log.warning("alert %r opened: %s", rule.name, finding.summary)


def _seen(gw: Gateway, incident: AlertIncident, finding: Finding, now: datetime) -> None:
    with gw.db.session() as session:
        session.execute(
            update(AlertIncident)
            .where(AlertIncident.id == incident.id, AlertIncident.state == OPEN)
            .values(
                count=finding.count, summary=finding.summary, last_seen_at=now, clear_since=None
            )
        )


def _clear(gw: Gateway, incident: AlertIncident, now: datetime) -> None:
    with gw.db.session() as session:
        session.execute(
            update(AlertIncident)
            .where(
                AlertIncident.id == incident.id,
                AlertIncident.state == OPEN,
                AlertIncident.clear_since.is_(None),
            )
            .values(clear_since=now)
        )


# --- notices -----------------------------------------------------------------------------


def send_due(
    gw: Gateway, rules: dict[str, AlertRule], digests: dict[str, int], now: datetime
) -> None:
    """Send every message due: openings past their digest time, resolutions, retries."""
    with gw.db.read_session() as session:
        waiting = list(
            session.scalars(
                select(AlertIncident)
                .where(AlertIncident.notify.is_not(None))
                .order_by(AlertIncident.id)
            )
        )
        channels = list(session.scalars(select(AlertChannel).where(AlertChannel.active)))
    for incident in waiting:
        rule = rules.get(incident.rule_id)
        if rule is None:
            continue  # its rule is gone or off: close_orphans resolves it without a message
        if incident.notify == OPENED:
            gathering = now - aware(incident.opened_at) < timedelta(
                seconds=digests[incident.rule_id]
            )
            # Announced only while it holds: a problem gone within the digest time is no news.
            if gathering or not _announce(gw, incident.id):
                continue
        told = [c for c in channels if not rule.channel_ids or c.id in rule.channel_ids]
        _notify(gw, incident.id, str(incident.notify), told, now)


def _announce(gw: Gateway, incident_id: int) -> bool:
    """Mark the opening as announced, if the incident still holds and is not yet told."""
    with gw.db.session() as session:
        marked = session.execute(
            update(AlertIncident)
            .where(
                AlertIncident.id == incident_id,
                AlertIncident.state == OPEN,
                AlertIncident.notify == OPENED,
                AlertIncident.clear_since.is_(None),
            )
            .values(announced=True)
        )
    return bool(marked.rowcount)  # type: ignore[attr-defined]


def _notify(
    gw: Gateway, incident_id: int, kind: str, channels: list[AlertChannel], now: datetime
) -> None:
    """Send the incident's ``kind`` message to each channel this worker claims, then mark the
    incident told once nothing is left to try on any channel."""
    with gw.db.read_session() as session:
        incident = session.get(AlertIncident, incident_id)
        notices = {
            n.channel_id: n
            for n in session.scalars(
                select(AlertNotice).where(
                    AlertNotice.incident_id == incident_id, AlertNotice.kind == kind
                )
            )
        }
    assert incident is not None
    message = _message(incident, kind)
    for channel in channels:
        notice = notices.get(channel.id)
        claimed = _claim_new(gw, incident_id, channel.id, kind, now) if notice is None else None
        if notice is not None and _retry_due(notice, now):
            claimed = _claim_retry(gw, notice, now)
        if claimed is not None:
            notices[channel.id] = _deliver(gw, claimed, channel, message, now)
        # else: another worker holds it; a later tick finds it finished and marks the incident
    if all(_finished(notices.get(c.id), now) for c in channels):
        with gw.db.session() as session:
            session.execute(
                update(AlertIncident)
                .where(AlertIncident.id == incident_id, AlertIncident.notify == kind)
                .values(notify=None)
            )


def _claim_new(
    gw: Gateway, incident_id: int, channel_id: str, kind: str, now: datetime
) -> AlertNotice | None:
    notice = AlertNotice(
        incident_id=incident_id,
        channel_id=channel_id,
        kind=kind,
        state=SENDING,
        attempts=1,
        claimed_at=now,
    )
    try:
        with gw.db.session() as session:
            session.add(notice)
    except IntegrityError:
        return None
    return notice


def _claim_retry(gw: Gateway, notice: AlertNotice, now: datetime) -> AlertNotice | None:
    with gw.db.session() as session:
        claimed = session.execute(
            update(AlertNotice)
            .where(
                AlertNotice.id == notice.id,
                AlertNotice.state == FAILED,
                AlertNotice.attempts == notice.attempts,
            )
            .values(state=SENDING, attempts=notice.attempts + 1, claimed_at=now)
        )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return None
    notice.state, notice.attempts, notice.claimed_at = SENDING, notice.attempts + 1, now
    return notice


def _deliver(
    gw: Gateway, notice: AlertNotice, channel: AlertChannel, message: Message, now: datetime
) -> AlertNotice:
    try:
        send(gw, channel, message)
    except GatewayError as exc:
        notice.state, notice.error = FAILED, exc.message
        log.warning("alert message to channel %r failed: %s", channel.name, exc.message)
    except Exception:
        notice.state, notice.error = FAILED, "an unexpected error occurred; it has been logged"
        log.exception("alert message to channel %r failed", channel.name)
    else:
        notice.state, notice.error, notice.sent_at = SENT, None, now
    with gw.db.session() as session:
        session.execute(
            update(AlertNotice)
            .where(AlertNotice.id == notice.id)
            .values(state=notice.state, error=notice.error, sent_at=notice.sent_at)
        )
    return notice


def _retry_due(notice: AlertNotice, now: datetime) -> bool:
    return (
        notice.state == FAILED
        and notice.attempts < MAX_ATTEMPTS
        and now >= aware(notice.claimed_at) + timedelta(seconds=RETRY_S * notice.attempts)
    )


def _finished(notice: AlertNotice | None, now: datetime) -> bool:
    """Whether nothing more will be tried for this notice: sent, given up, or abandoned."""
    if notice is None:
        return False
    if notice.state == SENDING:
        return now - aware(notice.claimed_at) >= timedelta(seconds=ABANDONED_S)
    return notice.state == SENT or notice.attempts >= MAX_ATTEMPTS


def _message(incident: AlertIncident, kind: str) -> Message:
    opened = f"{aware(incident.opened_at):%Y-%m-%d %H:%M:%S} UTC"
    if kind == OPENED:
        title = f"Alert: {incident.rule_name}"
        text = f"{incident.summary}.\nOpened {opened}."
    else:
        resolved = aware(incident.resolved_at or incident.last_seen_at)
        lasted = duration((resolved - aware(incident.opened_at)).total_seconds())
        title = f"Resolved: {incident.rule_name}"
        text = f"No longer holds, after {lasted} (opened {opened}).\nLast: {incident.summary}."
    return Message(
        id=f"alert_{incident.id}_{kind}",
        type=f"incident.{kind}",
        title=title,
        text=text,
        incident=incident_view(incident),
    )


def incident_view(incident: AlertIncident) -> dict[str, Any]:
    return {
        "id": str(incident.id),
        "rule_id": incident.rule_id,
        "rule_name": incident.rule_name,
        "kind": incident.kind,
        "subject": incident.subject or None,
        "state": incident.state,
        "count": incident.count,
        "summary": incident.summary,
        "opened_at": iso(incident.opened_at),
        "last_seen_at": iso(incident.last_seen_at),
        "resolved_at": iso(incident.resolved_at),
    }


def list_incidents(gw: Gateway, limit: int, after: int | None) -> list[AlertIncident]:
    """Newest first."""
    query = select(AlertIncident).order_by(AlertIncident.id.desc()).limit(limit)
    if after is not None:
        query = query.where(AlertIncident.id < after)
    with gw.db.read_session() as session:
        return list(session.scalars(query))


def incident_with_notices(gw: Gateway, incident_id: str) -> dict[str, Any]:
    """One incident, and each message about it: to which channel, sent or why not."""
    number = whole_number(incident_id, MAX_ID)
    with gw.db.read_session() as session:
        incident = session.get(AlertIncident, number) if number is not None else None
        if incident is None:
            raise NotFound.of("alert incident", incident_id)
        notices = session.scalars(
            select(AlertNotice)
            .where(AlertNotice.incident_id == incident.id)
            .order_by(AlertNotice.id)
        )
        return {
            **incident_view(incident),
            "notices": [
                {
                    "channel_id": n.channel_id,
                    "kind": n.kind,
                    "state": n.state,
                    "attempts": n.attempts,
                    "sent_at": iso(n.sent_at),
                    "error": n.error,
                }
                for n in notices
            ],
        }
