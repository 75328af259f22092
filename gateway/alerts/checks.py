"""Each rule kind evaluated against the database: what it finds now, by subject.

Every check reads through an index (the queue, event results by target, events by group) so
that running them every few seconds in every worker stays cheap however long the log grows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.alerts.rules import Finding, Findings, RuleKind, aware, duration, plural
from gateway.models import (
    Delivery,
    DeliveryOutcome,
    Event,
    EventResult,
    EventStatus,
    Group,
    TargetUsage,
)

if TYPE_CHECKING:
    from gateway.services import Gateway

#: Upsert outcomes that are a target's answer of success, and of failing to take the call.
SUCCEEDED = ("created", "updated")
FAILED = ("retry",)

Check = Callable[["Gateway", Session, dict[str, Any], datetime], Findings]


def event_dead(gw: Gateway, session: Session, params: dict[str, Any], now: datetime) -> Findings:
    """Events that went dead within the window: one incident however many, so a storm is one
    message with their number."""
    since = now - timedelta(seconds=params["window_s"])
    query = select(func.count()).where(
        Event.status == EventStatus.DEAD, Event.processed_at >= since
    )
    if params["group_id"]:
        query = query.where(Event.group_id == params["group_id"])
    count = session.scalar(query) or 0
    if not count:
        return {}
    summary = f"{plural(count, 'event')} went dead in the last {duration(params['window_s'])}"
    return {params["group_id"] or "": Finding(count, summary)}


def target_failing(
    gw: Gateway, session: Session, params: dict[str, Any], now: datetime
) -> Findings:
    """Targets whose every call since their last success failed, the first one long enough ago.

    A call that failed is one the target did not take (unreachable, overloaded, over its
    limit: the upsert is retried); a record it refused as invalid is an answer, not a failure.
    """
    since = now - timedelta(minutes=params["minutes"])
    findings: dict[str, Finding] = {}
    for target in _targets(gw, session, params["target"]):
        of_target = EventResult.target == target
        last_success = session.scalar(
            select(func.max(EventResult.at)).where(of_target, EventResult.outcome.in_(SUCCEEDED))
        )
        failures = select(func.min(EventResult.at), func.count()).where(
            of_target, EventResult.outcome.in_(FAILED)
        )
        if last_success is not None:
            failures = failures.where(EventResult.at > last_success)
        first, count = session.execute(failures).one()
        if first is not None and aware(first) <= since:
            summary = (
                f"target {target}: every call has failed since {aware(first):%Y-%m-%d %H:%M} UTC"
                f" ({plural(count, 'failed upsert')})"
            )
            findings[target] = Finding(count, summary)
    return findings


def target_usage(gw: Gateway, session: Session, params: dict[str, Any], now: datetime) -> Findings:
    """Targets whose last reported API usage is above the share of their limit."""
    query = select(TargetUsage)
    if params["target"]:
        query = query.where(TargetUsage.target == params["target"])
    findings: dict[str, Finding] = {}
    for usage in session.scalars(query):
        if usage.limit > 0 and usage.used * 100 >= params["percent"] * usage.limit:
            share = usage.used * 100 // usage.limit
            summary = (
                f"target {usage.target}: {usage.used:,} of {usage.limit:,} API requests of the"
                f" day used ({share} %)"
            )
            findings[usage.target] = Finding(usage.used, summary)
    return findings


def refused_deliveries(
    gw: Gateway, session: Session, params: dict[str, Any], now: datetime
) -> Findings:
    """Groups with at least ``count`` refused deliveries (400, 401) within the window, read from
    the index of refusals; unverified ones past GATEWAY_REFUSED_PER_MINUTE are not rows, so
    a flood counts as that many a minute."""
    since = now - timedelta(seconds=params["window_s"])
    refused = (Delivery.outcome == DeliveryOutcome.REFUSED) & (Delivery.received_at >= since)
    if params["group_id"]:
        refused &= Delivery.group_id == params["group_id"]
    counts = (
        select(Delivery.group_id, func.count(), func.max(Delivery.error_code))
        .where(refused)
        .group_by(Delivery.group_id)
        .having(func.count() >= params["count"])
    )
    findings: dict[str, Finding] = {}
    for group_id, count, code in session.execute(counts).all():
        name = session.scalar(select(Group.name).where(Group.id == group_id)) or group_id
        summary = (
            f"group {name!r}: {plural(count, 'refused request')} in the last"
            f" {duration(params['window_s'])} (such as {code})"
        )
        findings[group_id] = Finding(count, summary)
    return findings


def queue_lag(gw: Gateway, session: Session, params: dict[str, Any], now: datetime) -> Findings:
    """The oldest pending event that was due ``seconds`` ago and no worker has taken."""
    overdue = (Event.status == EventStatus.PENDING) & (
        Event.next_attempt_at <= now - timedelta(seconds=params["seconds"])
    )
    oldest, count = session.execute(
        select(func.min(Event.next_attempt_at), func.count()).where(overdue)
    ).one()
    if oldest is None:
        return {}
    waited = (now - aware(oldest)).total_seconds()
    summary = (
        f"the oldest pending event has waited {duration(waited)} for a worker;"
        f" {plural(count, 'event')} waited longer than {duration(params['seconds'])}"
    )
    return {"": Finding(count, summary)}


def group_silent(gw: Gateway, session: Session, params: dict[str, Any], now: datetime) -> Findings:
    """Active groups with no event for ``silent_s`` that had one in every hour of the
    ``history_hours`` before they went quiet."""
    groups = select(Group.id, Group.name).where(Group.active)
    if params["group_id"]:
        groups = groups.where(Group.id == params["group_id"])
    findings: dict[str, Finding] = {}
    for group_id, name in session.execute(groups).all():
        last = session.scalar(
            select(Event.received_at)
            .where(Event.group_id == group_id)
            .order_by(Event.id.desc())
            .limit(1)
        )
        if last is None:
            continue
        quiet = (now - aware(last)).total_seconds()
        if quiet >= params["silent_s"] and _hourly(session, group_id, last, params):
            summary = (
                f"group {name!r} has received nothing for {duration(quiet)}; it had events"
                f" every hour for {params['history_hours']} h before"
            )
            findings[group_id] = Finding(int(quiet), summary)
    return findings


def _hourly(session: Session, group_id: str, last: datetime, params: dict[str, Any]) -> bool:
    """Whether the group had an event in each of the hours before its last one."""
    for hour in range(params["history_hours"]):
        end = last - timedelta(hours=hour)
        found = session.scalar(
            select(Event.id)
            .where(
                Event.group_id == group_id,
                Event.received_at <= end,
                Event.received_at > end - timedelta(hours=1),
            )
            .limit(1)
        )
        if found is None:
            return False
    return True


def _targets(gw: Gateway, session: Session, only: str | None) -> list[str]:
    """The targets events go to: the default, the groups' own, and any that reported usage."""
    if only:
        return [only]
    chosen = {t for t in session.scalars(select(Group.target).distinct()) if t}
    reported = set(session.scalars(select(TargetUsage.target)))
    return sorted({gw.targets.default_name(), *chosen, *reported})


CHECKS: dict[RuleKind, Check] = {
    RuleKind.EVENT_DEAD: event_dead,
    RuleKind.TARGET_FAILING: target_failing,
    RuleKind.TARGET_USAGE: target_usage,
    RuleKind.REFUSED_DELIVERIES: refused_deliveries,
    RuleKind.QUEUE_LAG: queue_lag,
    RuleKind.GROUP_SILENT: group_silent,
}
