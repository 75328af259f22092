"""A group's Deliveries page, the raw-body download and re-processing from the console."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.console.conftest import Console
from tests.payloads import XILNEX_SALE

ACCEPTED_SALE = XILNEX_SALE.replace(b"eventName", b"EventName").replace(b"S-1001", b"S-1002")


@pytest.fixture
def xilnex(xilnex_group: dict[str, Any], deliver: Callable[..., Any]) -> Any:
    """A Xilnex group with one accepted sale, one kept refusal and one bad signature."""
    group = xilnex_group
    assert deliver(group, ACCEPTED_SALE).status_code == 200
    assert deliver(group, XILNEX_SALE).status_code == 400
    assert deliver(group, XILNEX_SALE, secret="not-the-secret").status_code == 401
    return group


def rows(page: str) -> list[str]:
    return [html.unescape(row) for row in page.split('<tr id="delivery-')[1:]]


def test_the_group_page_links_its_deliveries(console: Console, xilnex: dict[str, Any]) -> None:
    page = console.get(f"/admin/groups/{xilnex['id']}").text
    assert f'href="/admin/groups/{xilnex["id"]}/deliveries"' in page


def test_the_deliveries_page_lists_each_outcome_with_a_reprocess_button_where_it_can(
    console: Console, xilnex: dict[str, Any]
) -> None:
    unverified, kept, accepted = rows(console.get(f"/admin/groups/{xilnex['id']}/deliveries").text)

    assert "refused" in unverified and "401" in unverified and "Reprocess" not in unverified
    assert "Body</a>" not in unverified
    assert "invalid_payload" in kept and "no event type at `EventName`" in kept
    assert "Reprocess" in kept and "Body</a>" in kept
    assert "accepted" in accepted and "Reprocess" not in accepted
    assert f">{len(ACCEPTED_SALE)}<" in accepted


def test_the_outcome_filter(console: Console, xilnex: dict[str, Any]) -> None:
    page = console.get(f"/admin/groups/{xilnex['id']}/deliveries?outcome=accepted").text
    assert [("accepted" in row) for row in rows(page)] == [True]


def test_reprocessing_from_the_console(
    console: Console,
    admin: Any,
    xilnex: dict[str, Any],
    fixed_xilnex_profile: None,
) -> None:
    (kept,) = admin.get(
        "/deliveries", query_string={"group_id": xilnex["id"], "status": "400"}
    ).get_json()["items"]

    done = console.post(f"/admin/deliveries/{kept['id']}/reprocess")
    assert done.status_code == 303
    page = console.get(done.headers["Location"]).text
    assert f"Delivery {kept['id']} re-processed: 1 new events" in page

    again = console.post(f"/admin/deliveries/{kept['id']}/reprocess")
    assert again.status_code == 409  # the page, with the reason on it
    assert "was re-processed already" in html.unescape(again.text)


def test_reprocessing_what_still_fails_says_why(console: Console, admin: Any, xilnex: Any) -> None:
    (kept,) = admin.get(
        "/deliveries", query_string={"group_id": xilnex["id"], "status": "400"}
    ).get_json()["items"]
    answer = console.post(f"/admin/deliveries/{kept['id']}/reprocess")
    assert answer.status_code == 422
    assert "still cannot be parsed" in html.unescape(answer.text)


def test_an_event_page_offers_its_raw_body(
    console: Console, admin: Any, xilnex: dict[str, Any]
) -> None:
    (event,) = admin.get("/events", query_string={"group_id": xilnex["id"]}).get_json()["items"]
    page = console.get(f"/admin/events/{event['id']}").text
    link = f"/admin/deliveries/{event['delivery_id']}/body"
    assert f'href="{link}" download' in page

    body = console.get(link)
    assert body.status_code == 200
    assert body.data == ACCEPTED_SALE
    assert body.headers["Content-Disposition"].startswith("attachment")


def test_the_body_download_needs_a_sign_in(client: FlaskClient, xilnex: dict[str, Any]) -> None:
    assert client.get("/admin/deliveries/1/body").status_code == 303
