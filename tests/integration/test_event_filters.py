"""The event log's filters as clients send them: repeated, in a JSON list, or with a time whose
``+`` was left unencoded in the URL and so arrives as a space; and what a replay of many events
takes by them."""

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

    assert response.get_json() == {
        "replayed": 2,
        "ignored": 0,
        "matched": 2,
        "dry_run": False,
        "held": 0,
    }
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


@pytest.mark.parametrize(
    ("query", "count"),
    [
        # In UTC these are a little before year 1 and after year 9999: still before or after
        # every event, not beyond what the gateway can compare.
        ("since=0001-01-01T00:00:00%2B01:00", len(EventStatus)),
        ("until=0001-01-01T00:00:00%2B01:00", 0),
        ("since=9999-12-31T23:59:59-01:00", 0),
        ("until=9999-12-31T23:59:59-01:00", len(EventStatus)),
        ("since=0001-01-01T00:00:00%2B01:00&until=9999-12-31T23:59:59-01:00", len(EventStatus)),
    ],
)
def test_a_time_whose_utc_falls_outside_the_calendar_still_bounds_the_window(
    admin: Any, log: dict[str, str], query: str, count: int
) -> None:
    response = admin.get("/events", query_string=query)

    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["items"]) == count


def test_cli_replay_reads_times_as_the_api_does(
    admin: Any, gw: Any, log: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_gateway", lambda: gw)

    result = CliRunner().invoke(
        cli.main, ["events", "replay", "--since", "2026-12-02T13:00:00 08:00"]
    )

    # failed, dead and unrouted: the others received since are no errors, or duplicates.
    assert (result.exit_code, result.output) == (0, "replayed 3 events\n")


# --- what a replay of many events takes ---------------------------------------------------


def _log_statuses(admin: Any) -> dict[str, str]:
    """Each event's status, by the status it had in ``log``."""
    items = admin.get("/events").get_json()["items"]
    return {
        EventStatus(s).value: e["status"] for s, e in zip(EventStatus, reversed(items), strict=True)
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"limit": 5},  # a limit is no filter
        {"all": False},
        {"status": ""},  # an empty filter is none
        {"dry_run": True},  # nor does counting the whole log need less than replaying it
    ],
)
def test_a_replay_without_any_filter_is_refused_unless_it_asks_for_all(
    admin: Any, log: dict[str, str], body: dict[str, Any]
) -> None:
    before = _log_statuses(admin)

    response = admin.post("/events/replay", body)

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "replay_needs_filter"
    assert '"all": true' in error["message"]
    assert _log_statuses(admin) == before


#: What a replay takes without naming statuses: the events that were errors, or still wait.
TAKEN_UNNAMED = {"pending", "failed", "dead", "unrouted"}


@pytest.mark.parametrize(
    ("body", "taken"),
    [
        ({"all": True}, TAKEN_UNNAMED),
        ({"type": "order.paid"}, TAKEN_UNNAMED),  # any filter but status: the same
        ({"status": "delivered"}, {"delivered"}),  # never-errors named: taken
        ({"status": ["ignored", "stale"]}, {"ignored", "stale"}),
        ({"status": "failed,delivered"}, {"failed", "delivered"}),
        ({"status": "held"}, {"held"}),  # its group (deleted here) decides where it goes
        ({"status": "duplicate"}, set()),  # a duplicate is never processed twice
        ({"status": "processing"}, set()),  # a worker holds it
    ],
)
def test_events_that_were_never_errors_are_replayed_only_when_named(
    admin: Any, log: dict[str, str], body: dict[str, Any], taken: set[str]
) -> None:
    response = admin.post("/events/replay", body)

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "replayed": len(taken),
        "ignored": 0,
        "matched": len(taken),
        "dry_run": False,
        "held": 0,
    }
    expected = {s.value: "pending" if s.value in taken else s.value for s in EventStatus}
    assert _log_statuses(admin) == expected


@pytest.mark.parametrize(
    ("body", "matched"),
    [
        ({"all": True, "dry_run": True}, len(TAKEN_UNNAMED)),
        ({"status": "delivered,ignored", "dry_run": True}, 2),
        ({"all": True, "limit": 2, "dry_run": True}, 2),
        ({"group_id": "another", "dry_run": True}, 0),
    ],
)
def test_a_dry_run_counts_the_events_that_match_and_replays_none(
    admin: Any, log: dict[str, str], body: dict[str, Any], matched: int
) -> None:
    before = _log_statuses(admin)

    response = admin.post("/events/replay", body)

    assert response.get_json() == {
        "replayed": 0,
        "ignored": 0,
        "matched": matched,
        "dry_run": True,
        "held": 0,
    }
    assert _log_statuses(admin) == before


@pytest.mark.parametrize(
    ("options", "exit_code", "output"),
    [
        ([], 1, "Error: replay_needs_filter: a replay without any filter would take every event"),
        (["--all"], 0, "replayed 4 events\n"),
        (["--all", "--dry-run"], 0, "would replay 4 events (--dry-run: none replayed)\n"),
        (["--status", "stale", "--dry-run"], 0, "would replay 1 event (--dry-run: none replayed)"),
    ],
)
def test_cli_replay_needs_a_filter_or_all_and_can_only_count(
    admin: Any,
    gw: Any,
    log: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    options: list[str],
    exit_code: int,
    output: str,
) -> None:
    monkeypatch.setattr(cli, "_gateway", lambda: gw)
    before = _log_statuses(admin)

    result = CliRunner().invoke(cli.main, ["events", "replay", *options])

    assert result.exit_code == exit_code
    assert result.output.startswith(output)
    if exit_code or "--dry-run" in options:
        assert _log_statuses(admin) == before


@pytest.fixture
def payloads(gw: Any) -> None:
    """Events whose payloads name different customers."""
    rows = [
        {
            "group_id": "g-1",
            "delivery_id": n,
            "type": "order.paid",
            "status": EventStatus.DELIVERED,
            "dedupe_key": f"key-{n}",
            "payload": payload,
            "received_at": START + timedelta(minutes=n),
            "attempts": 1,
        }
        for n, payload in enumerate(
            [
                {"customer": "Ada Lovelace", "total": 10},
                {"customer": "Bob Müller", "note": "100% paid"},
                {"buyer": {"name": "ada"}, "total": 12},
            ]
        )
    ]
    with gw.db.session() as session:
        session.execute(insert(Event), rows)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ada", ["1", "3"]),  # ignoring case, at any depth
        ("buyer", ["3"]),  # a key
        ("müller", ["2"]),  # beyond ASCII
        ("100%", ["2"]),  # a wildcard is a character like any other
        ("10%", []),
        ("nobody", []),
    ],
)
def test_contains_finds_text_anywhere_in_the_payload(
    admin: Any, payloads: None, text: str, expected: list[str]
) -> None:
    response = admin.get("/events", query_string={"contains": text})

    assert response.status_code == 200
    assert sorted(item["id"] for item in response.get_json()["items"]) == expected


def test_a_replay_takes_the_events_whose_payload_holds_the_text(admin: Any, payloads: None) -> None:
    response = admin.post("/events/replay", {"contains": "ada", "status": "delivered"})

    assert response.get_json()["replayed"] == 2
    assert _statuses(admin, "status=pending") == ["pending", "pending"]
