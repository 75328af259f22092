"""Pausing a group: its deliveries are still accepted, its events wait as held, and resuming it
processes them in the order received. Deactivating keeps its meaning (404)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from gateway import cli
from tests.integration.test_worker import ITEM_MAPPING, SECRET, flaky, moved, record

__all__ = ["flaky"]  # a fixture these tests use


@pytest.fixture
def group(admin: Any, group_factory: Any) -> dict[str, Any]:
    """A Xemelgo group whose record maps inventory.moved through ``items`` (newest wins)."""
    assert admin.put("/mappings/items", ITEM_MAPPING).status_code == 201
    made: dict[str, Any] = group_factory(secret=SECRET, events=["inventory.moved"])
    answer = admin.post(
        f"/webhooks/{made['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"], "mapping": "items"},
    )
    assert answer.status_code == 201, answer.get_json()
    return made


def paused(admin: Any, group: dict[str, Any], value: bool) -> dict[str, Any]:
    response = admin.patch(f"/groups/{group['id']}", {"paused": value})
    assert response.status_code == 200, response.get_json()
    view: dict[str, Any] = response.get_json()
    return view


def events(admin: Any) -> list[dict[str, Any]]:
    """The log, oldest first."""
    return list(reversed(admin.get("/events").get_json()["items"]))


def statuses(admin: Any) -> list[str]:
    return [e["status"] for e in events(admin)]


@pytest.mark.parametrize(
    ("change", "status", "stored"),
    [
        ({"paused": True}, 200, ["held"]),  # verified, stored, acknowledged; waits
        ({"active": False}, 404, []),  # deactivated: as before, the URL is gone
        ({"active": False, "paused": True}, 404, []),  # inactive wins: nothing is taken
    ],
    ids=["paused", "inactive", "inactive and paused"],
)
def test_a_paused_group_takes_deliveries_and_holds_their_events(
    admin: Any,
    group: dict[str, Any],
    deliver: Any,
    worker: Any,
    change: dict[str, Any],
    status: int,
    stored: list[str],
) -> None:
    assert admin.patch(f"/groups/{group['id']}", change).status_code == 200

    response = deliver(group, moved("A-1", "Dock", 1))

    assert response.status_code == status, response.get_json()
    assert worker.drain() == 0
    assert statuses(admin) == stored


def test_a_paused_group_refuses_a_wrong_signature_as_before(
    admin: Any, group: dict[str, Any], deliver: Any
) -> None:
    paused(admin, group, True)

    response = deliver(group, moved("A-1", "Dock", 1), secret="not-the-secret-0123456789abcdef")

    assert response.status_code == 401
    assert statuses(admin) == []


def test_resuming_processes_the_held_events_in_the_order_received(
    admin: Any, group: dict[str, Any], deliver: Any, worker: Any
) -> None:
    deliver(group, moved("A-1", "loc-1", 1))  # queued before the pause: held by it
    paused(admin, group, True)
    for at in range(2, 6):
        assert deliver(group, moved("A-1", f"loc-{at}", at)).status_code == 200
    assert worker.drain() == 0
    assert statuses(admin) == ["held"] * 5

    assert paused(admin, group, False)["paused"] is False
    # One event a batch: any taken before an older one would be found stale.
    worker.settings = worker.settings.with_overrides({"worker_batch_size": 1})
    assert worker.drain() == 5

    assert statuses(admin) == ["delivered"] * 5
    assert record(admin, "A-1")["Location__c"] == "loc-5"
    processed = [e["processed_at"] for e in events(admin)]
    assert processed == sorted(processed)


def test_released_events_are_due_when_resumed_after_those_already_waiting(
    admin: Any, group: dict[str, Any], group_factory: Any, deliver: Any, worker: Any
) -> None:
    paused(admin, group, True)
    deliver(group, moved("A-1", "Dock", 1))  # held first
    other = group_factory(secret=SECRET, events=["inventory.moved"])
    deliver(other, moved("B-1", "Dock", 2))  # due meanwhile, in a group not paused
    paused(admin, group, False)
    worker.settings = worker.settings.with_overrides({"worker_batch_size": 1})

    (first,) = worker.claim()

    assert first.group_id == other["id"]  # a long pause does not jump the queue


def test_an_event_a_worker_held_when_the_group_was_paused_waits_for_its_resumption(
    admin: Any, group: dict[str, Any], deliver: Any, worker: Any, flaky: Any
) -> None:
    flaky(outages=1)
    deliver(group, moved("A-1", "Dock", 1))
    leased = worker.claim()
    paused(admin, group, True)

    worker.process(leased)  # the target was down: to be retried
    assert statuses(admin) == ["pending"]
    assert worker.drain() == 0  # but not while its group is paused

    paused(admin, group, False)
    assert worker.drain() == 1
    assert statuses(admin) == ["delivered"]


def test_an_event_waiting_for_a_retry_is_held_and_keeps_its_attempts(
    admin: Any, group: dict[str, Any], deliver: Any, worker: Any, flaky: Any
) -> None:
    flaky(outages=1)
    deliver(group, moved("A-1", "Dock", 1))
    worker.drain(max_rounds=1)
    assert [(e["status"], e["attempts"]) for e in events(admin)] == [("pending", 1)]

    paused(admin, group, True)
    assert [(e["status"], e["attempts"]) for e in events(admin)] == [("held", 1)]
    paused(admin, group, False)
    worker.drain()

    assert [(e["status"], e["attempts"]) for e in events(admin)] == [("delivered", 2)]


def test_paused_is_set_on_creation_shown_and_changed(
    admin: Any, group_factory: Any, client: Any
) -> None:
    made = group_factory(paused=True)
    assert made["paused"] is True
    assert admin.get(f"/groups/{made['id']}").get_json()["paused"] is True
    assert group_factory()["paused"] is False

    assert paused(admin, made, False)["paused"] is False
    assert admin.get(f"/groups/{made['id']}").get_json()["paused"] is False


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_paused_must_be_true_or_false(admin: Any, group: dict[str, Any], value: Any) -> None:
    response = admin.patch(f"/groups/{group['id']}", {"paused": value})

    assert response.status_code == 422
    assert [d["path"] for d in response.get_json()["error"]["details"]] == ["paused"]
    assert admin.get(f"/groups/{group['id']}").get_json()["paused"] is False


def test_held_is_a_status_the_log_filters_by(
    admin: Any, group: dict[str, Any], deliver: Any
) -> None:
    deliver(group, moved("A-1", "Dock", 1))
    paused(admin, group, True)
    deliver(group, moved("A-2", "Dock", 2))

    held = admin.get("/events", query_string={"status": "held"}).get_json()["items"]

    assert [e["status"] for e in held] == ["held", "held"]


def test_deleting_a_paused_group_releases_its_held_events_to_fail_saying_why(
    admin: Any, group: dict[str, Any], deliver: Any, worker: Any
) -> None:
    paused(admin, group, True)
    deliver(group, moved("A-1", "Dock", 1))

    assert admin.delete(f"/groups/{group['id']}").status_code == 204
    worker.drain()

    (event,) = events(admin)
    assert (event["status"], event["last_error"]) == (
        "failed",
        "the event's webhook group was deleted",
    )


def test_held_events_are_counted_in_the_metrics_and_not_as_pending(
    admin: Any, group: dict[str, Any], deliver: Any, client: Any
) -> None:
    paused(admin, group, True)
    deliver(group, moved("A-1", "Dock", 1))

    text = client.get("/metrics").get_data(as_text=True)

    assert 'gateway_queue_events{status="held"} 1.0' in text
    assert 'gateway_queue_events{status="pending"} 0.0' in text


# --- replay --------------------------------------------------------------------------------


def test_a_held_event_is_replayed_only_when_its_status_is_named(
    admin: Any, group: dict[str, Any], deliver: Any
) -> None:
    paused(admin, group, True)
    deliver(group, moved("A-1", "Dock", 1))

    unnamed = admin.post("/events/replay", {"group_id": group["id"]}).get_json()
    named = admin.post("/events/replay", {"status": "held"}).get_json()

    assert (unnamed["matched"], unnamed["replayed"]) == (0, 0)
    assert (named["matched"], named["replayed"], named["held"]) == (1, 1, 1)
    assert statuses(admin) == ["held"]


def test_replaying_an_event_of_a_paused_group_holds_it_until_the_group_is_resumed(
    admin: Any, group: dict[str, Any], deliver: Any, worker: Any, flaky: Any
) -> None:
    flaky(outages=1)
    worker.settings = worker.settings.with_overrides({"max_attempts": 1})
    deliver(group, moved("A-1", "Dock", 1))
    worker.drain()
    (dead,) = events(admin)
    assert dead["status"] == "dead"
    paused(admin, group, True)

    replayed = admin.post(f"/events/{dead['id']}/replay").get_json()
    assert (replayed["status"], replayed["attempts"]) == ("held", 0)
    assert worker.drain() == 0

    paused(admin, group, False)
    worker.drain()
    assert statuses(admin) == ["delivered"]


def test_the_cli_says_how_many_replayed_events_are_held(
    admin: Any, group: dict[str, Any], deliver: Any, gw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused(admin, group, True)
    deliver(group, moved("A-1", "Dock", 1))
    monkeypatch.setattr(cli, "_gateway", lambda: gw)

    result = CliRunner().invoke(cli.main, ["events", "replay", "--status", "held"])

    assert result.exit_code == 0, result.output
    assert "replayed 1 event" in result.output
    assert "1 held: their group is paused" in result.output
