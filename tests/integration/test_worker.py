"""The worker: routing, mapping versions, the stale guard, retries, dead events and replay."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway import views
from gateway.errors import TransientTargetError
from gateway.mapping import CompiledMapping
from gateway.mapping_store import MappingStore
from gateway.targets.base import UpsertResult

SECRET = "worker-test-secret-0123456789abcdef"

ITEM_MAPPING = {
    "name": "items",
    "upserts": [
        {
            "key": "item",
            "object": "Item__c",
            "external_id_field": "Item_Id__c",
            "external_id": "payload.data.itemId",
            "order_by": "payload.eventTimestamp",
            "fields": {
                "Location__c": "payload.data.location",
                "Seen_At__c": "sf_datetime(payload.eventTimestamp)",
                "Topic__c": "event.type",
            },
        }
    ],
}


def moved(
    item: str, location: str | None, at: Any, topic: str = "inventory.moved", **data: Any
) -> bytes:
    event = {
        "id": f"attempt-{item}-{at}",
        "eventTimestamp": at,
        "topic": topic,
        "data": {"itemId": item, "location": location, **data},
    }
    return json.dumps(event).encode()


@pytest.fixture
def setup(admin: Any, group_factory: Any) -> dict[str, Any]:
    """A Xemelgo group with an active record mapping inventory.moved through ``items``."""
    assert admin.put("/mappings/items", ITEM_MAPPING).status_code == 201
    group = group_factory(secret=SECRET, events=["inventory.moved", "inventory.cycle_count"])
    record = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"], "mapping": "items"},
    ).get_json()
    return {"group": group, "record": record}


def statuses(admin: Any) -> list[str]:
    return [e["status"] for e in reversed(admin.get("/events").get_json()["items"])]


def record(admin: Any, item: str) -> dict[str, Any]:
    response = admin.get(f"/records/Item__c/{item}")
    assert response.status_code == 200, response.get_json()
    fields: dict[str, Any] = response.get_json()["fields"]
    return fields


def test_an_event_becomes_a_record_and_its_history_names_the_mapping_version(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    deliver(setup["group"], moved("A-1", "Dock 3", 1765572297000))

    worker.drain()

    assert statuses(admin) == ["delivered"]
    assert record(admin, "A-1") == {
        "Item_Id__c": "A-1",
        "Location__c": "Dock 3",
        "Seen_At__c": "2025-12-12T20:44:57.000Z",
        "Topic__c": "inventory.moved",
    }
    event_id = admin.get("/events").get_json()["items"][0]["id"]
    history = admin.get(f"/events/{event_id}").get_json()["history"]
    upsert = next(h for h in history if h["object"])
    assert upsert["mapping"] == {"name": "items", "version": 1}
    assert (upsert["outcome"], upsert["webhook_id"]) == ("created", setup["record"]["id"])
    assert sent(upsert) == ("Item_Id__c", record(admin, "A-1"), None)  # what the store received
    assert admin.get("/records/Item__c/A-1").get_json()["source_event_id"] == event_id


def test_processing_an_event_twice_changes_nothing(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    deliver(setup["group"], moved("A-1", "Dock 3", 1765572297000))
    worker.drain()
    first = admin.get("/records/Item__c/A-1").get_json()
    event_id = admin.get("/events").get_json()["items"][0]["id"]

    admin.post(f"/events/{event_id}/replay")
    worker.drain()

    again = admin.get("/records/Item__c/A-1").get_json()
    assert again["fields"] == first["fields"]
    assert again["created_at"] == first["created_at"]
    assert statuses(admin) == ["delivered"]


ROUTING = [
    # (record changes, event body, expected status)
    ({}, moved("A-1", "Dock", 1), "delivered"),  # registered type, no filter
    ({"active": False}, moved("A-1", "Dock", 1), "unrouted"),  # the only record is inactive
    ({"filter": "data.location == 'Dock'"}, moved("A-1", "Dock", 1), "delivered"),  # filter true
    ({"filter": "data.location == 'Yard'"}, moved("A-1", "Dock", 1), "unrouted"),  # filter false
    ({"events": ["inventory.cycle_count"]}, moved("A-1", "Dock", 1), "unrouted"),  # other type
    # a filter runs with the mapping functions and sees `payload` and `event` as mappings do
    ({"filter": "lower(data.location) == 'dock'"}, moved("A-1", "Dock", 1), "delivered"),
    ({"filter": "payload.data.location == 'Dock'"}, moved("A-1", "Dock", 1), "delivered"),
    ({"filter": "event.type == 'inventory.moved'"}, moved("A-1", "Dock", 1), "delivered"),
    ({"filter": "event.type == 'inventory.cycle_count'"}, moved("A-1", "Dock", 1), "unrouted"),
]


@pytest.mark.parametrize(("changes", "body", "expected"), ROUTING)
def test_routing(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    changes: dict[str, Any],
    body: bytes,
    expected: str,
) -> None:
    if changes:
        admin.patch(f"/webhooks/{setup['record']['id']}", changes)
    deliver(setup["group"], body)

    worker.drain()

    assert statuses(admin) == [expected]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"active": False}, "no active webhook record of this group takes 'inventory.moved'"),
        (
            {"filter": "data.location == 'Yard'"},
            "1 active webhook record of this group takes 'inventory.moved',"
            " but its filter did not match",
        ),
    ],
)
def test_an_unrouted_event_says_why(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    changes: dict[str, Any],
    reason: str,
) -> None:
    admin.patch(f"/webhooks/{setup['record']['id']}", changes)
    deliver(setup["group"], moved("A-1", "Dock", 1))

    worker.drain()

    [event] = admin.get("/events").get_json()["items"]
    assert (event["status"], event["last_error"]) == ("unrouted", reason)
    (row,) = admin.get(f"/events/{event['id']}").get_json()["history"]
    assert sent(row) == (None, None, None)  # it names no record, so nothing was sent


def test_an_event_goes_to_every_record_that_takes_it(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    second = dict(ITEM_MAPPING, name="items-copy")
    second["upserts"] = [dict(ITEM_MAPPING["upserts"][0], object="Item_Copy__c")]
    admin.put("/mappings/items-copy", second)
    admin.post(
        f"/webhooks/{setup['record']['id']}/clone",
        {"label": "Copy", "events": ["inventory.moved"], "mapping": "items-copy"},
    )
    deliver(setup["group"], moved("A-1", "Dock", 1))

    worker.drain()

    assert admin.get("/records/Item__c/A-1").status_code == 200
    assert admin.get("/records/Item_Copy__c/A-1").status_code == 200


def test_the_template_never_routes(
    admin: Any, group_factory: Any, deliver: Any, worker: Any
) -> None:
    group = group_factory(secret=SECRET, events=["inventory.moved"])
    deliver(group, moved("A-1", "Dock", 1))

    worker.drain()

    assert statuses(admin) == ["unrouted"]


def test_a_record_follows_the_newest_mapping_version_unless_pinned(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    changed = json.loads(json.dumps(ITEM_MAPPING))
    changed["upserts"][0]["fields"]["Location__c"] = "upper(payload.data.location)"
    assert admin.put("/mappings/items", changed).get_json()["version"] == 2
    deliver(setup["group"], moved("A-1", "dock", 1))
    worker.drain()
    admin.patch(f"/webhooks/{setup['record']['id']}", {"mapping": {"name": "items", "version": 1}})
    deliver(setup["group"], moved("B-2", "dock", 2))
    worker.drain()

    assert record(admin, "A-1")["Location__c"] == "DOCK"  # newest: version 2
    assert record(admin, "B-2")["Location__c"] == "dock"  # pinned to version 1


def test_an_unchanged_document_makes_no_new_version(admin: Any) -> None:
    admin.put("/mappings/items", ITEM_MAPPING)

    again = admin.put("/mappings/items", ITEM_MAPPING)

    assert again.status_code == 200
    assert again.get_json()["version"] == 1
    assert [v["version"] for v in admin.get("/mappings/items/versions").get_json()["items"]] == [1]


def _put_at_once(admin: Any, documents: list[dict[str, Any]]) -> list[Any]:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(len(documents))

    def put(document: dict[str, Any]) -> Any:
        start.wait()
        return admin.put("/mappings/items", document)

    with ThreadPoolExecutor(len(documents)) as pool:
        return list(pool.map(put, documents))


def test_edits_of_one_mapping_made_at_once_each_get_a_version(admin: Any) -> None:
    edits = [{**ITEM_MAPPING, "description": f"edit {n}"} for n in range(8)]

    answers = _put_at_once(admin, edits)

    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert sorted(a.get_json()["version"] for a in answers) == list(range(1, 9))
    versions = admin.get("/mappings/items/versions").get_json()["items"]
    assert sorted(v["description"] for v in versions) == sorted(e["description"] for e in edits)


def test_one_document_put_at_once_is_created_once(admin: Any) -> None:
    answers = _put_at_once(admin, [ITEM_MAPPING] * 8)

    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert {a.get_json()["version"] for a in answers} == {1}


def test_a_mapping_read_by_get_can_be_changed_and_sent_back(admin: Any) -> None:
    admin.put("/mappings/items", ITEM_MAPPING)
    shown = admin.get("/mappings/items").get_json()
    shown["description"] = "Item moves"

    response = admin.put("/mappings/items", shown)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["version"] == 2
    assert response.get_json()["document"] == {**ITEM_MAPPING, "description": "Item moves"}


def test_an_edit_made_to_the_document_copy_alone_is_refused_not_dropped(admin: Any) -> None:
    admin.put("/mappings/items", ITEM_MAPPING)
    shown = admin.get("/mappings/items").get_json()
    shown["document"]["description"] = "edited in the copy"

    response = admin.put("/mappings/items", shown)

    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["path"] == "document"
    assert admin.get("/mappings/items").get_json()["version"] == 1


def test_a_change_made_to_an_older_version_is_a_conflict(admin: Any) -> None:
    admin.put("/mappings/items", ITEM_MAPPING)
    first = admin.get("/mappings/items").get_json()
    admin.put("/mappings/items", {**ITEM_MAPPING, "description": "changed meanwhile"})

    response = admin.put("/mappings/items", {**first, "description": "stale edit"})

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "version_conflict"
    assert admin.get("/mappings/items").get_json()["description"] == "changed meanwhile"


@pytest.mark.parametrize("version", [0, -1, "2", 1.5, True])
def test_a_version_that_is_not_a_version_number_is_422(admin: Any, version: Any) -> None:
    response = admin.put("/mappings/items", {**ITEM_MAPPING, "version": version})

    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["path"] == "version"


def test_an_invalid_mapping_is_422_with_the_path_of_each_problem(admin: Any) -> None:
    broken = json.loads(json.dumps(ITEM_MAPPING))
    broken["upserts"][0]["external_id"] = "payload.[["
    del broken["upserts"][0]["object"]

    response = admin.put("/mappings/items", broken)

    assert response.status_code == 422
    paths = {d["path"] for d in response.get_json()["error"]["details"]}
    assert {"upserts[0].external_id", "upserts[0].object"} <= paths


# --- the stale-write guard ---------------------------------------------------------------


def test_an_older_event_does_not_overwrite_a_newer_one(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    deliver(setup["group"], moved("A-1", "Newer", 2000))
    worker.drain()
    deliver(setup["group"], moved("A-1", "Older", 1000))
    worker.drain()

    assert record(admin, "A-1")["Location__c"] == "Newer"
    assert statuses(admin) == ["delivered", "stale"]


def test_out_of_order_events_in_one_batch_keep_the_newest(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    deliver(setup["group"], moved("A-1", "Newest", 3000))
    deliver(setup["group"], moved("A-1", "Oldest", 1000))
    deliver(setup["group"], moved("A-1", "Middle", 2000))

    worker.drain()

    assert record(admin, "A-1")["Location__c"] == "Newest"
    assert statuses(admin) == ["delivered", "stale", "stale"]


UNGUARDED_FIELDS = {"Location__c": "payload.data.location"}


@pytest.mark.parametrize(
    ("first", "second", "expected", "message"),
    [
        # (ordering value of the first event, of the second, the second's status, its message)
        (1765533600000, "2025-12-12T11:00:00Z", "delivered", None),  # ISO after epoch ms
        (1765533600000, "2025-12-12T09:00:00+00:00", "stale", "is older than 1765533600000"),
        ("2025-12-12T10:00:00Z", 1765537200, "delivered", None),  # epoch seconds after ISO
        ("9", "10", "delivered", None),  # numeric strings compare as numbers
        ("10", "9", "stale", 'order_by value "9" is older than "10"'),
        (5, "not-a-time", "delivered", 'order_by value "not-a-time" cannot be ordered'),
        (5, None, "delivered", "order_by yields null, so this write was not checked against 5"),
    ],
)
def test_the_stale_guard_orders_values_by_what_they_mean(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    first: Any,
    second: Any,
    expected: str,
    message: str | None,
) -> None:
    mapping = json.loads(json.dumps(ITEM_MAPPING))
    mapping["upserts"][0]["fields"] = UNGUARDED_FIELDS
    admin.put("/mappings/items", mapping)
    deliver(setup["group"], moved("A-1", "First", first))
    worker.drain()
    deliver(setup["group"], moved("A-1", "Second", second))
    worker.drain()

    assert statuses(admin) == ["delivered", expected]
    latest = admin.get("/events").get_json()["items"][0]["id"]
    (row,) = admin.get(f"/events/{latest}").get_json()["history"]
    assert (row["message"] is None) if message is None else (message in row["message"])
    assert record(admin, "A-1")["Location__c"] == ("First" if expected == "stale" else "Second")


# --- failures, retries, replay -----------------------------------------------------------


def test_a_mapping_error_fails_the_event_with_a_message_to_act_on(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    deliver(
        setup["group"],
        json.dumps(
            {"id": "x", "eventTimestamp": 1, "topic": "inventory.moved", "data": {}}
        ).encode(),
    )

    worker.drain()

    event = admin.get("/events").get_json()["items"][0]
    assert event["status"] == "failed"
    assert "'item'" in event["last_error"]
    assert "external id" in event["last_error"]


def test_a_record_without_mapping_fails_and_says_so(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    admin.patch(f"/webhooks/{setup['record']['id']}", {"mapping": None})
    deliver(setup["group"], moved("A-1", "Dock", 1))

    worker.drain()

    assert "has no mapping" in admin.get("/events").get_json()["items"][0]["last_error"]


def test_fix_the_mapping_and_replay_delivers_a_failed_event(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    broken = json.loads(json.dumps(ITEM_MAPPING))
    broken["upserts"][0]["external_id"] = "payload.data.missing"
    admin.put("/mappings/items", broken)
    deliver(setup["group"], moved("A-1", "Dock", 1))
    worker.drain()
    assert statuses(admin) == ["failed"]

    admin.put("/mappings/items", ITEM_MAPPING)
    replayed = admin.post("/events/replay", {"status": "failed"}).get_json()
    worker.drain()

    assert replayed == {"replayed": 1, "ignored": 0, "matched": 1, "dry_run": False, "held": 0}
    assert statuses(admin) == ["delivered"]
    assert record(admin, "A-1")["Location__c"] == "Dock"


class FlakyTarget:
    """A target that is unavailable for the first ``outages`` calls."""

    name = "flaky"

    def __init__(self, outages: int) -> None:
        self.outages = outages
        self.calls = 0

    def upsert(self, requests: Any) -> list[UpsertResult]:
        self.calls += 1
        if self.calls <= self.outages:
            raise TransientTargetError("the target is over its API limit")
        return [
            UpsertResult(ok=True, created=True, record_id=f"a0{n}") for n, _ in enumerate(requests)
        ]


@pytest.fixture
def flaky(gw: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Route the group's target through FlakyTarget (a test double for a remote CRM)."""

    def use(outages: int) -> FlakyTarget:
        target = FlakyTarget(outages)
        monkeypatch.setattr(gw.targets, "is_local", lambda name: False)
        monkeypatch.setattr(gw.targets, "remote", lambda name: target)
        return target

    return use


