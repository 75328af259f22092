"""The retry schedule: exponential, jittered, capped per attempt, and by default long enough to
outlast a target's day-long outage."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.retries import retry_delay

DAY_S = 24 * 3600


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The defaults."""
    return Settings(instance_path=tmp_path, database_url=f"sqlite:///{tmp_path / 'g.db'}")


def schedule(settings: Settings) -> list[float]:
    """The delays before each retry an event gets, attempt 1 to the last but one."""
    return [retry_delay(n, settings) for n in range(1, settings.max_attempts)]


@pytest.mark.parametrize(
    ("jitter", "bound"),
    [
        (0.0, "least"),  # every delay at the low end of its jitter
        (0.999_999, "most"),  # every delay at the high end
    ],
)
def test_the_default_schedule_spans_at_least_a_day_whatever_the_jitter(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, jitter: float, bound: str
) -> None:
    monkeypatch.setattr("gateway.retries.random.random", lambda: jitter)

    delays = schedule(settings)

    assert sum(delays) >= DAY_S, (bound, sum(delays))


def test_the_default_schedule_doubles_each_delay_up_to_its_cap(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setattr("gateway.retries.random.random", lambda: 0.999_999)

    delays = schedule(settings)

    assert delays[0] <= settings.retry_base_s
    assert max(delays) <= settings.retry_max_s
    uncapped = [d for d in delays if d < settings.retry_max_s * 0.999]
    assert all(b == pytest.approx(2 * a) for a, b in itertools.pairwise(uncapped))
    assert delays[-1] == pytest.approx(settings.retry_max_s, rel=1e-5)


@pytest.mark.parametrize(
    ("overrides", "most_s"),
    [
        ({"retry_base_s": 2.0, "retry_max_s": 60.0, "max_attempts": 8}, 60.0),  # a short one
        ({"retry_base_s": 0.0}, 0.0),  # retry at once
    ],
)
def test_the_schedule_follows_the_settings(
    settings: Settings, overrides: dict[str, float], most_s: float
) -> None:
    assert max(schedule(settings.with_overrides(overrides))) <= most_s
