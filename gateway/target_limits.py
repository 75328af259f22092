"""Calls-per-second and daily call budgets toward targets: what they are and who may call now.

A call is one upsert sent to the target (one request to an HTTP target; Salesforce packs many
into one API call, so its budget counts records). Counts are kept per window, a UTC second or
a UTC day, in the database (:mod:`gateway.targets.limits`), so every worker on every host
spends from the same budget. This module is the arithmetic, apart from any storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.target_names import TARGET_NAMES, is_target_name

#: The windows counted, each with how its key is written from a UTC time.
SECOND, DAY = "second", "day"
_UNITS = {"/s": SECOND, "/day": DAY}


@dataclass(frozen=True)
class TargetLimits:
    """At most ``per_second`` calls in any UTC second and ``per_day`` in any UTC day."""

    per_second: int | None = None
    per_day: int | None = None

    def of(self, window: str) -> int | None:
        return self.per_second if window == SECOND else self.per_day


@dataclass(frozen=True)
class Grant:
    """How many of the events asking may call now, in order; why and until when the rest wait."""

    granted: int
    #: The calls each window has counted once the granted ones are added.
    counts: dict[str, int]
    reason: str | None = None
    until: datetime | None = None


def parse_limits(raw: str) -> dict[str, TargetLimits]:
    """``salesforce=10/s,100000/day;http:crm=5/s`` as limits by target name.

    Raises ValueError with a message saying what is wrong with which part.
    """
    limits: dict[str, TargetLimits] = {}
    for part in filter(None, (p.strip() for p in raw.split(";"))):
        name, sep, spec = part.partition("=")
        name = name.strip()
        if not sep or not is_target_name(name):
            raise ValueError(f"{part!r} is not <target>=<limits>, the target {TARGET_NAMES}")
        values: dict[str, int] = {}
        for item in filter(None, (i.strip() for i in spec.split(","))):
            number, unit = _split_unit(item)
            if unit is None or not number.isdigit() or int(number) < 1:
                raise ValueError(f"{item!r} for {name} is not N/s or N/day with N at least 1")
            values[unit] = int(number)
        if not values:
            raise ValueError(f"{name} names no limit: give N/s, N/day or both")
        limits[name] = TargetLimits(values.get(SECOND), values.get(DAY))
    return limits


def _split_unit(item: str) -> tuple[str, str | None]:
    for suffix, unit in _UNITS.items():
        if item.endswith(suffix):
            return item.removesuffix(suffix).strip(), unit
    return item, None


def window_keys(now: datetime) -> dict[str, str]:
    """The key of the current second and day, as the counts are stored under."""
    return {SECOND: now.strftime("%Y-%m-%dT%H:%M:%S"), DAY: now.strftime("%Y-%m-%d")}


def window_end(window: str, now: datetime) -> datetime:
    """When the current window ends and its count starts again from nothing."""
    if window == SECOND:
        return now.replace(microsecond=0) + timedelta(seconds=1)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def grant(
    target: str,
    limits: TargetLimits,
    counted: Mapping[str, int],
    wanted: Sequence[int],
    now: datetime,
) -> Grant:
    """Let events call, in order, while each window has room for all of an event's calls.

    An event needing more calls than a whole window allows goes when the window is still
    empty, or it would wait forever. The first event that does not fit stops the rest, so
    no event overtakes an earlier one.
    """
    counts = {window: counted.get(window, 0) for window in (SECOND, DAY)}
    for granted, calls in enumerate(wanted):
        full = [w for w in (DAY, SECOND) if _full(limits.of(w), counts[w], calls)]
        if full:
            window = full[0]
            return Grant(
                granted, counts, waiting_reason(target, window, limits), window_end(window, now)
            )
        counts = {w: n + calls for w, n in counts.items()}
    return Grant(len(wanted), counts)


def _full(limit: int | None, counted: int, calls: int) -> bool:
    return limit is not None and counted > 0 and counted + calls > limit


def waiting_reason(target: str, window: str, limits: TargetLimits) -> str:
    """Why events for ``target`` wait while ``window`` is full: the event's ``last_error``."""
    if window == DAY:
        return f"waiting: the daily budget of {limits.per_day} calls to {target} is spent"
    return f"waiting: the limit of {limits.per_second} calls a second to {target} is reached"