@pytest.mark.parametrize(
    ("outages", "max_attempts", "expected"),
    [
        (1, 3, "delivered"),  # one outage, retried, then delivered
        (2, 3, "delivered"),  # two outages still inside the limit
        (3, 3, "dead"),  # every attempt failed: dead at the limit
    ],
)
def test_transient_failures_retry_until_the_limit_then_dead(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    flaky: Any,
    outages: int,
    max_attempts: int,
    expected: str,
) -> None:
    target = flaky(outages)
    worker.settings = worker.settings.with_overrides({"max_attempts": max_attempts})
    deliver(setup["group"], moved("A-1", "Dock", 1))

    worker.drain()

    event = admin.get("/events").get_json()["items"][0]
    assert event["status"] == expected
    assert event["attempts"] == min(outages + 1, max_attempts)
    assert target.calls == min(outages + 1, max_attempts)


@pytest.fixture
def dead_event(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any, flaky: Any
) -> Callable[..., str]:
    """The id of an event that died: the target was down ``outages`` times, more than the
    worker's ``max_attempts``."""

    def make(outages: int, max_attempts: int) -> str:
        flaky(outages=outages)
        worker.settings = worker.settings.with_overrides({"max_attempts": max_attempts})
        deliver(setup["group"], moved("A-1", "Dock", 1))
        worker.drain()
        assert statuses(admin) == ["dead"]
        return str(admin.get("/events").get_json()["items"][0]["id"])

    return make


