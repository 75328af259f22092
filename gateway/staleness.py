"""The stale-write guard's ordering rule. Pure.

Providers do not guarantee order (Xemelgo says so), so a mapping may name an ordering value; an
event whose value is older than the one that last wrote a record must not overwrite it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def _comparable(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (2, str(value))
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        try:
            return (0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return (1, value)
    return (2, str(value))


def is_older(candidate: Any, last_written: Any) -> bool:
    """True when ``candidate`` orders strictly before ``last_written``.

    Numbers compare as numbers, ISO timestamps as instants, other strings as text; values of
    different kinds never count as older, so a changed mapping cannot freeze a record.
    """
    kind_a, a = _comparable(candidate)
    kind_b, b = _comparable(last_written)
    return kind_a == kind_b and a < b
