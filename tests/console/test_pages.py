"""The console through the Flask test client: the guard, every page, and errors shown on forms."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.config import Settings
from gateway.connectors import sample_delivery
from gateway.console import event_pages
from gateway.console.mapping_pages import line_map, line_of, pretty
from gateway.intake import MAX_DEPTH
from gateway.services import Gateway
from gateway.verify import sign
from gateway.web import create_app
from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import Console, form_token

MAPPING = {
    "name": "moves",
    "upserts": [
        {
            "key": "item",
            "object": "Inventory_Item__c",
            "external_id_field": "Xemelgo_Id__c",
            "external_id": "payload.data.itemId",
            "fields": {"Sku__c": "payload.data.sku"},
        }
    ],
}


def field_errors(html: str) -> list[str]:
    return re.findall(r'class="field-error"[^>]*>([^<]+)<', html)


@pytest.fixture
def setup(
    gw: Gateway, admin: Any, client: FlaskClient, group_factory: Callable[..., Any], worker: Any
) -> dict[str, Any]:
    """A group with a record mapped by MAPPING and one delivered event, made through the API."""
    group = group_factory(events=["inventory.moved"])
    assert admin.put("/mappings/moves", MAPPING).status_code == 201
    record = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"], "mapping": "moves"},
    ).get_json()
    profile = gw.connectors.get("xemelgo")
    body, headers = sample_delivery(profile, "inventory.moved")
    headers.update(sign(profile.verification, group["secret"], body))
    assert client.post(f"/hooks/{group['token']}", data=body, headers=headers).status_code == 200
    worker.drain()
    event = admin.get("/events").get_json()["items"][0]
    assert event["status"] == "delivered"
    return {"group": group, "record": record, "event": event}


# --- the guard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/admin/", "/admin/groups", "/admin/groups/new", "/admin/mappings", "/admin/events"],
)
def test_pages_send_the_signed_out_to_sign_in(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/admin/sign-in?next=")


def test_forms_posted_signed_out_go_to_sign_in_and_change_nothing(
    client: FlaskClient, admin: Any
) -> None:
    response = client.post("/admin/groups/new", data={"name": "x", "choice": "generic/webhooks"})
    assert response.status_code == 303
    assert admin.get("/groups").get_json()["items"] == []


def test_a_wrong_token_is_refused(client: FlaskClient) -> None:
    token = form_token(client.get("/admin/sign-in").text)
    response = client.post("/admin/sign-in", data={"csrf_token": token, "token": "guess"})
    assert response.status_code == 401
    assert "That is not the admin token" in response.text
    assert client.get("/admin/").status_code == 303


def test_sign_in_needs_the_form_token(client: FlaskClient) -> None:
    client.get("/admin/sign-in")
    response = client.post("/admin/sign-in", data={"token": ADMIN_TOKEN})
    assert response.status_code == 403
    assert client.get("/admin/").status_code == 303


def test_a_form_without_the_session_token_is_refused(console: Console, admin: Any) -> None:
    response = console.client.post(
        "/admin/groups/new",
        data={"csrf_token": "forged", "name": "x", "choice": "generic/webhooks"},
    )
    assert response.status_code == 403
    assert "did not come from a page of this console session" in response.text
    assert admin.get("/groups").get_json()["items"] == []


def test_sign_in_returns_to_the_page_asked_for_and_only_inside_the_console(
    client: FlaskClient,
) -> None:
    for wanted, landed in [
        ("/admin/events?status=failed", "/admin/events?status=failed"),
        ("https://elsewhere.example/", "/admin/"),
        ("//elsewhere.example/admin/", "/admin/"),
        ("/admin//elsewhere.example/", "/admin/"),
        ("/admin/\\elsewhere.example/", "/admin/"),
        ("/admin/\t/elsewhere.example/", "/admin/"),  # browsers drop the tab: //elsewhere
        ("/admin/../elsewhere", "/admin/"),
        ("/admin/%2E%2E/elsewhere", "/admin/"),
        ("/admin/\r\nSet-Cookie: planted=1", "/admin/"),  # was a 500: no header holds CR LF
    ]:
        token = form_token(client.get("/admin/sign-in").text)
        response = client.post(
            "/admin/sign-in", data={"csrf_token": token, "token": ADMIN_TOKEN, "next": wanted}
        )
        assert response.headers["Location"] == landed


def test_the_session_cookie_is_http_only_and_same_site(client: FlaskClient) -> None:
    token = form_token(client.get("/admin/sign-in").text)
    response = client.post("/admin/sign-in", data={"csrf_token": token, "token": ADMIN_TOKEN})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    "page", ["/admin/sign-in", "/admin/", "/admin/events", "/admin/events/{id}"]
)
def test_pages_cannot_be_framed_or_cached(console: Console, setup: Any, page: str) -> None:
    response = console.get(page.format(id=setup["event"]["id"]))
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_session_cookie_holds_nothing_to_test_token_guesses_against(
    app: Flask, client: FlaskClient
) -> None:
    """It is signed, not encrypted: whoever copies it reads what it remembers of the token."""
    token = form_token(client.get("/admin/sign-in").text)
    response = client.post("/admin/sign-in", data={"csrf_token": token, "token": ADMIN_TOKEN})
    cookie = response.headers["Set-Cookie"].split("=", 1)[1].split(";")[0]
    signer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    remembered = signer.loads(cookie)["admin"]
    assert remembered != hashlib.sha256(b"console:" + ADMIN_TOKEN.encode()).hexdigest()


def test_the_session_cookie_is_secure_when_the_console_is_served_over_https(
    settings: Settings,
) -> None:
    gateway = Gateway(settings.with_overrides({"public_url": "https://gateway.example"}))
    client = create_app(gateway=gateway).test_client()
    token = form_token(client.get("/admin/sign-in").text)
    response = client.post("/admin/sign-in", data={"csrf_token": token, "token": ADMIN_TOKEN})
    gateway.close()
    assert "Secure" in response.headers["Set-Cookie"]


def test_sign_out_ends_the_session(console: Console) -> None:
    response = console.post("/admin/sign-out")
    assert response.status_code == 303
    assert console.get("/admin/").status_code == 303


@pytest.mark.parametrize("elsewhere", [False, True], ids=["same process", "another process"])
def test_a_copied_cookie_is_refused_once_its_session_signed_out(
    console: Console, app: Flask, settings: Settings, elsewhere: bool
) -> None:
    """Sign-out ends the sign-in in the database, for every web process sharing it."""
    other = Gateway(settings) if elsewhere else None
    copy = (create_app(gateway=other) if other else app).test_client()
    cookie = console.client.get_cookie("session")
    assert cookie is not None
    copy.set_cookie("session", cookie.value)
    assert copy.get("/admin/").status_code == 200  # the copy works while signed in

    assert console.post("/admin/sign-out").status_code == 303
    refused = copy.get("/admin/")
    if other:
        other.close()

    assert refused.status_code == 303
    assert refused.headers["Location"].startswith("/admin/sign-in")


# --- every page --------------------------------------------------------------------------


def test_every_page_renders(console: Console, setup: dict[str, Any]) -> None:
    group, record, event = setup["group"], setup["record"], setup["event"]
    pages = {
        "/admin/": "Deliveries per minute",
        "/admin/groups": "Test group",
        "/admin/groups/new": "Xemelgo",
        f"/admin/groups/{group['id']}": group["callback_url"],
        f"/admin/groups/{group['id']}/edit": "inventory.moved",
        f"/admin/webhooks/{record['id']}/clone": "Clone Moves",
        f"/admin/webhooks/{record['id']}/edit": "Edit Moves",
        "/admin/mappings": "moves",
        "/admin/mappings/moves": "version 1",
        "/admin/mappings/new-one": "not saved yet",
        "/admin/events": "inventory.moved",
        f"/admin/events/{event['id']}": "Inventory_Item__c inv-test-000987",
        "/admin/records/Inventory_Item__c/inv-test-000987": "SKU-TEST-0001",
    }
    for path, shown in pages.items():
        response = console.get(path)
        assert response.status_code == 200, path
        assert shown in response.text, path
        assert '<main id="main"' in response.text


def nested(depth: int) -> bytes:
    return (
        '{"event_type": "deep", "data": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    ).encode()


def test_a_payload_nested_as_deeply_as_the_receiver_takes_can_be_read_back(
    console: Console, group_factory: Any, deliver: Any, admin: Any
) -> None:
    """Nested nearly as deep as Python's recursion limit, it broke the event list for all."""
    group = group_factory(connector="generic", function="webhooks", events=["deep"])
    for refused in (MAX_DEPTH + 1, 939):
        assert deliver(group, nested(refused)).status_code == 400
    assert deliver(group, nested(MAX_DEPTH)).status_code == 200

    [event] = admin.get("/events").get_json()["items"]
    assert admin.get(f"/events/{event['id']}").status_code == 200
    assert console.get("/admin/events").status_code == 200
    assert console.get(f"/admin/events/{event['id']}").status_code == 200


