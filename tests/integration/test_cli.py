"""The command line: replaying events and loading mappings as admins do from a shell."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from gateway import cli

SECRET = "cli-test-secret-0123456789abcdef"


@pytest.fixture
def run(gw: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke ``gateway ...`` in-process against the test's database."""
    monkeypatch.setattr(cli, "_gateway", lambda: gw)

    def invoke(*args: str) -> Any:
        result = CliRunner().invoke(cli.main, list(args))
        assert result.exit_code == 0, result.output
        return result

    return invoke


@pytest.fixture
def failed_events(admin: Any, group_factory: Any, deliver: Any, worker: Any) -> list[str]:
    """Two events that failed because their record has no mapping, and one unrouted."""
    group = group_factory(secret=SECRET, events=["inventory.moved", "inventory.cycle_count"])
    admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"]},
    )
    for n, topic in enumerate(["inventory.moved", "inventory.moved", "inventory.cycle_count"]):
        body = {"id": str(n), "eventTimestamp": n, "topic": topic, "data": {"n": n}}
        deliver(group, json.dumps(body).encode())
    worker.drain()
    return [e["id"] for e in admin.get("/events?status=failed").get_json()["items"]]


def test_replay_by_status_queues_every_matching_event(
    run: Any, admin: Any, failed_events: list[str]
) -> None:
    result = run("events", "replay", "--status", "failed")

    assert "replayed 2 events" in result.output
    statuses = sorted(e["status"] for e in admin.get("/events").get_json()["items"])
    assert statuses == ["pending", "pending", "unrouted"]


def test_replay_by_id_queues_just_those(run: Any, admin: Any, failed_events: list[str]) -> None:
    result = run("events", "replay", failed_events[0])

    assert "replayed 1 events" in result.output
    assert admin.get(f"/events/{failed_events[0]}").get_json()["status"] == "pending"
    assert admin.get(f"/events/{failed_events[1]}").get_json()["status"] == "failed"


def test_replaying_an_unknown_event_is_a_clear_error(gw: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(cli, "_gateway", lambda: gw)

    result = CliRunner().invoke(cli.main, ["events", "replay", "424242"])

    assert result.exit_code == 1
    assert "Error: not_found: no event 424242" in result.output


@pytest.mark.parametrize("by_id", [True, False], ids=["by id", "by status"])
def test_replay_keeps_an_event_ignored_while_its_group_does_not_register_its_type(
    run: Any, admin: Any, group_factory: Any, deliver: Any, by_id: bool
) -> None:
    group = group_factory(secret=SECRET, events=["inventory.cycle_count"])
    body = {"id": "m-1", "eventTimestamp": 1, "topic": "inventory.moved", "data": {}}
    deliver(group, json.dumps(body).encode())
    (event,) = admin.get("/events").get_json()["items"]

    result = run("events", "replay", *([event["id"]] if by_id else ["--status", "ignored"]))

    assert result.output.splitlines() == [
        "replayed 1 events",
        "1 stay ignored: their group does not register their type",
    ]
    assert admin.get(f"/events/{event['id']}").get_json()["status"] == "ignored"