def test_a_dead_event_is_replayed_when_the_target_is_back(
    admin: Any, worker: Any, dead_event: Any
) -> None:
    event_id = dead_event(outages=1, max_attempts=1)

    assert admin.post(f"/events/{event_id}/replay").status_code == 200
    worker.drain()

    assert statuses(admin) == ["delivered"]


def test_retries_back_off_exponentially(setup: dict[str, Any], gw: Any, worker: Any) -> None:
    from gateway.retries import retry_delay

    settings = gw.settings.with_overrides({"retry_base_s": 2.0, "retry_max_s": 60.0})

    delays = [retry_delay(n, settings) for n in (1, 2, 3, 4, 10)]

    assert 1.0 <= delays[0] <= 2.0
    assert 2.0 <= delays[1] <= 4.0
    assert 4.0 <= delays[2] <= 8.0
    assert 8.0 <= delays[3] <= 16.0
    assert 30.0 <= delays[4] <= 60.0  # capped


def test_duplicates_cannot_be_replayed(setup: dict[str, Any], admin: Any, deliver: Any) -> None:
    body = moved("A-1", "Dock", 1)
    deliver(setup["group"], body)
    deliver(setup["group"], body)
    duplicate = next(
        e for e in admin.get("/events").get_json()["items"] if e["status"] == "duplicate"
    )

    response = admin.post(f"/events/{duplicate['id']}/replay")

    assert response.status_code == 409


@pytest.mark.parametrize(
    ("replay", "answer"),
    [
        (lambda admin, event_id: admin.post(f"/events/{event_id}/replay"), 409),
        (lambda admin, event_id: admin.post("/events/replay", {"status": "pending"}), 200),
    ],
    ids=["one", "matching"],
)
def test_an_event_a_worker_claims_while_it_is_replayed_is_not_said_to_be_replayed(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    gw: Any,
    replay: Callable[[Any, str], Any],
    answer: int,
) -> None:
    from sqlalchemy import update

    from gateway.models import Event
    from tests.postgres import another_client, once_it_waits_for

    if gw.db.is_sqlite:
        pytest.skip("SQLite's replay holds the write lock from reading to changing")
    deliver(setup["group"], moved("A-1", "Dock", 1))
    event_id = admin.get("/events").get_json()["items"][0]["id"]
    with another_client(gw.settings.database_url) as claim:
        # A worker's claim, not committed yet.
        claim.execute(
            update(Event)
            .where(Event.id == int(event_id))
            .values(status="processing", attempts=Event.attempts + 1)
        )
        answered = once_it_waits_for(claim, lambda: replay(admin, event_id))

    assert answered.status_code == answer
    if answer == 200:
        # Matched, but claimed by the worker before the replay could take it.
        assert answered.get_json() == {
            "replayed": 0,
            "ignored": 0,
            "matched": 1,
            "dry_run": False,
            "held": 0,
        }
    event = admin.get(f"/events/{event_id}").get_json()
    assert (event["status"], event["attempts"]) == ("processing", 1)


