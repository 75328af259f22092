"""Each rule kind against the database: when it holds, for which subject, and when it does not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.models import (
    Delivery,
    DeliveryOutcome,
    Event,
    EventResult,
    EventStatus,
    TargetUsage,
)
from gateway.services import Gateway
from tests.alerts.conftest import utcnow

NOW = utcnow()


def results(*outcomes: tuple[str, int]) -> Callable[[Gateway, str], None]:
    """Event results of the default target: each (outcome, minutes before NOW)."""

    def add(gw: Gateway, group_id: str) -> None:
        target = gw.targets.default_name()
        with gw.db.session() as session:
            for n, (outcome, minutes) in enumerate(outcomes):
                at = NOW - timedelta(minutes=minutes)
                session.add(
                    EventResult(
                        event_id=n, attempt=1, at=at, status="x", target=target, outcome=outcome
                    )
                )

    return add


def usage(used: int, limit: int) -> Callable[[Gateway, str], None]:
    def add(gw: Gateway, group_id: str) -> None:
        with gw.db.session() as session:
            session.add(TargetUsage(target="salesforce", used=used, limit=limit, updated_at=NOW))

    return add


def events(*ages: tuple[str, timedelta, datetime | None]) -> Callable[[Gateway, str], None]:
    """Events of the group: each (status, received this long before NOW, due at)."""

    def add(gw: Gateway, group_id: str) -> None:
        with gw.db.session() as session:
            for n, (status, age, due) in enumerate(ages):
                session.add(
                    Event(
                        group_id=group_id,
                        delivery_id=n,
                        type="t",
                        status=status,
                        dedupe_key=f"k{n}",
                        payload={},
                        received_at=NOW - age,
                        next_attempt_at=due,
                        processed_at=NOW - age,
                    )
                )

    return add


def hourly(hours: int, silent: timedelta) -> Callable[[Gateway, str], None]:
    """An event every 50 minutes for ``hours`` hours, the last one ``silent`` before NOW."""
    ages = (silent + timedelta(minutes=50 * h) for h in reversed(range(hours)))
    return events(*((EventStatus.DELIVERED, age, None) for age in ages))


OLD = NOW - timedelta(minutes=10)


@pytest.mark.parametrize(
    ("kind", "params", "data", "found"),
    [
        # a target that failed every call for 6 minutes, failing for 5 is an incident
        ("target_failing", {}, results(("created", 30), ("retry", 6), ("retry", 1)), "target"),
        # it succeeded since: nothing
        ("target_failing", {}, results(("retry", 6), ("updated", 2)), None),
        # failing for 3 minutes only
        ("target_failing", {}, results(("created", 30), ("retry", 3)), None),
        # records it refused as invalid are answers, not failed calls
        ("target_failing", {}, results(("failed", 20)), None),
        ("target_usage", {}, usage(13_600, 15_000), "salesforce"),  # 90.7 % used
        ("target_usage", {}, usage(13_000, 15_000), None),  # 86.7 %
        ("target_usage", {"percent": 80}, usage(13_000, 15_000), "salesforce"),
        ("queue_lag", {}, events((EventStatus.PENDING, timedelta(0), OLD)), ""),  # due 10 min
        ("queue_lag", {"seconds": 900}, events((EventStatus.PENDING, timedelta(0), OLD)), None),
        (
            "queue_lag",
            {},
            events((EventStatus.PENDING, timedelta(0), NOW + timedelta(hours=1))),
            None,
        ),
        ("event_dead", {}, events((EventStatus.DEAD, timedelta(minutes=5), None)), ""),
        (
            "event_dead",
            {"window_s": 60},
            events((EventStatus.DEAD, timedelta(minutes=5), None)),
            None,
        ),
        ("event_dead", {}, events((EventStatus.FAILED, timedelta(minutes=5), None)), None),
        ("group_silent", {}, hourly(30, timedelta(hours=2)), "group"),  # regular, silent 2 h
        ("group_silent", {}, hourly(30, timedelta(minutes=30)), None),  # not silent long enough
        ("group_silent", {}, hourly(10, timedelta(hours=2)), None),  # never regular for 24 h
        ("group_silent", {"history_hours": 8}, hourly(10, timedelta(hours=2)), "group"),
    ],
)
def test_a_rule_holds_for_its_subject(
    gw: Gateway,
    admin: Any,
    group_factory: Callable[..., dict[str, Any]],
    rule_factory: Callable[..., dict[str, Any]],
    kind: str,
    params: dict[str, Any],
    data: Callable[[Gateway, str], None],
    found: str | None,
) -> None:
    group = group_factory()
    data(gw, group["id"])
    rule_factory(kind, params=params)

    gw.alerts.tick(NOW)

    incidents = admin.get("/alerts/incidents").get_json()["items"]
    expected = {"group": group["id"], "target": gw.targets.default_name()}.get(found, found)
    subjects = [i["subject"] or "" for i in incidents]
    assert subjects == ([] if expected is None else [expected])
    assert all(i["state"] == "open" for i in incidents)


def refusals(*ages: timedelta) -> Callable[[Gateway, str], None]:
    """Refused deliveries to the group, each received this long before NOW."""

    def add(gw: Gateway, group_id: str) -> None:
        with gw.db.session() as session:
            for age in ages:
                session.add(
                    Delivery(
                        group_id=group_id,
                        received_at=NOW - age,
                        method="POST",
                        headers={},
                        outcome=DeliveryOutcome.REFUSED,
                        status=401,
                        verified=False,
                        error_code="signature_mismatch",
                        message="the signature does not match",
                    )
                )

    return add


MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("params", "data", "found"),
    [
        ({"count": 2}, refusals(MINUTE, 2 * MINUTE), "group"),
        ({"count": 3}, refusals(MINUTE, 2 * MINUTE), None),  # not enough
        ({"count": 2, "window_s": 90}, refusals(MINUTE, 2 * MINUTE), None),  # one too old
        ({"count": 1, "group_id": "another"}, refusals(MINUTE), None),
    ],
)
def test_refused_deliveries_hold_for_their_group_past_the_count(
    gw: Gateway,
    admin: Any,
    group_factory: Callable[..., dict[str, Any]],
    rule_factory: Callable[..., dict[str, Any]],
    params: dict[str, Any],
    data: Callable[[Gateway, str], None],
    found: str | None,
) -> None:
    group = group_factory()
    data(gw, group["id"])
    rule_factory("refused_deliveries", params=params)

    gw.alerts.tick(NOW)

    incidents = admin.get("/alerts/incidents").get_json()["items"]
    assert [i["subject"] for i in incidents] == ([] if found is None else [group["id"]])
    if found:
        assert "2 refused requests" in incidents[0]["summary"]


def test_a_rule_switched_off_closes_its_incident_without_a_message(
    gw: Gateway,
    admin: Any,
    channels: dict[str, str],
    rule_factory: Callable[..., dict[str, Any]],
) -> None:
    usage(15_000, 15_000)(gw, "")
    rule = rule_factory("target_usage", params={"digest_s": 0})
    gw.alerts.tick(NOW)
    admin.patch(f"/alerts/rules/{rule['id']}", {"active": False})

    gw.alerts.tick(NOW + timedelta(seconds=5))

    [incident] = admin.get("/alerts/incidents").get_json()["items"]
    assert incident["state"] == "resolved"
    notices = admin.get(f"/alerts/incidents/{incident['id']}").get_json()["notices"]
    assert sorted((n["kind"], n["state"]) for n in notices) == [("opened", "sent")] * 3