def test_a_missing_thing_is_a_page_not_json(console: Console) -> None:
    response = console.get("/admin/groups/nope")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "no webhook group &#39;nope&#39;" in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/admin/nothing-here",  # no such page
        "/admin/groups/some-id/nothing-here",  # below a page that exists
        "/admin/events/",  # a page that exists, with a slash too many
    ],
)
def test_an_unknown_console_address_is_the_console_s_404_page(console: Console, path: str) -> None:
    response = console.get(path)

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "<h1>Not found</h1>" in response.text
    assert "The console has no page at /admin/" in response.text


def test_an_unknown_console_address_asks_the_signed_out_to_sign_in(client: FlaskClient) -> None:
    """Which addresses exist is for admins to find out."""
    response = client.get("/admin/nothing-here")

    assert response.status_code == 303
    assert response.headers["Location"].startswith("/admin/sign-in?next=")


def test_unknown_addresses_elsewhere_are_still_the_api_s_json(client: FlaskClient) -> None:
    response = client.get("/nothing-here")

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_gateway_s_own_address_leads_to_the_console(client: FlaskClient, method: str) -> None:
    response = client.open("/", method=method)

    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"


def test_the_overview_counts_deliveries_and_the_queue(console: Console, setup: Any) -> None:
    html = console.get("/admin/").text
    stat = re.search(r"Deliveries, last 60 minutes</p>\s*<p class=\"stat-value\">(\d+)", html)
    assert stat and stat.group(1) == "1"
    assert "Not configured" in html
    assert re.search(r"status-delivered\">delivered</span></a></td>\s*<td class=\"num\">1", html)


