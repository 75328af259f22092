"""The stale-write guard orders values by what they mean, not by their JSON type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.staleness import MILLISECONDS_FROM, compare, is_older

TEN = datetime(2025, 12, 12, 10, 0, tzinfo=UTC)
TEN_MS = int(TEN.timestamp() * 1000)
TEN_S = int(TEN.timestamp())


@pytest.mark.parametrize(
    ("candidate", "last_written", "expected"),
    [
        (1000, 2000, -1),  # numbers as numbers
        (2.5, 2, 1),
        ("10", "9", 1),  # numeric strings as numbers, not as text
        ("-3", "-20", 1),
        ("1e3", 999, 1),  # a numeric string against a number
        ("10", 10.0, 0),
        ("2025-12-12T11:00:00Z", "2025-12-12T10:00:00Z", 1),  # ISO times as instants
        ("2025-12-12T11:00:00+02:00", "2025-12-12T10:00:00Z", -1),  # offsets count
        ("2025-12-12T10:00:00", "2025-12-12T10:00:00Z", 0),  # naive is UTC
        ("2025-12-12", "2025-12-11T23:59:59Z", 1),  # a date is its midnight, UTC
        ("2025-12-12T10:00:00.5Z", "2025-12-12T10:00:00.25Z", 1),
        ("2025-12-12T11:00:00Z", TEN_MS, 1),  # epoch milliseconds against ISO
        (TEN_MS, "2025-12-12T11:00:00Z", -1),
        (TEN_MS, "2025-12-12T10:00:00Z", 0),
        ("2025-12-12T09:00:00Z", TEN_S, -1),  # epoch seconds against ISO
        (str(TEN_MS), "2025-12-12T09:00:00Z", 1),  # numeric text is a number, so epoch too
        ("b", "a", 1),  # other strings as text
        ("Picked", "Reserved", -1),
        ("abc", 5, None),  # text against a number or a time: no order
        ("abc", "2025-12-12T10:00:00Z", None),
        (True, False, None),  # not an ordering value at all
    ],
)
def test_compare(candidate: Any, last_written: Any, expected: int | None) -> None:
    assert compare(candidate, last_written) == expected


def test_an_iso_time_after_epoch_milliseconds_of_an_earlier_time_is_not_stale() -> None:
    assert not is_older("2025-12-12T11:00:00Z", TEN_MS)


INSTANTS = st.datetimes(
    min_value=datetime(1975, 1, 1), max_value=datetime(2999, 12, 31), timezones=st.just(UTC)
)
OFFSETS = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]


def spellings(instant: datetime) -> st.SearchStrategy[tuple[Any, datetime]]:
    """Ways a sender may write an instant (ISO with Z, an offset or none; epoch s or ms), each
    with the instant it spells: epoch numbers here carry whole seconds only."""
    whole = instant.replace(microsecond=0)
    seconds = int(whole.timestamp())
    return st.sampled_from(
        [
            (instant.isoformat().replace("+00:00", "Z"), instant),
            (instant.replace(tzinfo=None).isoformat(), instant),
            *((instant.astimezone(tz).isoformat(), instant) for tz in OFFSETS),
            (seconds, whole),
            (seconds * 1000, whole),
            (str(seconds * 1000), whole),
        ]
    )


def is_epoch(form: Any) -> bool:
    return not isinstance(form, str) or form.isdigit()


@given(st.data(), INSTANTS, INSTANTS)
def test_any_two_spellings_of_times_order_as_the_times(
    data: st.DataObject, a: datetime, b: datetime
) -> None:
    form_a, time_a = data.draw(spellings(a))
    form_b, time_b = data.draw(spellings(b))
    # Two plain numbers compare as numbers, so seconds against milliseconds is no time order.
    assume(not (is_epoch(form_a) and is_epoch(form_b)) or unit(form_a) == unit(form_b))

    assert compare(form_a, form_b) == (time_a > time_b) - (time_a < time_b)


def unit(form: Any) -> str:
    return "ms" if int(form) >= MILLISECONDS_FROM else "s"


NUMBERS = st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False))


@given(NUMBERS, NUMBERS, st.booleans(), st.booleans())
def test_numbers_order_alike_as_json_numbers_or_as_text(
    a: float, b: float, a_as_text: bool, b_as_text: bool
) -> None:
    form_a = repr(a) if a_as_text else a
    form_b = repr(b) if b_as_text else b

    assert compare(form_a, form_b) == (a > b) - (a < b)


VALUES = st.one_of(NUMBERS, st.text(), INSTANTS.map(datetime.isoformat))


@given(VALUES, VALUES)
def test_the_order_is_antisymmetric(a: Any, b: Any) -> None:
    forward, backward = compare(a, b), compare(b, a)

    assert forward == (None if backward is None else -backward)
