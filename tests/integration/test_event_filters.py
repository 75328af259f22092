"""The event log's filters as clients send them: a time whose ``+`` was left unencoded in the
URL, and so arrives as a space, means the offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import insert

from gateway import cli
from gateway.models import Event, EventStatus

#: The first event's time; the others follow an hour apart, in EventStatus order.
START = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def log(gw: Any) -> dict[str, str]:
    """One event in each status, an hour apart from START; their ids by status."""
    rows = [
        {
            "group_id": "g-1",
            "delivery_id": n,
            "type": "order.paid",
            "status": status,
            "dedupe_key": f"key-{n}",
            "payload": {"n": n},
            "received_at": START + timedelta(hours=n),
            "attempts": 1,
        }
        for n, status in enumerate(EventStatus)
    ]
    with gw.db.session() as session:
        session.execute(insert(Event), rows)
    return {status.value: str(n) for n, status in enumerate(EventStatus, start=1)}


@pytest.mark.parametrize(
    "offset",
    [
        pytest.param("%2B08:00", id="encoded"),
        pytest.param("+08:00", id="unencoded"),
        pytest.param("+0800", id="unencoded, basic format"),
    ],
)
def test_an_unencoded_plus_in_a_time_is_read_as_the_offset(
    admin: Any, log: dict[str, str], offset: str
) -> None:
    # 10:00 and 12:00 at +08:00 are 02:00 and 04:00 UTC: the first two events.
    query = f"since=2026-12-02T10:00:00{offset}&until=2026-12-02T12:00{offset}"

    response = admin.get("/events", query_string=query)

    assert response.status_code == 200, response.get_json()
    assert [item["id"] for item in response.get_json()["items"]] == [
        log["processing"],
        log["pending"],
    ]


@pytest.mark.parametrize(
    "since",
    [
        "2026-12-02 08:00 x",  # not an offset
        "2026-12-02T10:00:00 8:00",  # an offset's hour has two digits
        "2026-12-02T10:00:00  08:00",  # two spaces are not one decoded plus
    ],
)
def test_a_time_that_is_not_a_decoded_plus_is_still_refused(
    admin: Any, log: dict[str, str], since: str
) -> None:
    response = admin.get("/events", query_string={"since": since})

    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == [
        {"path": "since", "message": f"cannot parse {since!r}"}
    ]


def test_cli_replay_reads_times_as_the_api_does(
    admin: Any, gw: Any, log: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_gateway", lambda: gw)

    result = CliRunner().invoke(
        cli.main, ["events", "replay", "--since", "2026-12-02T13:00:00 08:00"]
    )

    assert (result.exit_code, result.output) == (0, "replayed 5 events\n")