def test_the_overview_shows_the_api_usage_workers_stored(
    console: Console, admin: Any, gw: Gateway, group_factory: Callable[..., Any]
) -> None:
    from datetime import UTC, datetime

    from gateway.models import TargetUsage

    group_factory(target="salesforce")
    with gw.db.session() as session:
        session.add(
            TargetUsage(target="salesforce", used=1200, limit=15000, updated_at=datetime.now(UTC))
        )

    html = console.get("/admin/").text

    assert "1200 of 15000 requests" in html
    assert 'value="1200"' in html


# --- groups ------------------------------------------------------------------------------


def test_creating_a_group_shows_service_errors_on_the_form(console: Console, admin: Any) -> None:
    response = console.post(
        "/admin/groups/new",
        {
            "name": "Rfid",
            "choice": "xemelgo/webhooks",
            "events": ["inventory.moved"],
            "secret": "too-short",
        },
    )
    assert response.status_code == 422
    assert field_errors(response.text) == ["length 9 is outside 20..256"]
    assert "too-short" not in response.text
    assert admin.get("/groups").get_json()["items"] == []


def test_an_open_catalog_takes_typed_event_names(console: Console, admin: Any) -> None:
    response = console.post(
        "/admin/groups/new",
        {
            "name": "Anything",
            "choice": "generic/webhooks",
            "events": ["order.created"],
            "other_events": "invoice.paid, custom.thing",
            "secret": "s3cret-key",
            "active": "on",
        },
    )
    assert response.status_code == 303
    (group,) = admin.get("/groups").get_json()["items"]
    assert group["events"] == ["order.created", "invoice.paid", "custom.thing"]
    assert group["active"] is True


def test_a_closed_catalog_refuses_unknown_events(console: Console) -> None:
    response = console.post(
        "/admin/groups/new",
        {"name": "Rfid", "choice": "xemelgo/webhooks", "other_events": "made.up"},
    )
    assert response.status_code == 422
    assert "&#39;made.up&#39; is not in the catalog" in response.text


