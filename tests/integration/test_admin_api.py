"""The admin API: authentication, groups, webhook records, connectors and their errors."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest

from tests.conftest import ADMIN_TOKEN


@pytest.mark.parametrize(
    "authorization",
    [
        None,  # no header at all
        "Bearer wrong-token",  # a wrong token
        f"Basic {ADMIN_TOKEN}",  # the right token under the wrong scheme
        "Bearer ",  # an empty token
    ],
)
def test_every_admin_call_needs_the_bearer_token(client: Any, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get("/api/v1/groups", headers=headers)

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/no-such-thing", 404),  # an unknown path
        ("GET", "/api/v1/groups/some-id/no-such-thing", 404),  # unknown below a known one
        ("GET", "/api/v1", 404),  # the prefix itself
        ("GET", "/api/v1/", 404),
        ("GET", "/api/v1//groups", 404),  # doubled slashes: not found, not an HTML redirect
        ("PUT", "/api/v1/events", 405),  # a known path, an unserved method
    ],
)
def test_without_the_token_no_admin_path_says_whether_it_exists(
    client: Any, admin: Any, method: str, path: str, status: int
) -> None:
    anonymous = client.open(path, method=method)
    authorized = client.open(path, method=method, headers=admin.headers)

    assert (anonymous.status_code, anonymous.get_json()["error"]["code"]) == (401, "unauthorized")
    assert authorized.status_code == status
    assert authorized.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/events", {"GET", "HEAD", "OPTIONS"}),
        ("POST", "/healthz", {"GET", "HEAD", "OPTIONS"}),
        ("GET", "/hooks/some-token", {"OPTIONS", "POST", "PUT"}),
    ],
)
def test_a_method_not_allowed_says_which_are(
    client: Any, admin: Any, method: str, path: str, allowed: set[str]
) -> None:
    response = client.open(path, method=method, headers=admin.headers)

    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


def test_creating_a_group_gives_its_callback_url_and_blank_template(admin: Any) -> None:
    response = admin.post(
        "/groups",
        {
            "name": "Warehouse ADR-1",
            "connector": "xtnd",
            "function": "backend",
            "external_id": "ext-42",
            "secret": "a-test-secret",
            "events": ["OrderPicked", "OrderCreated"],
        },
    )

    assert response.status_code == 201
    group = response.get_json()
    assert group["callback_url"].startswith("http://127.0.0.1:8000/hooks/")
    assert len(group["callback_url"].rsplit("/", 1)[1]) >= 22  # >= 128 bits, URL-safe
    assert group["secret_hint"] == "…cret"
    assert "secret" not in group
    assert group["events"] == ["OrderPicked", "OrderCreated"]
    webhooks = admin.get(f"/groups/{group['id']}/webhooks").get_json()["items"]
    assert [w["id"] for w in webhooks] == [group["template_webhook_id"]]
    assert webhooks[0]["is_template"] is True
    assert webhooks[0]["events"] == []


def test_callback_tokens_are_unique(group_factory: Any) -> None:
    urls = {group_factory()["callback_url"] for _ in range(20)}

    assert len(urls) == 20


GROUP_ERRORS = [
    # (body changes, status, path named in details)
    ({"connector": "nope"}, 422, "connector"),
    ({"function": "nope"}, 422, "function"),
    ({"events": ["inventory.cycle_count", "not.a.topic"]}, 422, "events"),
    ({"name": ""}, 422, "name"),
    ({"name": " \t "}, 422, "name"),  # blanks only
    ({"connector": "github", "events": [" "]}, 422, "events[0]"),  # open catalog, blank name
    ({"events": "inventory.cycle_count"}, 422, "events"),
    ({"unknown_field": 1}, 422, "$"),
    ({"secret": "too-short"}, 422, "secret"),  # Xemelgo secrets are 20 to 256 characters
]


@pytest.mark.parametrize(("changes", "status", "path"), GROUP_ERRORS)
def test_invalid_groups_are_refused_with_details(
    admin: Any, changes: dict[str, Any], status: int, path: str
) -> None:
    body = {
        "name": "g",
        "connector": "xemelgo",
        "function": "webhooks",
        "secret": "x" * 30,
        "events": ["inventory.cycle_count"],
        **changes,
    }

    response = admin.post("/groups", body)

    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert path in [d["path"] for d in error["details"]]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"name": ""}, "name"),
        ({"name": " \t "}, "name"),  # blanks only
        ({"events": ["not.a.topic"]}, "events"),
        ({"connector": "xtnd"}, "$"),  # a group keeps its connector
    ],
)
def test_invalid_group_changes_are_refused_with_details(
    admin: Any, group_factory: Any, changes: dict[str, Any], path: str
) -> None:
    group = group_factory(name="kept")

    response = admin.patch(f"/groups/{group['id']}", changes)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert path in [d["path"] for d in error["details"]]
    assert admin.get(f"/groups/{group['id']}").get_json()["name"] == "kept"


#: Secrets a Standard Webhooks group could never verify a delivery with: the key is the base64
#: after an optional ``whsec_``, and it must decode to at least one byte.
UNUSABLE_STANDARD_WEBHOOKS_SECRETS = ["not-base64!", "whsec_***", "whsec_", "whsec_====="]


@pytest.mark.parametrize("secret", UNUSABLE_STANDARD_WEBHOOKS_SECRETS)
@pytest.mark.parametrize("how", ["create", "patch", "rotate"])
def test_secrets_the_scheme_cannot_use_are_refused(
    admin: Any, group_factory: Any, secret: str, how: str
) -> None:
    kept = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    group = group_factory(
        connector="standard-webhooks", function="webhooks", events=[], secret=kept
    )

    if how == "create":
        body = {"name": "g", "connector": "standard-webhooks", "function": "webhooks"}
        response = admin.post("/groups", {**body, "events": [], "secret": secret})
    elif how == "patch":
        response = admin.patch(f"/groups/{group['id']}", {"secret": secret})
    else:
        response = admin.post(f"/groups/{group['id']}/rotate-secret", {"secret": secret})

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert [d["path"] for d in error["details"]] == ["secret"]
    assert admin.get(f"/groups/{group['id']}").get_json()["secret_hint"] == "\u2026" + kept[-4:]


def test_unknown_events_are_named(admin: Any) -> None:
    response = admin.post(
        "/groups",
        {"name": "g", "connector": "xtnd", "function": "backend", "events": ["OrderEaten"]},
    )

    assert response.status_code == 422
    assert "OrderEaten" in response.get_json()["error"]["message"]


def test_open_catalogs_accept_other_event_names(admin: Any) -> None:
    response = admin.post(
        "/groups",
        {"name": "g", "connector": "stripe", "function": "events", "events": ["radar.x.y"]},
    )

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Expecting property name enclosed in double quotes: line 1 column 2"),
        (b"[1, 2]", "the body must be a JSON object"),
        (b'"text"', "the body must be a JSON object"),
        # what json.loads takes silently: the first "name" would simply not count
        (b'{"name": "a", "name": "b"}', 'the key "name" appears twice in one object'),
        (b'{"limit": NaN}', "NaN is not a JSON number"),
        (b'{"limit": 1e999}', "the number 1e999 is out of range"),
        (b'{"name": "caf\xe9"}', "the body is not valid JSON"),
    ],
    ids=["syntax", "list", "string", "key twice", "NaN", "infinite", "not UTF-8"],
)
def test_bodies_that_are_not_json_objects_are_400(client: Any, body: bytes, message: str) -> None:
    response = client.post(
        "/api/v1/groups",
        data=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_json"
    assert message in error["message"]


def test_groups_list_show_change_and_delete(admin: Any, group_factory: Any) -> None:
    first, second = group_factory(name="one"), group_factory(name="two")

    page = admin.get("/groups?limit=1").get_json()
    rest = admin.get(f"/groups?limit=1&cursor={page['next_cursor']}").get_json()
    changed = admin.patch(f"/groups/{first['id']}", {"name": "renamed", "active": False})

    assert {g["id"] for g in page["items"] + rest["items"]} == {first["id"], second["id"]}
    assert changed.status_code == 200
    assert (changed.get_json()["name"], changed.get_json()["active"]) == ("renamed", False)
    assert admin.get(f"/groups/{first['id']}").get_json()["name"] == "renamed"
    assert admin.delete(f"/groups/{first['id']}").status_code == 204
    assert admin.get(f"/groups/{first['id']}").status_code == 404


def test_a_group_keeps_the_events_its_records_take(admin: Any, group_factory: Any) -> None:
    group = group_factory(events=["inventory.cycle_count", "inventory.moved", "asset.moved"])
    template = group["template_webhook_id"]

    def record(label: str, events: list[str], active: bool = True) -> str:
        body = {"label": label, "events": events, "active": active}
        return str(admin.post(f"/webhooks/{template}/clone", body).get_json()["id"])

    both = record("Both", ["inventory.moved", "inventory.cycle_count"])
    counts = record("Counts", ["inventory.cycle_count"], active=False)  # inactive ones too
    record("Assets", ["asset.moved"])

    response = admin.patch(f"/groups/{group['id']}", {"events": ["asset.moved"]})

    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == [
        {
            "path": "events",
            "message": f"webhook record 'Both' ({both}) still takes 'inventory.moved',"
            " 'inventory.cycle_count'",
        },
        {
            "path": "events",
            "message": f"webhook record 'Counts' ({counts}) still takes 'inventory.cycle_count'",
        },
    ]
    assert admin.get(f"/groups/{group['id']}").get_json()["events"] == group["events"]


@pytest.mark.parametrize(
    "events",
    [
        ["inventory.moved", "inventory.cycle_count"],  # the same, in another order
        ["inventory.moved"],  # drops only a type no record takes
        ["inventory.moved", "asset.moved"],  # adds one
    ],
)
def test_a_group_may_change_events_its_records_do_not_take(
    admin: Any, group_factory: Any, events: list[str]
) -> None:
    group = group_factory(events=["inventory.cycle_count", "inventory.moved"])
    admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"]},
    )

    response = admin.patch(f"/groups/{group['id']}", {"events": events})

    assert response.status_code == 200
    assert response.get_json()["events"] == events


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/connectors/missing", "no connector 'missing'"),
        ("GET", "/groups/missing", "no webhook group 'missing'"),
        ("PATCH", "/groups/missing", "no webhook group 'missing'"),
        ("DELETE", "/groups/missing", "no webhook group 'missing'"),
        ("POST", "/groups/missing/rotate-url", "no webhook group 'missing'"),
        ("GET", "/groups/missing/webhooks", "no webhook group 'missing'"),
        ("GET", "/webhooks/missing", "no webhook record 'missing'"),
        ("PATCH", "/webhooks/missing", "no webhook record 'missing'"),
        ("DELETE", "/webhooks/missing", "no webhook record 'missing'"),
        ("GET", "/events/12345", "no event '12345'"),  # an id that could be one
        ("GET", "/events/not-a-number", "no event 'not-a-number'"),  # and one that cannot
        ("POST", "/events/12345/replay", "no event '12345'"),
        ("GET", "/mappings/missing", "no mapping 'missing'"),
        ("GET", "/mappings/missing?version=2", "no version 2 of mapping 'missing'"),
        ("GET", "/mappings/missing/versions", "no mapping 'missing'"),
        (
            "POST",
            "/mappings/missing/preview",
            "no mapping 'missing'; send a candidate 'document' to try one",
        ),
        ("GET", "/records/Order__c/none", "no Order__c record 'none'"),
        ("GET", "/targets/salesforce/credentials", "no stored credentials for target 'salesforce'"),
        (
            "DELETE",
            "/targets/salesforce/credentials",
            "no stored credentials for target 'salesforce'",
        ),
    ],
)
def test_every_missing_resource_is_404_naming_its_kind_and_quoting_its_id(
    admin: Any, method: str, path: str, message: str
) -> None:
    response = admin.call(method, path, json={} if method in ("PATCH", "POST") else None)

    assert response.status_code == 404
    assert response.get_json()["error"] == {"code": "not_found", "message": message}


# --- webhook records ---------------------------------------------------------------------


def test_cloning_the_template_makes_a_webhook_record(admin: Any, group_factory: Any) -> None:
    group = group_factory(events=["inventory.cycle_count", "inventory.moved"])

    response = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Cycle counts", "events": ["inventory.cycle_count"], "filter": "data != null"},
    )

    assert response.status_code == 201
    record = response.get_json()
    assert record["group_id"] == group["id"]
    assert record["is_template"] is False
    assert record["active"] is True
    assert (record["label"], record["events"]) == ("Cycle counts", ["inventory.cycle_count"])
    listed = admin.get(f"/groups/{group['id']}/webhooks").get_json()["items"]
    assert [w["is_template"] for w in listed] == [True, False]


INLINE_MAPPING = {
    "name": "inline-moves",
    "upserts": [
        {
            "key": "move",
            "object": "Move__c",
            "external_id_field": "Move_Id__c",
            "external_id": "payload.data.id",
            "fields": {"Location__c": "payload.data.location"},
        }
    ],
}


def test_a_record_may_be_given_its_mapping_as_a_whole_document(
    admin: Any, group_factory: Any
) -> None:
    """Saved as PUT /mappings/{its name} would save it, and taken by name."""
    group = group_factory(events=["inventory.moved"])
    template = group["template_webhook_id"]
    body = {"label": "Moves", "events": ["inventory.moved"], "mapping": INLINE_MAPPING}

    cloned = admin.post(f"/webhooks/{template}/clone", body)
    again = admin.patch(f"/webhooks/{cloned.get_json()['id']}", {"mapping": INLINE_MAPPING})

    assert cloned.status_code == 201, cloned.get_json()
    assert cloned.get_json()["mapping"] == {"name": "inline-moves", "version": None}
    assert again.status_code == 200
    saved = admin.get("/mappings/inline-moves").get_json()
    assert (saved["version"], saved["upserts"]) == (1, INLINE_MAPPING["upserts"])  # unchanged


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({**INLINE_MAPPING, "upserts": [{"key": "move"}]}, "mapping.upserts[0].object"),
        ({"upserts": INLINE_MAPPING["upserts"]}, "mapping.name"),
    ],
    ids=["invalid", "nameless"],
)
def test_a_mapping_document_given_with_a_record_is_checked_as_put_checks_it(
    admin: Any, group_factory: Any, document: dict[str, Any], path: str
) -> None:
    group = group_factory(events=["inventory.moved"])
    body = {"label": "Moves", "events": ["inventory.moved"], "mapping": document}

    response = admin.post(f"/webhooks/{group['template_webhook_id']}/clone", body)

    assert response.status_code == 422
    assert path in [d["path"] for d in response.get_json()["error"]["details"]]
    assert admin.get(f"/groups/{group['id']}/webhooks").get_json()["items"][1:] == []
    assert admin.get("/mappings/inline-moves").status_code == 404


def test_a_record_can_be_cloned_from_another_record(admin: Any, group_factory: Any) -> None:
    group = group_factory(events=["inventory.cycle_count", "inventory.moved"])
    first = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "a", "events": ["inventory.cycle_count"], "filter": "data.x == `1`"},
    ).get_json()

    second = admin.post(
        f"/webhooks/{first['id']}/clone", {"label": "b", "events": ["inventory.moved"]}
    ).get_json()

    assert second["filter"] == "data.x == `1`"
    assert second["events"] == ["inventory.moved"]


WEBHOOK_ERRORS = [
    ({"label": "x", "events": ["inventory.moved"]}, "events"),  # not registered on the group
    ({"label": "x", "events": [], "filter": "data.[["}, "filter"),  # not JMESPath
    ({"label": "x", "events": [], "mapping": "no-such-mapping"}, "mapping"),
    ({"events": []}, "$"),  # label is required
]


@pytest.mark.parametrize(("body", "path"), WEBHOOK_ERRORS)
def test_invalid_webhook_records_are_422(
    admin: Any, group_factory: Any, body: dict[str, Any], path: str
) -> None:
    group = group_factory()

    response = admin.post(f"/webhooks/{group['template_webhook_id']}/clone", body)

    assert response.status_code == 422
    assert path in [d["path"] for d in response.get_json()["error"]["details"]]


FILTER_ERRORS = [
    # (filter, the problem, as a mapping expression's would be)
    ("nosuch(data) == `1`", "unknown function nosuch()"),
    ("lower(data.region, 'x') == 'eu'", "lower() takes 1 argument, got 2"),
    ("not_null(data.a) && join(',')", "join() takes 2 arguments, got 1"),  # standard ones too
    ("data.[[", "not a valid JMESPath expression: it ends too early"),
    ("data.region == `eu`", "a literal in backticks must be JSON"),
]


@pytest.mark.parametrize(
    ("method", "expression", "problem"),
    [(method, *row) for method in ("clone", "patch") for row in FILTER_ERRORS],
)
def test_a_filter_is_checked_on_save_as_mapping_expressions_are(
    admin: Any, group_factory: Any, method: str, expression: str, problem: str
) -> None:
    group = group_factory()
    template = group["template_webhook_id"]
    body = {"label": "x", "events": [], "filter": expression}
    if method == "clone":
        response = admin.post(f"/webhooks/{template}/clone", body)
    else:
        record = admin.post(f"/webhooks/{template}/clone", {"label": "x", "events": []})
        response = admin.patch(f"/webhooks/{record.get_json()['id']}", body)

    assert response.status_code == 422
    [detail] = response.get_json()["error"]["details"]
    assert detail["path"] == "filter"
    assert problem in detail["message"]


def test_a_filter_may_call_the_mapping_functions(admin: Any, group_factory: Any) -> None:
    group = group_factory()

    response = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "EU", "events": [], "filter": "lower(payload.data.region) == 'eu'"},
    )

    assert response.status_code == 201
    assert response.get_json()["filter"] == "lower(payload.data.region) == 'eu'"


def test_the_template_cannot_be_deleted_or_filled(admin: Any, group_factory: Any) -> None:
    template = group_factory()["template_webhook_id"]

    assert admin.delete(f"/webhooks/{template}").status_code == 409
    assert admin.patch(f"/webhooks/{template}", {"active": True}).status_code == 409
    assert admin.patch(f"/webhooks/{template}", {"label": "Blank"}).status_code == 200


def test_webhook_records_change_and_delete(admin: Any, group_factory: Any) -> None:
    group = group_factory()
    record = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "a", "events": ["inventory.cycle_count"]},
    ).get_json()

    changed = admin.patch(f"/webhooks/{record['id']}", {"active": False, "label": "b"})

    assert (changed.get_json()["active"], changed.get_json()["label"]) == (False, "b")
    assert admin.delete(f"/webhooks/{record['id']}").status_code == 204
    assert admin.get(f"/webhooks/{record['id']}").status_code == 404


RACING_CHANGES = [
    ("PATCH", "/groups/{group}", {"name": "Renamed"}),
    ("POST", "/groups/{group}/rotate-url", None),
    ("POST", "/groups/{group}/rotate-secret", {"secret": "rotated-secret-" + "0" * 16}),
    ("DELETE", "/groups/{group}", None),
    ("PATCH", "/webhooks/{record}", {"label": "Renamed"}),
    ("DELETE", "/webhooks/{record}", None),
    ("POST", "/webhooks/{record}/clone", {"label": "Copy", "events": []}),
    ("POST", "/webhooks/{template}/clone", {"label": "Copy", "events": []}),
]


@pytest.mark.parametrize(("method", "path", "body"), RACING_CHANGES)
def test_a_change_racing_the_delete_of_its_group_is_404(
    admin: Any, group_factory: Any, gw: Any, method: str, path: str, body: Any
) -> None:
    """The change waits for the delete, then finds nothing to change: never a 500."""
    from sqlalchemy import delete

    from gateway.models import Group, Webhook
    from tests.postgres import another_client, once_it_waits_for

    if gw.db.is_sqlite:
        pytest.skip("SQLite takes one writer at a time")
    group = group_factory()
    template = group["template_webhook_id"]
    record = admin.post(f"/webhooks/{template}/clone", {"label": "a", "events": []}).get_json()
    path = path.format(group=group["id"], record=record["id"], template=template)
    with another_client(gw.settings.database_url) as other:
        # Another admin's delete of the group, not committed yet.
        other.execute(delete(Webhook).where(Webhook.group_id == group["id"]))
        other.execute(delete(Group).where(Group.id == group["id"]))
        answer = once_it_waits_for(other, lambda: admin.call(method, path, json=body))

    assert answer.status_code == 404, answer.get_json()
    assert answer.get_json()["error"]["code"] == "not_found"


# --- connectors --------------------------------------------------------------------------


def test_connectors_list_the_shipped_profiles_without_secrets(admin: Any) -> None:
    items = admin.get("/connectors").get_json()["items"]

    names = {c["name"] for c in items}
    assert {
        "xilnex",
        "xemelgo",
        "xtnd",
        "generic",
        "stripe",
        "github",
        "shopify",
        "standard-webhooks",
    } <= names
    xtnd = next(c for c in items if c["name"] == "xtnd")
    assert "OrderPicked" in xtnd["functions"][0]["events"]
    assert xtnd["verification"]["scheme"] == "hmac"


ACME = {
    "name": "acme",
    "title": "ACME ERP",
    "functions": [{"name": "orders", "events": ["order.paid"]}],
    "verification": {"scheme": "hmac", "header": "x-acme-signature", "prefix": "sha256="},
    "events": {"type": {"jmespath": "kind"}, "id": {"jmespath": "uid"}},
}


def test_a_custom_connector_is_registered_and_usable(
    admin: Any, group_factory: Any, deliver: Any
) -> None:
    profile = ACME

    response = admin.post("/connectors", profile)
    group = group_factory(connector="acme", function="orders", events=["order.paid"])
    delivered = deliver(group, b'{"kind": "order.paid", "uid": "u-1"}')

    assert response.status_code == 201
    assert delivered.status_code == 200
    assert delivered.get_json()["accepted"] == 1
    assert admin.post("/connectors", profile).status_code == 409


def test_a_connector_registered_at_once_by_another_admin_is_409(admin: Any, gw: Any) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from gateway.models import ConnectorProfile
    from tests.postgres import another_client, once_it_waits_for

    if gw.db.is_sqlite:
        pytest.skip("SQLite takes one writer at a time")
    with another_client(gw.settings.database_url) as other:
        # Another admin's registration of the same name, not committed yet.
        other.execute(
            insert(ConnectorProfile).values(
                name="acme",
                document=ACME,
                version=1,
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        )
        answer = once_it_waits_for(other, lambda: admin.post("/connectors", ACME))

    assert answer.status_code == 409, answer.get_json()
    assert answer.get_json()["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"title": " \t "}, "title"),
        ({"functions": [{"name": "main", "events": ["ping", "  "]}]}, "functions[0].events[1]"),
    ],
    ids=["blank title", "blank event name"],
)
def test_a_custom_connector_with_blank_names_is_422(
    admin: Any, changes: dict[str, Any], path: str
) -> None:
    profile = {
        "name": "blank-names",
        "title": "Blank names",
        "functions": [{"name": "main", "events": ["ping"]}],
        "verification": {"scheme": "none"},
        "events": {"type": {"jmespath": "kind"}},
        **changes,
    }

    response = admin.post("/connectors", profile)

    assert response.status_code == 422
    assert path in [d["path"] for d in response.get_json()["error"]["details"]]


def test_an_invalid_custom_connector_is_422_with_details(admin: Any) -> None:
    response = admin.post("/connectors", {"name": "Bad Name", "functions": []})

    assert response.status_code == 422
    assert response.get_json()["error"]["details"]
