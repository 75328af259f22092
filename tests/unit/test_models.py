"""Column types: what the gateway writes must be what SQLAlchemy would write."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from gateway.models import Timestamp

DIALECT = sqlite.dialect()
WRITTEN = Timestamp.dialect_impl(DIALECT).bind_processor(DIALECT)
SQLALCHEMYS = sqlite.DATETIME().bind_processor(DIALECT)


@given(
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-7, minutes=-30))]))
)
def test_sqlite_timestamps_are_sqlalchemys_text(value: datetime) -> None:
    """Stored text is compared as text on SQLite (claims, purges, filters): one format only."""
    assert WRITTEN(value) == SQLALCHEMYS(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        date(2026, 11, 29),
        datetime(2026, 11, 29, 7, 0, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5),
    ],
)
def test_sqlite_timestamps_edge_values(value: date | None) -> None:
    assert WRITTEN(value) == SQLALCHEMYS(value)
