"""The event log's filters as clients send them: repeated, in a JSON list, or with a time whose
``+`` was left unencoded in the URL and so arrives as a space."""

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


def _statuses(admin: Any, query: str) -> list[str]:
    response = admin.get("/events", query_string=query)
    assert response.status_code == 200, response.get_json()
    return sorted(item["status"] for item in response.get_json()["items"])


@pytest.mark.parametrize(
    ("query", "statuses"),
    [
        ("status=failed,dead", ["dead", "failed"]),
        ("status=failed&status=dead", ["dead", "failed"]),  # repeated: each counts
        ("status=failed,dead&status=ignored", ["dead", "failed", "ignored"]),  # both forms
        ("status=failed&status=", ["failed"]),  # an empty value adds nothing
    ],
)
def test_every_status_given_counts(
    admin: Any, log: dict[str, str], query: str, statuses: list[str]
) -> None:
    assert _statuses(admin, query) == statuses


def test_an_unknown_status_is_refused_in_any_value(admin: Any, log: dict[str, str]) -> None:
    response = admin.get("/events", query_string="status=failed&status=broken")

    assert response.status_code == 422
    assert [d["path"] for d in response.get_json()["error"]["details"]] == ["status"]


@pytest.mark.parametrize(
    ("path", "parameter", "values"),
    [
        ("/events", "group_id", ("g-1", "g-2")),
        ("/events", "type", ("order.paid", "order.paid")),
        ("/events", "since", ("2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z")),
        ("/events", "until", ("2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z")),
        ("/mappings/items", "version", ("1", "1")),
    ],
)
def test_a_parameter_that_takes_one_value_given_twice_is_refused(
    admin: Any, log: dict[str, str], path: str, parameter: str, values: tuple[str, str]
) -> None:
    query = "&".join(f"{parameter}={value}" for value in values)

    response = admin.get(path, query_string=query)

    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "repeated_parameter"
    assert [d["path"] for d in error["details"]] == [parameter]


def test_replay_takes_statuses_as_a_json_list(admin: Any, log: dict[str, str]) -> None:
    response = admin.post("/events/replay", {"status": ["failed", "dead"]})

    assert response.get_json() == {"replayed": 2, "ignored": 0}
    assert _statuses(admin, "status=failed,dead") == []


def test_cli_replay_takes_status_repeated(
    admin: Any, gw: Any, log: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_gateway", lambda: gw)

    result = CliRunner().invoke(
        cli.main, ["events", "replay", "--status", "failed", "--status", "dead"]
    )

    assert (result.exit_code, result.output) == (0, "replayed 2 events\n")


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