def test_editing_rotating_and_deactivating_a_group(
    console: Console, admin: Any, setup: Any
) -> None:
    group = setup["group"]
    base = f"/admin/groups/{group['id']}"
    edited = console.post(
        f"{base}/edit",
        {"name": "Renamed", "events": ["inventory.moved", "asset.moved"], "active": "on"},
    )
    assert edited.status_code == 303
    assert console.post(f"{base}/rotate-url").status_code == 303
    assert console.post(f"{base}/active", {"active": "false"}).status_code == 303
    after = admin.get(f"/groups/{group['id']}").get_json()
    assert after["name"] == "Renamed"
    assert after["events"] == ["inventory.moved", "asset.moved"]
    assert after["callback_url"] != group["callback_url"]
    assert after["active"] is False


def test_pausing_and_resuming_a_group_from_its_page(
    console: Console, admin: Any, setup: Any
) -> None:
    base = f"/admin/groups/{setup['group']['id']}"
    assert ">Pause</button>" in console.get(base).text

    assert console.post(f"{base}/paused", {"paused": "true"}).status_code == 303
    page = console.get(base).text
    assert admin.get(f"/groups/{setup['group']['id']}").get_json()["paused"] is True
    assert '<span class="badge paused">paused</span>' in page
    assert ">Resume</button>" in page
    assert "events held until it is resumed" in page  # the flash

    assert console.post(f"{base}/paused", {"paused": "false"}).status_code == 303
    assert admin.get(f"/groups/{setup['group']['id']}").get_json()["paused"] is False
    assert ">Pause</button>" in console.get(base).text


def test_a_bad_new_secret_is_shown_on_the_rotate_form(console: Console, setup: Any) -> None:
    response = console.post(
        f"/admin/groups/{setup['group']['id']}/rotate-secret",
        {"secret": "short", "previous_valid_for_s": "3600"},
    )
    assert response.status_code == 422
    assert field_errors(response.text) == ["length 5 is outside 20..256"]


def test_rotating_the_secret_keeps_the_old_one_for_a_while(
    console: Console, admin: Any, setup: Any
) -> None:
    group = setup["group"]
    response = console.post(
        f"/admin/groups/{group['id']}/rotate-secret",
        {"secret": "n" * 24, "previous_valid_for_s": "3600"},
    )
    assert response.status_code == 303
    after = admin.get(f"/groups/{group['id']}").get_json()
    assert after["secret_hint"] != group["secret_hint"]
    assert after["previous_secret_expires_at"] is not None


# --- webhook records ---------------------------------------------------------------------


def test_cloning_editing_and_toggling_a_record(console: Console, admin: Any, setup: Any) -> None:
    group, record = setup["group"], setup["record"]
    cloned = console.post(
        f"/admin/webhooks/{record['id']}/clone",
        {"label": "Copy", "events": ["inventory.moved"], "mapping": "moves", "version": "1"},
    )
    assert cloned.status_code == 303
    rows = admin.get(f"/groups/{group['id']}/webhooks").get_json()["items"]
    assert [r["label"] for r in rows] == ["Template", "Moves", "Copy"]
    copy = rows[2]
    assert copy["mapping"] == {"name": "moves", "version": 1} and copy["active"] is False
    edited = console.post(
        f"/admin/webhooks/{copy['id']}/edit",
        {"label": "Copy 2", "events": ["inventory.moved"], "filter": "payload.data.quantity > `0`"},
    )
    assert edited.status_code == 303
    assert (
        console.post(f"/admin/webhooks/{copy['id']}/active", {"active": "true"}).status_code == 303
    )
    after = admin.get(f"/webhooks/{copy['id']}").get_json()
    assert after["label"] == "Copy 2" and after["mapping"] is None and after["active"] is True
    assert after["filter"] == "payload.data.quantity > `0`"


def test_a_record_can_be_set_to_send_the_event_as_received(
    console: Console, admin: Any, setup: Any
) -> None:
    record = setup["record"]
    form = console.get(f"/admin/webhooks/{record['id']}/edit").text
    assert '<option value="upserts" selected>' in form

    edited = console.post(
        f"/admin/webhooks/{record['id']}/edit",
        {"label": "Raw", "events": record["events"], "send": "event"},
    )

    assert edited.status_code == 303
    assert admin.get(f"/webhooks/{record['id']}").get_json()["send"] == "event"
    shown = console.get(f"/admin/webhooks/{record['id']}/edit").text
    assert '<option value="event" selected>' in shown