def test_replays_of_the_same_events_at_once_take_them_in_one_order(
    admin: Any, group_factory: Any, deliver: Any, gw: Any
) -> None:
    """Each replay locks its events in id order, so two never wait on each other in a
    cycle: PostgreSQL would abort one (503), however the rows lie in the table."""
    from sqlalchemy import text, update

    from gateway.models import Event
    from tests.postgres import another_client, once_it_waits_for

    if gw.db.is_sqlite:
        pytest.skip("SQLite takes one writer at a time")
    group = group_factory(
        connector="xtnd", function="backend", secret=SECRET, events=["OrderPicked"]
    )
    picked = {"Action": "OrderPicked", "Details": {"OrderNumber": "1"}}
    delivery = {"Properties": {"NotificationId": "n-1"}, "Notifications": [picked] * 501}
    assert deliver(group, json.dumps(delivery).encode()).get_json()["accepted"] == 501
    newest, before_it = (int(e["id"]) for e in admin.get("/events").get_json()["items"][:2])
    with another_client(gw.settings.database_url) as other:
        # The row of the event before the newest now lies last in the table.
        other.execute(update(Event).where(Event.id == before_it).values(last_error=None))
        other.commit()
        # Another replay of them, in id order, has come as far as that event.
        other.execute(text("SET deadlock_timeout = '5s'"))  # so that ours would be aborted
        other.execute(update(Event).where(Event.id == before_it).values(last_error=None))
        answer = once_it_waits_for(
            other,
            lambda: admin.post("/events/replay", {"all": True}),
            then=lambda: other.execute(
                update(Event).where(Event.id == newest).values(last_error=None)
            ),
        )

    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {
        "replayed": 501,
        "ignored": 0,
        "matched": 501,
        "dry_run": False,
        "held": 0,
    }


def ignored_move(setup: dict[str, Any], admin: Any, deliver: Any) -> str:
    """An inventory.moved event received while its group did not register the type (its
    record, which took the type, deleted first: a group keeps the types its records take)."""
    group_id = setup["group"]["id"]
    assert admin.delete(f"/webhooks/{setup['record']['id']}").status_code == 204
    assert (
        admin.patch(f"/groups/{group_id}", {"events": ["inventory.cycle_count"]}).status_code == 200
    )
    deliver(setup["group"], moved("I-1", "Dock", 1))
    event = admin.get("/events").get_json()["items"][0]
    assert event["status"] == "ignored"
    return str(event["id"])


REPLAYS = {
    "one": lambda admin, event_id: admin.post(f"/events/{event_id}/replay"),
    "matching": lambda admin, event_id: admin.post("/events/replay", {"status": "ignored"}),
}


@pytest.mark.parametrize("replay", REPLAYS.values(), ids=REPLAYS.keys())
def test_replaying_an_ignored_event_keeps_it_ignored_while_its_type_is_not_registered(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any, replay: Any
) -> None:
    event_id = ignored_move(setup, admin, deliver)

    assert replay(admin, event_id).status_code == 200
    worker.drain()

    event = admin.get(f"/events/{event_id}").get_json()
    assert event["status"] == "ignored"
    assert event["last_error"] == (
        "the group does not register 'inventory.moved'; add it to the group's events, then replay"
    )
    assert event["history"] == []


@pytest.mark.parametrize("replay", REPLAYS.values(), ids=REPLAYS.keys())
def test_replaying_an_ignored_event_whose_type_is_registered_since_processes_it(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any, replay: Any
) -> None:
    event_id = ignored_move(setup, admin, deliver)
    admin.patch(f"/groups/{setup['group']['id']}", {"events": ["inventory.moved"]})
    admin.post(
        f"/webhooks/{setup['group']['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"], "mapping": "items"},
    )

    replay(admin, event_id)
    worker.drain()

    assert admin.get(f"/events/{event_id}").get_json()["status"] == "delivered"
    assert record(admin, "I-1")["Location__c"] == "Dock"


