"""The stale-write guard's ordering rule. Pure.

Providers do not guarantee order (Xemelgo says so), so a mapping may name an ordering value; an
event whose value is older than the one that last wrote a record must not overwrite it.

Values are ordered by what they mean rather than by their JSON type, because one record can be
written by senders (or mapping versions) that spell the same time differently:

- numbers, and strings that are exactly a decimal number (``"10"``, ``"-2.5"``, ``"1e3"``),
  compare as numbers;
- ISO 8601 dates and date-times compare as instants; without an offset they are UTC;
- a number met with an ISO time is epoch time: seconds below ``MILLISECONDS_FROM`` (1e11),
  milliseconds from there on. 1e11 seconds is the year 5138, 1e11 milliseconds March 1973, so
  the two readings cannot meet for any plausible event time;
- other strings compare as text.

Any other pair (text against a number or a time) has no order: :func:`compare` says so and the
worker writes anyway, so a changed mapping cannot freeze a record.

The guard stores the value itself (``write_marks.order_value``, a JSON column on both databases),
so marks written before these rules are read by them just the same.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.expressions import is_number

#: Epoch numbers from here on are milliseconds when compared with an ISO time; below, seconds.
MILLISECONDS_FROM = 1e11

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


class _Kind(enum.Enum):
    NUMBER = "number"
    INSTANT = "instant"  #: microseconds since the epoch, exact (a float would round them)
    TEXT = "text"
    OTHER = "other"


def _read(value: Any) -> tuple[_Kind, Any]:
    """What an ordering value means: its kind and the value to compare within that kind."""
    if is_number(value):
        return _Kind.NUMBER, value
    if not isinstance(value, str):
        return _Kind.OTHER, value
    number = _decimal(value)
    if number is not None:
        return _Kind.NUMBER, number
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return _Kind.TEXT, value
    aware = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    return _Kind.INSTANT, (aware - _EPOCH) // _MICROSECOND


def _decimal(text: str) -> int | float | None:
    """The number a string spells exactly; integers stay exact, however large."""
    match = _DECIMAL.fullmatch(text)
    if match is None:
        return None
    if match.group(1) or match.group(2):
        return float(text)
    try:
        return int(text)
    except ValueError:  # more digits than Python converts: still a number, approximately
        return float(text)


def _epoch_microseconds(number: float) -> float:
    """An epoch number as microseconds: seconds, or milliseconds from ``MILLISECONDS_FROM`` on."""
    return number * (1_000 if abs(number) >= MILLISECONDS_FROM else 1_000_000)


def compare(candidate: Any, last_written: Any) -> int | None:
    """-1, 0 or 1 as ``candidate`` orders before, with or after ``last_written``.

    None when the two cannot be ordered (module docstring): such a write is never stale.
    """
    kind_a, a = _read(candidate)
    kind_b, b = _read(last_written)
    if {kind_a, kind_b} == {_Kind.NUMBER, _Kind.INSTANT}:
        if kind_a is _Kind.NUMBER:
            kind_a, a = _Kind.INSTANT, _epoch_microseconds(a)
        else:
            kind_b, b = _Kind.INSTANT, _epoch_microseconds(b)
    if kind_a is not kind_b or kind_a is _Kind.OTHER:
        return None
    order: int = (a > b) - (a < b)
    return order


def is_older(candidate: Any, last_written: Any) -> bool:
    """True when ``candidate`` orders strictly before ``last_written``."""
    return compare(candidate, last_written) == -1