def test_record_errors_are_shown_on_the_record_form(console: Console, setup: Any) -> None:
    response = console.post(
        f"/admin/webhooks/{setup['record']['id']}/edit",
        {"label": "Moves", "events": ["asset.moved"], "filter": "payload.[", "mapping": "nope"},
    )
    assert response.status_code == 422
    errors = " ".join(field_errors(response.text))
    assert "not registered on group" in errors
    assert "not a valid JMESPath expression: it ends too early" in errors
    assert "no mapping &#39;nope&#39;" in errors


# --- mappings ----------------------------------------------------------------------------


def test_the_line_of_every_path_in_the_shown_document() -> None:
    document = {"name": "x", "upserts": [{"key": "a", "fields": {}}, {"key": "b"}], "z": []}
    lines = line_map(document)
    shown = pretty(document).splitlines()
    for path, line in lines.items():
        key = re.split(r"[.\[]", path)[-1].rstrip("]")
        assert not key or key.isdigit() or f'"{key}"' in shown[line - 1], path
    assert line_of("upserts[1].external_id", lines) == lines["upserts[1]"]
    assert line_of("upserts[9].key", lines) == lines["upserts"]


def test_saving_an_invalid_document_places_each_problem_on_its_line(console: Console) -> None:
    document = {"name": "fresh", "upserts": [{"key": "a", "object": "Bad Name"}]}
    response = console.post(
        "/admin/mappings/fresh", {"document": pretty(document), "action": "save"}
    )
    assert response.status_code == 422
    problems = re.findall(r'data-goto-line="(\d+)".*?<code>([^<]+)</code>', response.text, re.S)
    assert ("6", "upserts[0].object") in problems
    assert ("4", "upserts[0].external_id_field") in problems
    assert 'data-error-lines="[' in response.text


def test_broken_json_points_at_its_line(console: Console) -> None:
    response = console.post(
        "/admin/mappings/fresh", {"document": '{\n  "name": "fresh",\n  oops\n}', "action": "save"}
    )
    assert response.status_code == 422
    assert 'data-goto-line="3"' in response.text
    assert "oops" in response.text  # the text is kept as typed


def test_saving_makes_a_version_and_an_unchanged_save_does_not(console: Console) -> None:
    first = console.post("/admin/mappings/moves", {"document": pretty(MAPPING), "action": "save"})
    assert first.status_code == 303
    again = console.post("/admin/mappings/moves", {"document": pretty(MAPPING), "action": "save"})
    assert "No change; still version 1" in console.get(again.headers["Location"]).text


def test_a_new_mapping_name_must_be_a_valid_one(console: Console) -> None:
    response = console.post("/admin/mappings", {"name": "has space"})
    assert response.status_code == 422
    assert "does not match" in response.text
    assert console.post("/admin/mappings", {"name": "ok-name"}).headers["Location"] == (
        "/admin/mappings/ok-name"
    )


def preview_on_event(console: Console, document: dict[str, Any], event_id: str) -> Any:
    """The editor's Preview of ``document`` (unsaved) on one stored event."""
    return console.post(
        "/admin/mappings/moves",
        {
            "document": pretty(document),
            "action": "preview",
            "source": "event",
            "event_id": event_id,
        },
    )


def test_preview_shows_the_upserts_and_the_differences(console: Console, setup: Any) -> None:
    changed = {**MAPPING, "upserts": [{**MAPPING["upserts"][0], "fields": {"Qty__c": "`1`"}}]}
    response = preview_on_event(console, changed, setup["event"]["id"])
    assert response.status_code == 200, response.text
    assert "Differences from version 1" in response.text
    assert "<del><code>&#34;SKU-TEST-0001&#34;</code></del>" in response.text
    assert "<ins><code>1</code></ins>" in response.text


def test_preview_says_why_an_upsert_is_skipped(console: Console, setup: Any) -> None:
    skipping = {**MAPPING, "upserts": [{**MAPPING["upserts"][0], "when": "payload.missing"}]}
    response = preview_on_event(console, skipping, setup["event"]["id"])
    assert response.status_code == 200, response.text
    assert "No upserts for this event." in response.text
    assert (
        "Skipped Inventory_Item__c (upsert <code>item</code>): when `payload.missing` is null"
    ) in response.text