def test_a_bulk_replay_counts_the_events_that_stay_ignored(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    deliver(setup["group"], moved("A-1", "Dock", 1))
    worker.drain()  # delivered while its type was registered
    ignored_move(setup, admin, deliver)
    deliver(setup["group"], moved("C-3", "Dock", 3, topic="inventory.cycle_count"))

    answer = admin.post("/events/replay", {"status": "delivered,ignored,pending"}).get_json()
    worker.drain()

    assert answer == {"replayed": 3, "ignored": 2, "matched": 3, "dry_run": False, "held": 0}
    assert statuses(admin) == ["ignored", "ignored", "unrouted"]


# --- what an event's history says --------------------------------------------------------

#: ``items`` with a condition on the item and a child record attached to it.
TAGGED_ITEMS = {
    "name": "items",
    "upserts": [
        {**ITEM_MAPPING["upserts"][0], "when": "payload.data.location != null"},
        {
            "key": "tag",
            "object": "Tag__c",
            "external_id_field": "Tag_Id__c",
            "external_id": "payload.data.tagId",
            "parent": {"key": "item", "relationship": "Item__r"},
            "fields": {"Reader__c": "payload.data.reader"},
        },
    ],
}
SKIPPED_TAGGED = [
    ("item", "Item__c", "when `payload.data.location != null` is false"),
    ("tag", "Tag__c", "its parent 'item' was skipped"),
]


def test_an_event_whose_upserts_are_all_skipped_is_delivered_and_its_history_says_why(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    admin.put("/mappings/items", TAGGED_ITEMS)
    deliver(setup["group"], moved("A-1", None, 1, tagId="T-1", reader="R-7"))

    worker.drain()

    event_id = admin.get("/events").get_json()["items"][0]["id"]
    event = admin.get(f"/events/{event_id}").get_json()
    assert event["status"] == "delivered"
    assert [
        (h["upsert_key"], h["object"], h["message"], h["outcome"], h["external_id"])
        for h in event["history"]
    ] == [(key, obj, reason, "skipped", None) for key, obj, reason in SKIPPED_TAGGED]
    for h in event["history"]:
        assert (h["webhook_id"], h["mapping"]) == (
            setup["record"]["id"],
            {"name": "items", "version": 2},
        )
    assert admin.get("/records/Tag__c/T-1").status_code == 404  # never attached to no item


def test_upserts_skipped_beside_ones_made_are_in_the_history_too(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    tag_only_with_reader = json.loads(json.dumps(TAGGED_ITEMS))
    tag_only_with_reader["upserts"][1]["when"] = "payload.data.reader != null"
    admin.put("/mappings/items", tag_only_with_reader)
    deliver(setup["group"], moved("A-1", "Dock", 1, tagId="T-1"))

    worker.drain()

    event_id = admin.get("/events").get_json()["items"][0]["id"]
    history = admin.get(f"/events/{event_id}").get_json()["history"]
    assert [(h["upsert_key"], h["outcome"], h["message"]) for h in history] == [
        ("item", "created", None),
        ("tag", "skipped", "when `payload.data.reader != null` is false"),
    ]
    assert sent(history[1]) == (None, None, None)  # nothing to send, and the message says why


FAILURES = [
    # (how the record or mapping is broken, the history row's webhook_id?, mapping, upsert_key)
    ({"mapping": "broken"}, True, {"name": "items", "version": 2}, "item"),
    ({"record": {"mapping": None}}, True, None, None),
    ({"record": {"filter": "abs(data.location)"}}, True, None, None),
]


@pytest.mark.parametrize(("broken", "names_record", "mapping", "upsert_key"), FAILURES)
def test_a_failed_attempt_names_the_record_mapping_version_and_upsert_it_failed_on(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    broken: dict[str, Any],
    names_record: bool,
    mapping: dict[str, Any] | None,
    upsert_key: str | None,
) -> None:
    if "mapping" in broken:
        missing_id = json.loads(json.dumps(ITEM_MAPPING))
        missing_id["upserts"][0]["external_id"] = "payload.data.missing"
        admin.put("/mappings/items", missing_id)
    else:
        admin.patch(f"/webhooks/{setup['record']['id']}", broken["record"])
    deliver(setup["group"], moved("A-1", "Dock", 1))

    worker.drain()

    event_id = admin.get("/events").get_json()["items"][0]["id"]
    event = admin.get(f"/events/{event_id}").get_json()
    (row,) = event["history"]
    assert (event["status"], row["status"], row["message"]) == (
        "failed",
        "failed",
        event["last_error"],
    )
    assert (row["webhook_id"], row["mapping"], row["upsert_key"]) == (
        setup["record"]["id"] if names_record else None,
        mapping,
        upsert_key,
    )
    assert sent(row) == (None, None, None)  # it failed before planning any record


def test_attempt_numbers_keep_counting_across_replays(
    admin: Any, worker: Any, dead_event: Any
) -> None:
    event_id = dead_event(outages=3, max_attempts=2)

    admin.post(f"/events/{event_id}/replay")
    worker.drain()

    event = admin.get(f"/events/{event_id}").get_json()
    assert event["status"] == "delivered"
    assert event["attempts"] == 2  # the replay's own budget: one outage, then delivered
    assert [h["attempt"] for h in event["history"]] == [1, 2, 3, 4]
    assert [h["outcome"] for h in event["history"]] == ["retry", "retry", "retry", "created"]


# --- what each attempt sent -------------------------------------------------------------

#: ``items`` with a reading per entry of ``data.readings``, each pointing at its item.
READ_ITEMS = {
    "name": "items",
    "upserts": [
        ITEM_MAPPING["upserts"][0],
        {
            "key": "reading",
            "object": "Reading__c",
            "external_id_field": "Reading_Id__c",
            "external_id": "item.id",
            "for_each": "payload.data.readings",
            "parent": {"key": "item", "relationship": "Item__r"},
            # the whole of `event`, so that what is shown again is seen to be evaluated alike
            "fields": {"Reader__c": "item.reader", "Event__c": "event"},
        },
    ],
}


def newest_event(admin: Any) -> dict[str, Any]:
    """The newest event in full, checked against the schema the OpenAPI document gives it."""
    event_id = admin.get("/events").get_json()["items"][0]["id"]
    response = admin.get(f"/events/{event_id}")
    assert response.status_code == 200, response.get_json()
    event: dict[str, Any] = response.get_json()
    schema = views.EventDetail.model_json_schema(mode="serialization")
    assert [e.message for e in Draft202012Validator(schema).iter_errors(event)] == []
    return event


def sent(row: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (row["external_id_field"], row["fields"], row["fields_note"])


def history_of_readings(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any, readings: list[Any]
) -> list[dict[str, Any]]:
    """The history of an item moved with ``readings``, processed through READ_ITEMS."""
    admin.put("/mappings/items", READ_ITEMS)
    deliver(setup["group"], moved("A-1", "Dock", 1, readings=readings))
    worker.drain()
    history: list[dict[str, Any]] = newest_event(admin)["history"]
    return history


def test_each_item_shows_its_own_fields_and_its_parent_as_the_target_receives_it(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    readings = [{"id": "R-1", "reader": "dock"}, {"id": "R-2", "reader": "gate"}]

    history = history_of_readings(setup, admin, deliver, worker, readings)

    assert [(row["upsert_key"], row["external_id"]) for row in history] == [
        ("item", "A-1"),
        ("reading", "R-1"),
        ("reading", "R-2"),
    ]
    for row in history:
        stored = admin.get(f"/records/{row['object']}/{row['external_id']}").get_json()
        assert sent(row) == (stored["external_id_field"], stored["fields"], None)
    reading = history[2]["fields"]
    assert (reading["Reading_Id__c"], reading["Reader__c"], reading["Item__r"]) == (
        "R-2",
        "gate",
        {"Item_Id__c": "A-1"},  # the parent as the target receives it
    )
    assert reading["Event__c"]["connector"] == "xemelgo"


def test_items_repeating_an_external_id_each_show_what_they_sent(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    readings = [{"id": "R-1", "reader": "dock"}, {"id": "R-1", "reader": "gate"}]

    history = history_of_readings(setup, admin, deliver, worker, readings)

    assert [row["fields"]["Reader__c"] for row in history[1:]] == ["dock", "gate"]
    assert admin.get("/records/Reading__c/R-1").get_json()["fields"]["Reader__c"] == "gate"


def test_an_older_attempt_still_shows_what_its_own_mapping_version_sent(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    deliver(setup["group"], moved("A-1", "dock", 1))
    worker.drain()
    changed = json.loads(json.dumps(ITEM_MAPPING))
    changed["upserts"][0]["fields"]["Location__c"] = "upper(payload.data.location)"
    assert admin.put("/mappings/items", changed).get_json()["version"] == 2
    admin.post(f"/events/{admin.get('/events').get_json()['items'][0]['id']}/replay")

    worker.drain()

    history = newest_event(admin)["history"]
    assert [(h["mapping"]["version"], h["fields"]["Location__c"]) for h in history] == [
        (1, "dock"),
        (2, "DOCK"),
    ]
    assert history[1]["fields"] == record(admin, "A-1")


def test_an_events_page_evaluates_each_mapping_version_once(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    flaky: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin.put("/mappings/items", READ_ITEMS)
    flaky(outages=2)
    readings = [{"id": f"R-{n}", "reader": "dock"} for n in range(50)]
    deliver(setup["group"], moved("A-1", "Dock", 1, readings=readings))
    worker.drain()
    evaluated: list[int] = []
    evaluate = CompiledMapping.explained_plan

    def counted(mapping: CompiledMapping, context: Any) -> Any:
        evaluated.append(mapping.version)
        return evaluate(mapping, context)

    monkeypatch.setattr(CompiledMapping, "explained_plan", counted)

    history = newest_event(admin)["history"]

    assert [h["attempt"] for h in history] == [1] * 51 + [2] * 51 + [3] * 51
    assert all(h["fields"] for h in history)
    assert evaluated == [2]


def _drop_version(gw: Any) -> None:
    from sqlalchemy import delete

    from gateway.models import MappingVersion

    with gw.db.session() as session:
        session.execute(delete(MappingVersion).where(MappingVersion.name == "items"))


def _rewrite_version(external_id: str) -> Callable[[Any], None]:
    """Make version 1 evaluate otherwise than it did, as a change to a mapping function could."""

    def rewrite(gw: Any) -> None:
        from sqlalchemy import update

        from gateway.models import MappingVersion

        document = json.loads(json.dumps(ITEM_MAPPING))
        document["upserts"][0]["external_id"] = external_id
        with gw.db.session() as session:
            session.execute(
                update(MappingVersion)
                .where(MappingVersion.name == "items")
                .values(document=document)
            )

    return rewrite


UNKNOWN_FIELDS = [
    # (what changed since the attempt, what the row says instead of its fields)
    (_drop_version, "version 1 of mapping 'items' is no longer stored"),
    (
        _rewrite_version("payload.data.missing"),
        "version 1 of mapping 'items' cannot map this event now:"
        " upsert 'item': external id is null",
    ),
    (
        _rewrite_version("payload.id"),
        "version 1 of mapping 'items' evaluated again makes no such upsert of this event",
    ),
]


@pytest.mark.parametrize(
    ("change", "note"),
    UNKNOWN_FIELDS,
    ids=["version gone", "version fails now", "version plans another record now"],
)
def test_fields_that_cannot_be_worked_out_again_are_null_and_say_why(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    gw: Any,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Any], None],
    note: str,
) -> None:
    deliver(setup["group"], moved("A-1", "Dock", 1))
    worker.drain()
    change(gw)
    monkeypatch.setattr(gw, "mappings", MappingStore(gw.db))  # as a restarted gateway reads them

    (row,) = newest_event(admin)["history"]

    assert (row["outcome"], sent(row)) == ("created", (None, None, note))


def test_the_fields_of_an_event_whose_group_was_deleted_are_null_and_say_why(
    setup: dict[str, Any], admin: Any, deliver: Any, worker: Any
) -> None:
    deliver(setup["group"], moved("A-1", "Dock", 1))
    worker.drain()
    assert admin.delete(f"/groups/{setup['group']['id']}").status_code == 204

    (row,) = newest_event(admin)["history"]

    assert sent(row) == (
        None,
        None,
        "the event's webhook group was deleted, so the connector and function its mapping saw"
        " are unknown",
    )


# --- preview -----------------------------------------------------------------------------


def test_preview_shows_upserts_for_a_payload_and_writes_nothing(admin: Any, setup: Any) -> None:
    payload = json.loads(moved("A-9", "Dock", 1765572297000))

    answer = admin.post(
        "/mappings/items/preview", {"event_type": "inventory.moved", "payload": payload}
    ).get_json()

    assert answer["upserts"] == [
        {
            "key": "item",
            "object": "Item__c",
            "external_id_field": "Item_Id__c",
            "external_id": "A-9",
            "fields": {
                "Location__c": "Dock",
                "Seen_At__c": "2025-12-12T20:44:57.000Z",
                "Topic__c": "inventory.moved",
            },
            "parent": None,
            "order_value": 1765572297000,
            "stale": None,  # a bare payload has no group, so no target to check
            "last_written": None,
        }
    ]
    assert answer["skipped"] == []
    assert admin.get("/records/Item__c/A-9").status_code == 404


def test_a_payload_previewed_as_a_groups_sees_the_group_and_its_write_marks(
    setup: Any, admin: Any, deliver: Any, worker: Any
) -> None:
    deliver(setup["group"], moved("A-1", "Newer", 2000))
    worker.drain()
    group = setup["group"]
    older = json.loads(moved("A-1", "Older", 1000))
    with_connector = json.loads(json.dumps(ITEM_MAPPING))
    with_connector["upserts"][0]["fields"]["Topic__c"] = "join('/', [event.connector, event.type])"

    answer = admin.post(
        "/mappings/items/preview",
        {
            "event_type": "inventory.moved",
            "payload": older,
            "group_id": group["id"],
            "document": with_connector,
        },
    ).get_json()

    (upsert,) = answer["upserts"]
    assert upsert["fields"]["Topic__c"] == "xemelgo/inventory.moved"
    assert upsert["stale"] is True


def test_a_payload_previewed_as_an_unknown_groups_is_404(admin: Any, setup: Any) -> None:
    response = admin.post(
        "/mappings/items/preview",
        {"event_type": "inventory.moved", "payload": {}, "group_id": "no-such-group"},
    )

    assert response.status_code == 404


def test_a_payload_previewed_without_a_group_has_no_group_connector_or_function(
    admin: Any, setup: Any
) -> None:
    seen = json.loads(json.dumps(ITEM_MAPPING))
    seen["upserts"][0]["fields"] = {"Seen__c": "[event.group_id, event.connector, event.function]"}

    answer = admin.post(
        "/mappings/items/preview",
        {"event_type": "inventory.moved", "payload": {"data": {"itemId": "A-1"}}, "document": seen},
    ).get_json()

    assert answer["upserts"][0]["fields"] == {"Seen__c": [None, None, None]}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"event_id": "1", "event_type": "inventory.moved", "payload": {}}, "ambiguous_sample"),
        ({"event_id": "1", "payload": {}}, "ambiguous_sample"),
        ({"payload": {}}, "event_type_required"),
        ({"event_type": "inventory.moved"}, "payload_required"),
    ],
    ids=["event and payload", "event and bare payload", "payload alone", "event type alone"],
)
def test_a_preview_must_say_plainly_what_it_previews(
    admin: Any, setup: Any, body: dict[str, Any], code: str
) -> None:
    response = admin.post("/mappings/items/preview", body)

    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_preview_of_a_stored_event(setup: Any, admin: Any, deliver: Any) -> None:
    deliver(setup["group"], moved("A-1", "Dock", 1))
    event_id = admin.get("/events").get_json()["items"][0]["id"]

    answer = admin.post("/mappings/items/preview", {"event_id": event_id}).get_json()

    assert answer["event_id"] == event_id
    assert answer["upserts"][0]["external_id"] == "A-1"
    assert statuses(admin) == ["pending"]


def test_preview_lists_skipped_upserts_with_the_reason(
    setup: Any, admin: Any, deliver: Any
) -> None:
    admin.put("/mappings/items", TAGGED_ITEMS)
    deliver(setup["group"], moved("A-1", None, 1, tagId="T-1"))
    event_id = admin.get("/events").get_json()["items"][0]["id"]

    answer = admin.post("/mappings/items/preview", {"event_id": event_id}).get_json()

    assert answer["upserts"] == []
    assert answer["skipped"] == [
        {"key": key, "object": obj, "reason": reason} for key, obj, reason in SKIPPED_TAGGED
    ]


def test_preview_flags_an_upsert_processing_would_skip_as_stale(
    setup: Any, admin: Any, deliver: Any, worker: Any
) -> None:
    deliver(setup["group"], moved("A-1", "Newer", 2000))
    worker.drain()
    deliver(setup["group"], moved("A-1", "Older", 1000))
    older, newer = (e["id"] for e in admin.get("/events").get_json()["items"])

    of_older = admin.post("/mappings/items/preview", {"event_id": older}).get_json()
    of_newer = admin.post("/mappings/items/preview", {"event_id": newer}).get_json()

    written = {"order_value": 2000, "event_id": newer}
    assert (of_older["upserts"][0]["stale"], of_older["upserts"][0]["last_written"]) == (
        True,
        written,
    )
    assert (of_newer["upserts"][0]["stale"], of_newer["upserts"][0]["last_written"]) == (
        False,
        written,
    )
    assert statuses(admin) == ["delivered", "pending"]  # read only: nothing processed
    assert record(admin, "A-1")["Location__c"] == "Newer"


def test_preview_shows_what_last_wrote_a_record_an_unordered_event_would_write(
    setup: Any, admin: Any, deliver: Any, worker: Any
) -> None:
    deliver(setup["group"], moved("A-1", "Timed", 2000))
    worker.drain()
    deliver(setup["group"], moved("A-1", "Untimed", None))
    untimed, timed = (e["id"] for e in admin.get("/events").get_json()["items"])

    (upsert,) = admin.post("/mappings/items/preview", {"event_id": untimed}).get_json()["upserts"]

    assert (upsert["order_value"], upsert["stale"]) == (None, False)  # written, unchecked
    assert upsert["last_written"] == {"order_value": 2000, "event_id": timed}


def test_a_candidate_is_previewed_against_recent_events_with_differences(
    setup: Any, admin: Any, deliver: Any
) -> None:
    for n in range(3):
        deliver(setup["group"], moved(f"A-{n}", "dock", n))
    candidate = json.loads(json.dumps(ITEM_MAPPING))
    candidate["upserts"][0]["fields"]["Location__c"] = "upper(payload.data.location)"

    answer = admin.post("/mappings/items/preview", {"document": candidate, "last": 2}).get_json()

    assert answer["mapping"]["candidate"] is True
    assert answer["mapping"]["compared_to"] == 1
    assert len(answer["results"]) == 2
    change = answer["results"][0]["changes"][0]
    assert change["change"] == "changed"
    assert change["fields"]["Location__c"] == {"before": "dock", "after": "DOCK"}
    assert admin.get("/mappings/items").get_json()["version"] == 1


def test_concurrent_workers_serialise_writes_per_record_and_keep_the_newest(
    setup: dict[str, Any], admin: Any, deliver: Any, gw: Any
) -> None:
    import random
    import threading

    from gateway.worker import Worker

    rng = random.Random(7)
    stamps = list(range(1, 121))
    rng.shuffle(stamps)
    for at in stamps:  # 120 events for 4 records, out of order
        deliver(setup["group"], moved(f"R-{at % 4}", f"loc-{at}", at))
    workers = [Worker(gw, worker_id=f"w{n}") for n in range(3)]
    for w in workers:
        w.settings = w.settings.with_overrides({"worker_batch_size": 7})
    threads = [threading.Thread(target=w.drain) for w in workers]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    final = set(statuses(admin))
    assert final <= {"delivered", "stale"}, final
    for r in range(4):
        newest = max(at for at in stamps if at % 4 == r)
        assert record(admin, f"R-{r}")["Location__c"] == f"loc-{newest}"


def test_a_claim_takes_expired_leases_first_then_events_in_the_order_they_fall_due(
    setup: dict[str, Any], gw: Any, worker: Any, deliver: Any, admin: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from gateway.models import Event

    for at in range(4):
        deliver(setup["group"], moved(f"item-{at}", "dock", 1_765_000_000_000 + at))
    later, due, expired, due_first = sorted(
        int(e["id"]) for e in admin.get("/events").get_json()["items"]
    )
    now = datetime.now(UTC)
    with gw.db.session() as session:
        for event_id, changes in (
            (later, {"next_attempt_at": now + timedelta(hours=1)}),
            (due, {"next_attempt_at": now - timedelta(minutes=1)}),
            (expired, {"status": "processing", "claim_expires_at": now - timedelta(seconds=1)}),
            (due_first, {"next_attempt_at": now - timedelta(minutes=2)}),
        ):
            session.execute(update(Event).where(Event.id == event_id).values(**changes))

    assert [e.id for e in worker.claim(2)] == [expired, due_first]
    assert [e.id for e in worker.claim(2)] == [due]
    assert worker.claim(2) == []


def _expire_lease(gw: Any, event_id: str, attempts: int) -> None:
    """Leave an event as a worker that died mid-attempt leaves it: leased, the lease run out."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from gateway.models import Event

    expired = datetime.now(UTC) - timedelta(seconds=1)
    with gw.db.session() as session:
        session.execute(
            update(Event)
            .where(Event.id == int(event_id))
            .values(status="processing", claim_expires_at=expired, attempts=attempts)
        )


@pytest.mark.parametrize(
    ("attempts", "status", "messages"),
    [
        (
            1,
            "delivered",
            [
                "attempt 1 never finished: its worker stopped, or held it past the claim"
                " timeout; it is tried again",
                None,
            ],
        ),
        (
            3,
            "dead",
            [
                "attempt 3 never finished: its worker stopped, or held it past the claim"
                " timeout; no attempt is left"
            ],
        ),
    ],
    ids=["attempts left", "none left"],
)
def test_an_attempt_that_never_finished_is_in_the_history_and_counts_towards_the_limit(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    gw: Any,
    attempts: int,
    status: str,
    messages: list[str | None],
) -> None:
    worker.settings = worker.settings.with_overrides({"max_attempts": 3})
    deliver(setup["group"], moved("A-1", "Dock", 1))
    event_id = admin.get("/events").get_json()["items"][0]["id"]
    _expire_lease(gw, event_id, attempts)

    worker.drain()

    event = admin.get(f"/events/{event_id}").get_json()
    assert event["status"] == status
    assert [h["message"] for h in event["history"]] == messages
    assert [h["attempt"] for h in event["history"]] == list(
        range(attempts, attempts + len(messages))
    )


def _fails_mapping(gw: Any, event_id: str) -> None:
    """Leave an event that its mapping cannot map: it has no external id."""
    from sqlalchemy import update

    from gateway.models import Event

    with gw.db.session() as session:
        session.execute(
            update(Event).where(Event.id == int(event_id)).values(payload={"topic": "x"})
        )


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (_fails_mapping, "failed"),
        (partial(_expire_lease, attempts=3), "dead"),
    ],
    ids=["mapping fails", "lease ran out, no attempt left"],
)
def test_every_event_a_worker_fails_or_gives_up_is_logged_with_its_ids(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    gw: Any,
    make: Callable[[Any, str], None],
    status: str,
) -> None:
    worker.settings = worker.settings.with_overrides({"max_attempts": 3})
    deliver(setup["group"], moved("A-1", "Dock", 1))
    event = admin.get("/events").get_json()["items"][0]
    make(gw, event["id"])
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("gateway.worker").addHandler(handler)
    try:
        worker.drain()
    finally:
        logging.getLogger("gateway.worker").removeHandler(handler)

    assert admin.get(f"/events/{event['id']}").get_json()["status"] == status
    logged = [r.__dict__ for r in records if hasattr(r, "event_id")]
    assert [
        {k: line[k] for k in ("event_id", "delivery_id", "group_id", "status")} for line in logged
    ] == [
        {
            "event_id": event["id"],
            "delivery_id": event["delivery_id"],
            "group_id": setup["group"]["id"],
            "status": status,
        }
    ]
    assert logged[0]["levelno"] == logging.WARNING


@pytest.mark.parametrize(
    ("max_attempts", "status", "attempts", "history"),
    [
        (3, "delivered", 2, [(1, "pending"), (2, "delivered")]),
        (1, "dead", 1, [(1, "dead")]),
    ],
    ids=["taken over", "given up"],
)
def test_a_worker_whose_lease_ran_out_leaves_the_event_to_whoever_took_it_over(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    gw: Any,
    max_attempts: int,
    status: str,
    attempts: int,
    history: list[tuple[int, str]],
) -> None:
    from gateway.worker import Worker

    slow, fast = Worker(gw, worker_id="slow"), Worker(gw, worker_id="fast")
    fast.settings = fast.settings.with_overrides({"max_attempts": max_attempts})
    deliver(setup["group"], moved("A-1", "Dock", 1))
    event_id = admin.get("/events").get_json()["items"][0]["id"]
    held = slow.claim()
    _expire_lease(gw, event_id, 1)
    fast.drain()
    deliver(setup["group"], moved("A-1", "Yard", 2))
    fast.drain()

    slow.process(held)  # finishes long after its lease ran out

    event = admin.get(f"/events/{event_id}").get_json()
    assert (event["status"], event["attempts"]) == (status, attempts)
    assert [(h["attempt"], h["status"]) for h in event["history"]] == history
    assert record(admin, "A-1")["Location__c"] == "Yard"


def test_an_unforeseen_error_planning_one_event_fails_it_alone(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.mapping.functions import MappingFunctions

    def broken(self: Any, value: Any) -> str:
        if value == "Bay 13":
            raise RuntimeError("a bug in a mapping function")
        return f"{value}"

    monkeypatch.setitem(MappingFunctions.FUNCTION_TABLE["upper"], "function", broken)
    mapping = json.loads(json.dumps(ITEM_MAPPING))
    mapping["upserts"][0]["fields"]["Location__c"] = "upper(payload.data.location)"
    assert admin.put("/mappings/items", mapping).status_code == 200
    for n, location in enumerate(["Dock", "Bay 13", "Yard"]):
        deliver(setup["group"], moved(f"A-{n}", location, n + 1))

    worker.drain()

    assert statuses(admin) == ["delivered", "failed", "delivered"]
    failed = admin.get("/events", query_string={"status": "failed"}).get_json()["items"][0]
    assert admin.get(f"/events/{failed['id']}").get_json()["history"][0]["message"] == (
        "an unexpected error occurred while mapping it; it has been logged"
    )


def test_the_worker_loop_outlives_an_unforeseen_error(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    deliver(setup["group"], moved("A-1", "Dock", 1))
    worker.settings = worker.settings.with_overrides({"worker_poll_s": 0.01})
    real_claim = worker.claim
    calls = []

    def claim_failing_once(limit: int | None = None) -> Any:
        calls.append(limit)
        if len(calls) == 1:
            raise RuntimeError("a bug while claiming")
        return real_claim(limit)

    monkeypatch.setattr(worker, "claim", claim_failing_once)
    stop = threading.Event()
    loop = threading.Thread(target=worker.run, args=(stop,))
    loop.start()
    try:
        for _ in range(500):
            if statuses(admin) == ["delivered"]:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        loop.join(10)

    assert statuses(admin) == ["delivered"]
    assert not loop.is_alive()


def test_on_postgresql_no_transaction_locks_more_records_than_its_budget(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    gw: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if gw.db.is_sqlite:
        pytest.skip("SQLite serialises writers itself: no record locks")
    import gateway.storage.postgresql as postgresql

    locked: list[int] = []
    real_lock = postgresql._lock_records

    def counting_lock(session: Any, records: set[Any]) -> None:
        locked.append(len(records))
        real_lock(session, records)

    monkeypatch.setattr(postgresql, "RECORD_LOCKS_PER_TRANSACTION", 3)
    monkeypatch.setattr(postgresql, "_lock_records", counting_lock)
    for at in range(1, 11):  # ten records, the last three written twice, newest last
        deliver(setup["group"], moved(f"A-{at % 7}", f"loc-{at}", at))

    worker.drain()

    assert locked == [3, 3, 3, 1], locked
    assert set(statuses(admin)) == {"delivered"}
    assert [record(admin, f"A-{n}")["Location__c"] for n in range(7)] == [
        "loc-7",
        "loc-8",
        "loc-9",
        "loc-10",
        "loc-4",
        "loc-5",
        "loc-6",
    ]


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(0, 0.5), (1, 1.0), (3, 4.0), (5, 10.0), (100_000, 10.0)],
    ids=["working", "one failure", "three in a row", "capped", "a long outage"],
)
def test_a_failing_worker_waits_longer_between_tries_up_to_a_cap(
    failures: int, wait: float
) -> None:
    from gateway.retries import idle_wait

    assert idle_wait(0.5, failures) == wait


def _clock_ahead(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make every clock the gateway's code reads run ``seconds`` ahead, as a host's would."""
    import sys
    from datetime import datetime, timedelta

    class Ahead(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(seconds=seconds)

    for name, module in list(sys.modules.items()):
        if name.startswith("gateway") and getattr(module, "datetime", None) is datetime:
            monkeypatch.setattr(module, "datetime", Ahead)


def test_a_worker_whose_clock_runs_ahead_takes_no_live_lease_and_sends_no_record_twice(
    setup: dict[str, Any], admin: Any, deliver: Any, gw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.worker import Worker

    on_time = Worker(gw, worker_id="on-time")
    ahead = Worker(gw, worker_id="ahead")
    on_time.settings = ahead.settings = gw.settings.with_overrides({"claim_timeout_s": 120.0})
    deliver(setup["group"], moved("A-1", "Dock", 1))
    held = on_time.claim()
    _clock_ahead(monkeypatch, 130)

    assert ahead.claim() == []  # the lease has 120 s to run on the database's clock
    on_time.process(held)
    assert ahead.drain() == 0

    (event,) = admin.get("/events").get_json()["items"]
    detail = admin.get(f"/events/{event['id']}").get_json()
    assert (detail["status"], detail["attempts"]) == ("delivered", 1)
    assert [(h["attempt"], h["outcome"]) for h in detail["history"]] == [(1, "created")]
    assert record(admin, "A-1")["Location__c"] == "Dock"


@pytest.mark.parametrize("seconds", [130, -130], ids=["ahead", "behind"])
def test_an_event_is_due_on_the_database_clock_whatever_the_receiving_host_clock_says(
    setup: dict[str, Any],
    admin: Any,
    deliver: Any,
    worker: Any,
    monkeypatch: pytest.MonkeyPatch,
    seconds: float,
) -> None:
    _clock_ahead(monkeypatch, seconds)
    assert deliver(setup["group"], moved("A-1", "Dock", 1)).status_code == 200
    monkeypatch.undo()  # the worker's host keeps the right time

    (queued,) = admin.get("/events").get_json()["items"]
    due, received = (_parse_time(queued[k]) for k in ("next_attempt_at", "received_at"))
    assert abs((received - due).total_seconds() - seconds) < 60  # received: the host's clock
    assert worker.drain() == 1  # due at once: neither 130 s late, nor ahead of the queue
    assert statuses(admin) == ["delivered"]


def _parse_time(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))
