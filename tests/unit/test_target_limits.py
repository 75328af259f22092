"""The arithmetic of target limits: how they are written, and which events may call now."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.config import Settings
from gateway.errors import ConfigurationError
from gateway.target_limits import DAY, SECOND, TargetLimits, grant, parse_limits

NOW = datetime(2026, 12, 5, 23, 59, 59, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "limits"),
    [
        ("", {}),
        ("local=5/s", {"local": TargetLimits(per_second=5)}),
        (
            "salesforce=10/s, 100000/day; http:crm=2000/day;",
            {
                "salesforce": TargetLimits(per_second=10, per_day=100000),
                "http:crm": TargetLimits(per_day=2000),
            },
        ),
    ],
)
def test_limits_are_read_by_target(raw: str, limits: dict[str, TargetLimits]) -> None:
    assert parse_limits(raw) == limits


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("nowhere=5/s", "'nowhere=5/s' is not <target>=<limits>"),
        ("local", "'local' is not <target>=<limits>"),
        ("local=5", "'5' for local is not N/s or N/day"),
        ("local=0/s", "'0/s' for local is not N/s or N/day with N at least 1"),
        ("local=1.5/day", "'1.5/day' for local"),
        ("local=", "local names no limit"),
    ],
)
def test_limits_it_cannot_read_are_refused_at_start_up(raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"GATEWAY_TARGET_LIMITS": raw})

    assert "GATEWAY_TARGET_LIMITS" in raised.value.message
    assert message in raised.value.message


@pytest.mark.parametrize(
    ("limits", "counted", "wanted", "granted", "until"),
    [
        (TargetLimits(per_second=3), {}, [1, 1, 1, 1], 3, datetime(2026, 12, 6, 0, 0, 0)),
        (TargetLimits(per_second=3), {SECOND: 2}, [2, 1], 0, datetime(2026, 12, 6, 0, 0, 0)),
        (TargetLimits(per_day=10), {DAY: 9}, [1, 1], 1, datetime(2026, 12, 6, 0, 0, 0)),
        (TargetLimits(per_second=2, per_day=100), {}, [5, 1], 1, datetime(2026, 12, 6, 0, 0, 0)),
        (TargetLimits(per_day=100), {DAY: 3}, [5, 5], 2, None),
    ],
    ids=["a-second-fills", "no-overtaking", "budget-spent", "too-big-goes-alone", "room-for-all"],
)
def test_events_go_in_order_while_every_window_has_room(
    limits: TargetLimits,
    counted: dict[str, int],
    wanted: list[int],
    granted: int,
    until: datetime | None,
) -> None:
    decided = grant("t", limits, counted, wanted, NOW)

    assert decided.granted == granted
    assert decided.until == (until.replace(tzinfo=UTC) if until else None)
    assert decided.counts[DAY] == counted.get(DAY, 0) + sum(wanted[:granted])


def test_a_spent_budget_is_named_before_a_full_second() -> None:
    decided = grant("crm", TargetLimits(per_second=1, per_day=1), {SECOND: 1, DAY: 1}, [1], NOW)

    assert decided.reason == "waiting: the daily budget of 1 calls to crm is spent"