def test_preview_problems_are_shown_not_raised(console: Console) -> None:
    response = console.post(
        "/admin/mappings/moves", {"document": pretty(MAPPING), "action": "preview"}
    )
    assert response.status_code == 400
    assert "no webhook record uses mapping" in response.text


# --- the event log -----------------------------------------------------------------------


def test_filters_narrow_the_log_and_bad_ones_are_explained(console: Console, setup: Any) -> None:
    assert "inventory.moved" in console.get("/admin/events?status=delivered").text
    assert "No events match" in console.get("/admin/events?status=failed").text
    response = console.get("/admin/events?since=yesterday")
    assert response.status_code == 422
    assert "cannot parse" in response.text


def test_older_events_page_on_and_a_made_up_cursor_is_explained(
    console: Console, group_factory: Callable[..., Any], deliver: Callable[..., Any]
) -> None:
    group = group_factory(events=["inventory.moved"])
    for number in range(event_pages.PAGE + 1):
        event = {"id": f"e-{number}", "topic": "inventory.moved", "data": {"itemId": "A-1"}}
        assert deliver(group, json.dumps(event).encode()).status_code == 200

    newest = console.get("/admin/events").text
    older = re.search(r'href="([^"]*cursor=[^"]*)">Older events', newest)
    assert older, "the first page links to older events"
    oldest = console.get(html.unescape(older.group(1)))
    made_up = console.get("/admin/events?cursor=12")

    assert 'href="/admin/events/1"' not in newest
    assert 'href="/admin/events/1"' in oldest.text and "Older events" not in oldest.text
    assert made_up.status_code == 400
    assert "cursor is not one this list gave out" in made_up.text


def test_replaying_one_event(console: Console, setup: Any, admin: Any) -> None:
    event_id = setup["event"]["id"]
    response = console.post(f"/admin/events/{event_id}/replay")
    assert response.status_code == 303
    assert admin.get(f"/events/{event_id}").get_json()["status"] == "pending"


def test_an_events_page_shows_the_fields_each_upsert_sent(console: Console, setup: Any) -> None:
    page = console.get(f"/admin/events/{setup['event']['id']}").text

    assert '<code>Xemelgo_Id__c</code> <span class="help">(external id)</span>' in page
    assert (
        '<tr><th scope="row"><code>Sku__c</code></th>'
        '<td><code class="wrap">&#34;SKU-TEST-0001&#34;</code></td></tr>'
    ) in page


def test_an_events_page_says_why_fields_are_not_shown(
    console: Console, setup: Any, admin: Any
) -> None:
    admin.delete(f"/groups/{setup['group']['id']}")

    page = console.get(f"/admin/events/{setup['event']['id']}").text

    assert "Fields not shown: the event&#39;s webhook group was deleted" in page
    assert "<code>Sku__c</code>" not in page


def test_replaying_without_a_filter_needs_the_every_event_button(
    console: Console, setup: Any, admin: Any
) -> None:
    page = console.get("/admin/events").text
    assert "Replay every event" in page and "Replay all matching" not in page

    refused = console.post("/admin/events/replay", {})
    every = console.post("/admin/events/replay", {"all": "1"})

    assert refused.status_code == 400
    assert "a replay without any filter would take every event" in refused.text
    assert every.status_code == 303
    assert "count=0" in every.headers["Location"]  # its one event was delivered: not taken
    assert admin.get(f"/events/{setup['event']['id']}").get_json()["status"] == "delivered"


def test_bulk_replay_reports_progress_until_done(console: Console, setup: Any, worker: Any) -> None:
    response = console.post("/admin/events/replay", {"status": "delivered"})
    assert response.status_code == 303
    progress = response.headers["Location"]
    assert "status=" not in progress
    first = console.get(progress + "&fragment=1").text
    assert 'data-done="false"' in first and "1 of 1 still waiting" in first
    worker.drain()
    done = console.get(progress).text
    assert "Done: all 1 processed" in done
    assert "Replay of 1 event" in done


