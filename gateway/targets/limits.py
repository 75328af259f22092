"""Spend a target's calls from the counts in the database, one worker at a time per target.

The worker asks before it sends (:meth:`CallLimiter.reserve`); calls counted are not handed
back if the sending then fails, so a budget is never overspent, at worst underspent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import views
from gateway.models import TargetCalls
from gateway.storage import Storage
from gateway.target_limits import (
    DAY,
    SECOND,
    Grant,
    TargetLimits,
    grant,
    waiting_reason,
    window_end,
    window_keys,
)

#: The first key of the advisory locks that line up the workers counting one target's calls.
TARGET_CALLS = 2


class CallLimiter:
    """The configured limits of each target, and the counts they are held to."""

    def __init__(self, database: Storage, limits: dict[str, TargetLimits]) -> None:
        self._db = database
        self.limits = limits

    def reserve(self, session: Session, target: str, wanted: Sequence[int]) -> Grant:
        """Count the calls of as many events as may go now, in order (``wanted``: the calls of
        each); a target without limits lets all go and counts nothing."""
        limits = self.limits.get(target)
        if limits is None:
            return Grant(len(wanted), {})
        self._db.line_up(session, TARGET_CALLS, target)
        now = self._db.now(session)
        decided = grant(target, limits, _counted(session, target, now), wanted, now)
        keys = window_keys(now)
        for window, calls in decided.counts.items():
            session.merge(
                TargetCalls(target=target, window=window, period=keys[window], calls=calls)
            )
        return decided

    def view(self, session: Session, target: str, now: datetime) -> views.TargetLimitsView | None:
        """What the overview shows of a target's limits: the day's count, and why events wait."""
        limits = self.limits.get(target)
        if limits is None:
            return None
        counted = _counted(session, target, now)
        today = counted.get(DAY, 0)
        full = next(
            (
                window
                for window in (DAY, SECOND)
                if (limit := limits.of(window)) is not None and counted.get(window, 0) >= limit
            ),
            None,
        )
        return views.TargetLimitsView(
            calls_per_second=limits.per_second,
            calls_per_day=limits.per_day,
            calls_today=today,
            remaining_today=None if limits.per_day is None else max(limits.per_day - today, 0),
            waiting=None if full is None else waiting_reason(target, full, limits),
            waiting_until=None if full is None else views.stamp(window_end(full, now)),
        )


def _counted(session: Session, target: str, now: datetime) -> dict[str, int]:
    """The calls counted in the current windows; a row of an earlier window counts none."""
    keys = window_keys(now)
    rows = session.scalars(select(TargetCalls).where(TargetCalls.target == target))
    return {row.window: row.calls for row in rows if keys.get(row.window) == row.period}
