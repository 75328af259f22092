"""The console's Connectors page: the list, a shipped profile read-only, a custom one edited
(with its problems on their lines) and deleted; groups' description, contact and '*'."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest

from tests.console.conftest import Console

SHOP = {
    "name": "shop",
    "title": "Test shop",
    "functions": [{"name": "orders", "events": ["order.paid"]}],
    "verification": {"scheme": "hmac", "header": "X-Shop-Signature"},
    "events": {"type": {"jmespath": "type"}},
}


@pytest.fixture
def shop(admin: Any) -> None:
    assert admin.put("/connectors/shop", SHOP).status_code == 201


def pretty(document: Any) -> str:
    return json.dumps(document, indent=2)


def test_the_list_shows_shipped_and_custom_profiles(console: Console, shop: None) -> None:
    page = console.get("/admin/connectors")

    assert page.status_code == 200
    assert 'href="/admin/connectors/xtnd"' in page.text
    assert "custom, version 1" in page.text
    assert 'aria-current="page">Connectors<' in page.text


def test_a_shipped_profile_is_shown_read_only(console: Console) -> None:
    page = console.get("/admin/connectors/xtnd")
    saved = console.post("/admin/connectors/xtnd", {"document": pretty(SHOP)})

    assert "shipped, read-only" in page.text
    assert "<textarea" not in page.text
    assert "ms-signature" in page.text
    assert saved.status_code == 409
    assert "read-only" in saved.text


def test_saving_an_edit_makes_a_version_shown_in_the_history(
    console: Console, shop: None, admin: Any
) -> None:
    edited = {**SHOP, "functions": [{"name": "orders", "events": ["order.paid", "order.new"]}]}

    saved = console.post("/admin/connectors/shop", {"document": pretty(edited)})
    page = console.get("/admin/connectors/shop")

    assert saved.status_code == 303
    assert admin.get("/connectors/shop").get_json()["version"] == 2
    assert "Saved as version 2." in page.text
    assert "version 2: functions" in page.text
    assert "version 1: created" in page.text


def test_an_invalid_edit_shows_each_problem_on_its_line(console: Console, shop: None) -> None:
    broken = {**SHOP, "verification": {"scheme": "hmac", "header": "X-Sig", "format": "v1"}}

    response = console.post("/admin/connectors/shop", {"document": pretty(broken)})

    assert response.status_code == 422
    assert "<code>verification.format</code>" in response.text
    assert 'data-goto-line="' in response.text
    assert 'aria-invalid="true"' in response.text


def test_text_that_is_not_json_is_shown_back_with_where_it_broke(
    console: Console, shop: None
) -> None:
    response = console.post("/admin/connectors/shop", {"document": '{"name": "shop",'})

    assert response.status_code == 422
    assert "The document is not valid JSON." in response.text
    assert "{&#34;name&#34;: &#34;shop&#34;," in response.text


def test_a_new_profile_is_made_from_a_skeleton(console: Console, admin: Any) -> None:
    opened = console.post("/admin/connectors", {"name": "acme-erp"})
    editor = console.get(opened.headers["Location"])
    taken = console.post("/admin/connectors", {"name": "xtnd"})
    invalid = console.post("/admin/connectors", {"name": "Bad Name"})
    text = editor.text.split('name="document"')[1].split(">", 1)[1].split("</textarea>")[0]
    document = json.loads(html.unescape(text))

    assert opened.status_code == 303
    assert "not saved yet" in editor.text
    assert (
        console.post("/admin/connectors/acme-erp", {"document": pretty(document)}).status_code
        == 303
    )
    assert admin.get("/connectors/acme-erp").get_json()["version"] == 1
    assert taken.status_code == 409
    assert invalid.status_code == 422


def test_a_profile_in_use_is_not_deleted_and_an_unused_one_is(
    console: Console, shop: None, group_factory: Any, admin: Any
) -> None:
    group = group_factory(connector="shop", function="orders", events=["*"])

    refused = console.post("/admin/connectors/shop/delete")
    admin.delete(f"/groups/{group['id']}")
    deleted = console.post("/admin/connectors/shop/delete")

    assert refused.status_code == 409
    assert "used by 1 webhook group" in refused.text
    assert deleted.status_code == 303
    assert admin.get("/connectors/shop").status_code == 404


def test_a_group_form_takes_a_description_a_contact_and_every_event(
    console: Console, admin: Any
) -> None:
    response = console.post(
        "/admin/groups/new",
        {
            "name": "EU warehouse",
            "choice": "xemelgo/webhooks",
            "events": "*",
            "secret": "test-secret-0123456789abcdef",
            "description": "Pallets for the EU site",
            "contact": "it@vendor.example",
            "active": "on",
        },
    )
    group_id = response.headers["Location"].rsplit("/", 1)[1]
    page = console.get(f"/admin/groups/{group_id}")
    clone = console.get(f"/admin/webhooks/{page_template(admin, group_id)}/clone")

    assert response.status_code == 303, response.text
    group = admin.get(f"/groups/{group_id}").get_json()
    assert (group["events"], group["contact"]) == (["*"], "it@vendor.example")
    assert "Pallets for the EU site" in page.text
    assert "it@vendor.example" in page.text
    assert 'value="inventory.moved"' in clone.text  # the catalog, since the group takes them all


def page_template(admin: Any, group_id: str) -> str:
    template: str = admin.get(f"/groups/{group_id}").get_json()["template_webhook_id"]
    return template