def test_the_overview_says_why_events_to_a_limited_target_wait(
    console: Console, settings: Any, gw: Gateway
) -> None:
    from gateway.target_limits import TargetLimits

    gw.limiter.limits["local"] = TargetLimits(per_second=5, per_day=2)
    with gw.db.session() as session:
        gw.limiter.reserve(session, "local", [1, 1])

    html = console.get("/admin/").text

    assert "2 of 2 calls today, at most 5 a second." in html
    assert "waiting: the daily budget of 2 calls to local is spent" in html


# --- the record store --------------------------------------------------------------------


def test_the_records_pages_list_objects_search_and_show_the_writing_events(
    console: Console, setup: Any
) -> None:
    event_id = setup["event"]["id"]
    objects = console.get("/admin/records").text
    found = console.get("/admin/records/Inventory_Item__c?contains=sku-test").text
    missed = console.get("/admin/records/Inventory_Item__c?field=Sku__c&value=other").text
    detail = console.get("/admin/records/Inventory_Item__c/inv-test-000987").text

    assert re.search(r">Inventory_Item__c</a></td>\s*<td class=\"num\">1</td>", objects)
    assert "/admin/records/Inventory_Item__c/inv-test-000987" in found
    assert "No Inventory_Item__c records match this search" in missed
    assert f'href="/admin/events/{event_id}">event {event_id}</a>' in detail
    assert 'href="/admin/mappings/moves">moves</a> v1' in detail


def test_a_record_search_that_cannot_be_read_is_explained(console: Console, setup: Any) -> None:
    response = console.get("/admin/records/Inventory_Item__c?field=Sku__c")

    assert response.status_code == 422
    assert "field and value filter together" in response.text


def test_deleting_a_record_from_its_page(console: Console, setup: Any, admin: Any) -> None:
    response = console.post("/admin/records/Inventory_Item__c/inv-test-000987/delete")

    assert response.status_code == 303
    assert admin.get("/records/Inventory_Item__c/inv-test-000987").status_code == 404
    listed = console.get(response.headers["Location"]).text
    assert "Inventory_Item__c record inv-test-000987 deleted" in listed
    assert "No Inventory_Item__c records." in listed


# --- daily work on the event log and groups ----------------------------------------------


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        ("status=delivered&status=failed", True),  # several statuses: any of them
        ("status=failed&status=dead", False),
        ("contains=INV-TEST-000987", True),  # text in the payload, ignoring case
        ("contains=inv-test-000988", False),
    ],
)
def test_the_log_filters_on_several_statuses_and_payload_text(
    console: Console, setup: Any, query: str, listed: bool
) -> None:
    page = console.get(f"/admin/events?{query}").text

    assert (f'href="/admin/events/{setup["event"]["id"]}"' in page) is listed
    for status in re.findall(r"status=(\w+)", query):
        assert f'value="{status}" checked' in page


