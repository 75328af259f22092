"""Where an API-key sender puts its key: the header or query parameter a group chooses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import Admin

KEY = "generic-test-api-key-0123456789"
BODY = json.dumps({"event_type": "order.created", "data": {"id": 1}}).encode()

BEARER = {"header": "Authorization", "prefix": "Bearer "}
API_KEY_HEADER = {"header": "api-key"}
QUERY = {"query": "key"}


@pytest.fixture
def api_key_group(group_factory: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    def make(api_key: dict[str, str] | None) -> dict[str, Any]:
        return group_factory(
            connector="generic", events=["order.created"], secret=KEY, api_key=api_key
        )

    return make


def post(client: FlaskClient, group: dict[str, Any], headers: dict[str, str], query: str) -> Any:
    return client.post(
        f"/hooks/{group['token']}{query}",
        data=BODY,
        headers={"Content-Type": "application/json", **headers},
    )


@pytest.mark.parametrize(
    ("api_key", "headers", "query", "status", "code"),
    [
        (None, {"x-api-key": KEY}, "", 200, None),
        (None, {"Authorization": f"Bearer {KEY}"}, "", 401, "api_key_missing"),
        (BEARER, {"Authorization": f"Bearer {KEY}"}, "", 200, None),
        (BEARER, {"Authorization": f"bearer {KEY}"}, "", 200, None),
        (BEARER, {"Authorization": KEY}, "", 401, "api_key_invalid"),
        (BEARER, {"Authorization": "Bearer wrong"}, "", 401, "api_key_invalid"),
        (BEARER, {"x-api-key": KEY}, "", 401, "api_key_missing"),
        (API_KEY_HEADER, {"api-key": KEY}, "", 200, None),
        (API_KEY_HEADER, {"api-key": "wrong"}, "", 401, "api_key_invalid"),
        (QUERY, {}, f"?key={KEY}", 200, None),
        (QUERY, {}, f"?other=1&key={KEY}", 200, None),
        (QUERY, {}, "?key=wrong", 401, "api_key_invalid"),
        (QUERY, {}, "", 401, "api_key_missing"),
        (QUERY, {"x-api-key": KEY}, "", 401, "api_key_missing"),
    ],
)
def test_the_key_is_read_where_the_group_says(
    client: FlaskClient,
    api_key_group: Callable[..., dict[str, Any]],
    api_key: dict[str, str] | None,
    headers: dict[str, str],
    query: str,
    status: int,
    code: str | None,
) -> None:
    response = post(client, api_key_group(api_key), headers, query)
    assert response.status_code == status, response.get_json()
    if code:
        assert response.get_json()["error"]["code"] == code
        assert KEY not in response.get_data(as_text=True)


def test_the_group_shows_and_changes_where_its_key_is(
    admin: Admin, client: FlaskClient, api_key_group: Callable[..., dict[str, Any]]
) -> None:
    group = api_key_group(API_KEY_HEADER)
    assert group["api_key"] == API_KEY_HEADER
    changed = admin.patch(f"/groups/{group['id']}", {"api_key": QUERY}).get_json()
    assert changed["api_key"] == QUERY
    assert post(client, group, {}, f"?key={KEY}").status_code == 200
    back = admin.patch(f"/groups/{group['id']}", {"api_key": None}).get_json()
    assert back["api_key"] is None
    assert post(client, group, {"x-api-key": KEY}, "").status_code == 200


def test_a_chosen_key_header_is_never_stored(
    admin: Admin, client: FlaskClient, api_key_group: Callable[..., dict[str, Any]]
) -> None:
    group = api_key_group({"header": "x-partner"})
    assert post(client, group, {"x-partner": KEY}, "").status_code == 200
    event_id = admin.get("/events").get_json()["items"][0]["id"]
    assert KEY not in json.dumps(admin.get(f"/events/{event_id}").get_json())


@pytest.mark.parametrize(
    "api_key",
    [
        {},
        {"prefix": "Bearer "},
        {"header": "x-a", "query": "key"},
        {"header": "bad header"},
        {"query": "key", "other": "x"},
    ],
)
def test_a_location_names_one_header_or_one_query_parameter(
    admin: Admin, api_key: dict[str, str]
) -> None:
    response = admin.post(
        "/groups",
        {
            "name": "g",
            "connector": "generic",
            "function": "webhooks",
            "events": ["order.created"],
            "secret": KEY,
            "api_key": api_key,
        },
    )
    assert response.status_code == 422


def test_only_api_key_connectors_take_a_key_location(
    admin: Admin, group_factory: Callable[..., dict[str, Any]]
) -> None:
    group = group_factory()  # xemelgo: an HMAC signature
    response = admin.patch(f"/groups/{group['id']}", {"api_key": QUERY})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["path"] == "api_key"


def test_the_key_and_an_access_token_cannot_share_the_authorization_header(
    admin: Admin, api_key_group: Callable[..., dict[str, Any]]
) -> None:
    group = api_key_group(BEARER)
    response = admin.patch(f"/groups/{group['id']}", {"require_bearer": True})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["path"] == "api_key"
    assert admin.get(f"/groups/{group['id']}").get_json()["require_bearer"] is False