def test_the_log_refreshes_its_table_alone_with_the_same_filters(
    console: Console, setup: Any
) -> None:
    page = console.get("/admin/events?status=delivered&status=failed").text
    follow = html.unescape(re.search(r'data-follow="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    table = console.get(follow)

    assert "status=delivered,failed" in follow
    assert f'href="/admin/events/{setup["event"]["id"]}"' in table.text
    assert "<main" not in table.text


def test_only_groups_that_verify_nothing_carry_the_unverified_badge(
    console: Console, group_factory: Callable[..., Any]
) -> None:
    signed = group_factory(name="Signed")
    open_one = group_factory(
        name="Open", connector="generic", function="webhooks", secret="-", events=["user.created"]
    )

    listed = console.get("/admin/groups").text
    rows = {
        name: row for name, row in re.findall(r">(Signed|Open)</a></td>(.*?)</tr>", listed, re.S)
    }

    assert "unverified" in rows["Open"] and "unverified" not in rows["Signed"]
    assert "unverified" in console.get(f"/admin/groups/{open_one['id']}").text
    assert "unverified" not in console.get(f"/admin/groups/{signed['id']}").text


def test_a_group_without_a_secret_that_requires_an_access_token_is_verified(
    console: Console, admin: Any, group_factory: Callable[..., Any]
) -> None:
    open_one = group_factory(
        name="Open", connector="generic", function="webhooks", secret="-", events=["user.created"]
    )
    admin.patch(f"/groups/{open_one['id']}", {"require_bearer": True})

    assert "unverified" not in console.get(f"/admin/groups/{open_one['id']}").text


def test_a_test_event_goes_through_the_receive_path_signed(
    console: Console, group_factory: Callable[..., Any], admin: Any
) -> None:
    group = group_factory(events=["inventory.moved"])

    response = console.post(f"/admin/groups/{group['id']}/test-event", {"event": "inventory.moved"})

    assert response.status_code == 303
    shown = console.get(response.headers["Location"]).text
    assert "Test event sent: 1 accepted, 0 duplicate, 0 ignored" in shown
    events = admin.get("/events", query_string={"group_id": group["id"]}).get_json()["items"]
    assert [e["type"] for e in events] == ["inventory.moved"]  # its signature passed


def test_a_test_event_to_a_group_requiring_a_token_carries_one_of_its_clients(
    console: Console, group_factory: Callable[..., Any], admin: Any
) -> None:
    group = group_factory(events=["inventory.moved"])
    admin.patch(f"/groups/{group['id']}", {"require_bearer": True})
    page = f"/admin/groups/{group['id']}/test-event"

    without = console.post(page, {"event": "inventory.moved"})
    admin.post(f"/groups/{group['id']}/oauth-clients", {})
    with_one = console.post(page, {"event": "inventory.moved"})

    assert without.status_code == 409
    assert "has no client to give one to" in without.text
    assert with_one.status_code == 303
    assert "Test event sent: 1 accepted" in console.get(with_one.headers["Location"]).text


def test_a_refused_test_event_says_why_and_stores_no_event(
    console: Console, group_factory: Callable[..., Any], admin: Any
) -> None:
    group = group_factory(events=["inventory.moved"], secret=None)

    response = console.post(f"/admin/groups/{group['id']}/test-event", {"event": "inventory.moved"})

    assert response.status_code == 401
    assert "The test event was refused (401)" in response.text
    assert admin.get("/events").get_json()["items"] == []


def test_an_event_without_a_sample_is_refused_on_the_test_form(
    console: Console, group_factory: Callable[..., Any]
) -> None:
    group = group_factory(events=["inventory.moved"])

    response = console.post(f"/admin/groups/{group['id']}/test-event", {"event": "nothing.here"})

    assert response.status_code == 422
    assert "has no sample for event" in response.text


# --- targets -----------------------------------------------------------------------------


def test_target_credentials_are_stored_write_only_and_forgotten(
    console: Console, group_factory: Callable[..., Any], gw: Gateway
) -> None:
    group_factory(target="salesforce")
    password = "pw-" + hashlib.sha256(b"fake").hexdigest()[:12]

    stored = console.post(
        "/admin/targets/salesforce/credentials",
        {"SALESFORCE_USERNAME": "ops@example.com", "SALESFORCE_PASSWORD": password},
    )
    page = console.get("/admin/targets").text
    kept = console.post("/admin/targets/salesforce/credentials", {"SALESFORCE_DOMAIN": "test"})
    both = gw.credentials.get("salesforce")
    forgotten = console.post("/admin/targets/salesforce/credentials/delete")

    assert (stored.status_code, kept.status_code, forgotten.status_code) == (303, 303, 303)
    assert "SALESFORCE_PASSWORD" in page and password not in page and "ops@example.com" not in page
    assert both is not None and both.values["SALESFORCE_PASSWORD"] == password  # kept when empty
    assert both.values["SALESFORCE_DOMAIN"] == "test"
    assert gw.credentials.get("salesforce") is None


def test_target_credentials_with_nothing_filled_are_refused(
    console: Console, group_factory: Callable[..., Any]
) -> None:
    group_factory(target="salesforce")

    response = console.post("/admin/targets/salesforce/credentials")

    assert response.status_code == 422
    assert "give at least one variable" in response.text


# --- the mapping editor ------------------------------------------------------------------


def test_the_preview_is_shown_beside_the_editor(console: Console, setup: Any) -> None:
    page = preview_on_event(console, MAPPING, setup["event"]["id"]).text

    assert 'class="editor-layout with-preview"' in page
    aside = page[page.index('<aside class="editor-side"') : page.index("</aside>")]
    assert 'id="preview-title"' in aside and "inv-test-000987" in aside
