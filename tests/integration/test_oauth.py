"""OAuth 2.0 on the callback URL: a group's clients, the token endpoint, the bearer check."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from gateway.access_tokens import Grant, issue
from gateway.services import Gateway
from tests.conftest import Admin

BODY = json.dumps(
    {
        "id": "0001",
        "topic": "inventory.cycle_count",
        "eventTimestamp": 1767225600000,
        "data": {"itemId": "A-1"},
    }
).encode()


@pytest.fixture
def oauth_client(admin: Admin) -> Callable[[dict[str, Any]], dict[str, str]]:
    def make(group: dict[str, Any]) -> dict[str, str]:
        response = admin.post(f"/groups/{group['id']}/oauth-clients", {"name": "sender"})
        assert response.status_code == 201, response.get_json()
        credentials: dict[str, str] = response.get_json()
        return credentials

    return make


def token_request(
    client: FlaskClient, form: dict[str, str], basic: tuple[str, str] | None = None
) -> Any:
    headers = {}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(basic).encode()).decode()
    return client.post("/oauth/token", data=form, headers=headers)


def fetch_token(client: FlaskClient, credentials: dict[str, str]) -> str:
    response = token_request(client, {"grant_type": "client_credentials", **credentials})
    assert response.status_code == 200, response.get_json()
    token: str = response.get_json()["access_token"]
    return token


# --- the admin API ---------------------------------------------------------------------------


def test_a_client_secret_is_shown_once_and_listed_as_a_hint(
    admin: Admin, group_factory: Callable[..., dict[str, Any]], oauth_client: Any
) -> None:
    group = group_factory()
    made = oauth_client(group)
    assert set(made) == {"client_id", "client_secret"}
    assert len(made["client_secret"]) >= 43
    listed = admin.get(f"/groups/{group['id']}/oauth-clients").get_json()
    assert [item["client_id"] for item in listed["items"]] == [made["client_id"]]
    item = listed["items"][0]
    assert item["name"] == "sender"
    assert made["client_secret"] not in json.dumps(listed)
    assert item["secret_hint"] == "…" + made["client_secret"][-4:]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/groups/nope/oauth-clients"),
        ("GET", "/groups/nope/oauth-clients"),
        ("DELETE", "/groups/{group}/oauth-clients/nope"),
        ("POST", "/groups/{group}/oauth-clients/nope/rotate-secret"),
    ],
)
def test_unknown_groups_and_clients_are_404(
    admin: Admin, group_factory: Callable[..., dict[str, Any]], method: str, path: str
) -> None:
    group = group_factory()
    response = admin.call(method, path.format(group=group["id"]), json={})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_a_client_of_one_group_cannot_be_revoked_through_another(
    admin: Admin, group_factory: Callable[..., dict[str, Any]], oauth_client: Any
) -> None:
    mine, other = group_factory(), group_factory(name="Other")
    made = oauth_client(mine)
    response = admin.delete(f"/groups/{other['id']}/oauth-clients/{made['client_id']}")
    assert response.status_code == 404
    assert len(admin.get(f"/groups/{mine['id']}/oauth-clients").get_json()["items"]) == 1


def test_deleting_a_group_deletes_its_clients(
    admin: Admin,
    client: FlaskClient,
    group_factory: Callable[..., dict[str, Any]],
    oauth_client: Any,
) -> None:
    group = group_factory()
    made = oauth_client(group)
    assert admin.delete(f"/groups/{group['id']}").status_code == 204
    response = token_request(client, {"grant_type": "client_credentials", **made})
    assert response.status_code == 401


# --- the token endpoint ----------------------------------------------------------------------


@pytest.mark.parametrize("by", ["basic", "form"])
def test_the_token_endpoint_answers_a_bearer_token_for_the_group(
    client: FlaskClient,
    gw: Gateway,
    group_factory: Callable[..., dict[str, Any]],
    oauth_client: Any,
    by: str,
) -> None:
    group = group_factory()
    made = oauth_client(group)
    if by == "basic":
        pair = (made["client_id"], made["client_secret"])
        response = token_request(client, {"grant_type": "client_credentials"}, basic=pair)
    else:
        response = token_request(client, {"grant_type": "client_credentials", **made})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    answer = response.get_json()
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == gw.settings.oauth_token_ttl_s == 3600
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert claims["aud"] == f"group:{group['id']}"
    assert claims["sub"] == made["client_id"]
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize(
    ("form", "basic", "status", "error"),
    [
        ({}, None, 400, "invalid_request"),
        ({"grant_type": "password"}, None, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": "{id}"}, None, 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "client_id": "{id}", "client_secret": "wrong"},
            None,
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "x" * 40, "client_secret": "{s}"},
            None,
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials"}, ("{id}", "wrong"), 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "client_id": "{id}"},
            ("{id}", "{s}"),
            400,
            "invalid_request",
        ),
    ],
)
def test_refused_token_requests_answer_as_rfc_6749_says(
    client: FlaskClient,
    group_factory: Callable[..., dict[str, Any]],
    oauth_client: Any,
    form: dict[str, str],
    basic: tuple[str, str] | None,
    status: int,
    error: str,
) -> None:
    made = oauth_client(group_factory())

    def filled(value: str) -> str:
        return value.replace("{id}", made["client_id"]).replace("{s}", made["client_secret"])

    sent = {name: filled(value) for name, value in form.items()}
    pair = (filled(basic[0]), filled(basic[1])) if basic else None
    response = token_request(client, sent, basic=pair)
    assert response.status_code == status
    answer = response.get_json()
    assert answer["error"] == error
    assert answer["error_description"]
    assert made["client_secret"] not in response.get_data(as_text=True)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_a_token_request_must_be_a_form(client: FlaskClient) -> None:
    response = client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_a_repeated_parameter_is_an_invalid_request(client: FlaskClient) -> None:
    response = client.post(
        "/oauth/token",
        data="grant_type=client_credentials&grant_type=client_credentials",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def fail_token_requests(client: FlaskClient, credentials: dict[str, str], times: int) -> None:
    wrong = {**credentials, "grant_type": "client_credentials", "client_secret": "wrong"}
    for _ in range(times):
        assert token_request(client, wrong).status_code == 401


def test_too_many_failed_token_requests_from_one_address_get_429(
    client: FlaskClient,
    gw: Gateway,
    group_factory: Callable[..., dict[str, Any]],
    oauth_client: Any,
) -> None:
    made = oauth_client(group_factory())
    fail_token_requests(client, made, gw.settings.oauth_token_attempts)
    refused = token_request(client, {"grant_type": "client_credentials", **made})
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "temporarily_unavailable"


def test_a_good_token_request_gives_the_address_its_allowance_back(
    client: FlaskClient,
    gw: Gateway,
    group_factory: Callable[..., dict[str, Any]],
    oauth_client: Any,
) -> None:
    made = oauth_client(group_factory())
    for _ in range(2):
        fail_token_requests(client, made, gw.settings.oauth_token_attempts - 1)
        fetch_token(client, made)


# --- deliveries to a group that requires a bearer token --------------------------------------


@pytest.fixture
def bearer_group(
    group_factory: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    return group_factory(require_bearer=True)


def test_a_group_shows_whether_it_requires_a_bearer_token(
    admin: Admin, group_factory: Callable[..., dict[str, Any]]
) -> None:
    group = group_factory()
    assert group["require_bearer"] is False
    changed = admin.patch(f"/groups/{group['id']}", {"require_bearer": True}).get_json()
    assert changed["require_bearer"] is True


def test_a_delivery_with_a_token_and_a_signature_is_accepted(
    client: FlaskClient, deliver: Any, bearer_group: dict[str, Any], oauth_client: Any
) -> None:
    token = fetch_token(client, oauth_client(bearer_group))
    response = deliver(bearer_group, BODY, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["accepted"] == 1


@pytest.mark.parametrize(
    ("authorization", "signed", "code"),
    [
        (None, True, "bearer_token_missing"),
        ("Basic abc", True, "bearer_token_missing"),
        ("Bearer not-a-token", True, "bearer_token_invalid"),
        ("Bearer {token}", False, "signature_missing"),
    ],
)
def test_a_delivery_needs_both_the_token_and_the_signature(
    client: FlaskClient,
    admin: Admin,
    deliver: Any,
    bearer_group: dict[str, Any],
    oauth_client: Any,
    authorization: str | None,
    signed: bool,
    code: str,
) -> None:
    token = fetch_token(client, oauth_client(bearer_group))
    headers = {"Authorization": authorization.format(token=token)} if authorization else {}
    response = deliver(bearer_group, BODY, headers, signed=signed)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == code
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer") == code.startswith("bearer_token")
    assert ('error="invalid_token"' in challenge) == (code == "bearer_token_invalid")
    assert token not in response.get_data(as_text=True)
    assert admin.get("/events").get_json()["items"] == []


def test_a_token_of_another_groups_client_is_refused(
    client: FlaskClient,
    deliver: Any,
    group_factory: Callable[..., dict[str, Any]],
    bearer_group: dict[str, Any],
    oauth_client: Any,
) -> None:
    token = fetch_token(client, oauth_client(group_factory(name="Other")))
    response = deliver(bearer_group, BODY, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "bearer_token_invalid"


def test_revoking_a_client_stops_its_tokens_at_once(
    client: FlaskClient,
    admin: Admin,
    deliver: Any,
    bearer_group: dict[str, Any],
    oauth_client: Any,
) -> None:
    made = oauth_client(bearer_group)
    token = fetch_token(client, made)
    assert deliver(bearer_group, BODY, {"Authorization": f"Bearer {token}"}).status_code == 200
    path = f"/groups/{bearer_group['id']}/oauth-clients/{made['client_id']}"
    assert admin.delete(path).status_code == 204
    response = deliver(bearer_group, BODY, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "bearer_token_invalid"
    assert token_request(client, {"grant_type": "client_credentials", **made}).status_code == 401


def test_rotating_a_client_secret_stops_the_old_secret_and_its_tokens(
    client: FlaskClient,
    admin: Admin,
    deliver: Any,
    bearer_group: dict[str, Any],
    oauth_client: Any,
) -> None:
    made = oauth_client(bearer_group)
    old_token = fetch_token(client, made)
    path = f"/groups/{bearer_group['id']}/oauth-clients/{made['client_id']}/rotate-secret"
    rotated = admin.post(path).get_json()
    assert rotated["client_id"] == made["client_id"]
    assert rotated["client_secret"] != made["client_secret"]
    assert token_request(client, {"grant_type": "client_credentials", **made}).status_code == 401
    refused = deliver(bearer_group, BODY, {"Authorization": f"Bearer {old_token}"})
    assert refused.status_code == 401
    new_token = fetch_token(client, rotated)
    assert deliver(bearer_group, BODY, {"Authorization": f"Bearer {new_token}"}).status_code == 200


def test_an_expired_token_is_refused(
    gw: Gateway, deliver: Any, bearer_group: dict[str, Any], oauth_client: Any
) -> None:
    made = oauth_client(bearer_group)
    issued = int(time.time()) - 7200
    grant = Grant(made["client_id"], bearer_group["id"], 1)
    token = issue(gw.token_key, grant, issued, 3600)
    response = deliver(bearer_group, BODY, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "bearer_token_expired"


def test_a_token_signed_with_another_key_is_refused(
    deliver: Any, bearer_group: dict[str, Any], oauth_client: Any
) -> None:
    made = oauth_client(bearer_group)
    grant = Grant(made["client_id"], bearer_group["id"], 1)
    forged = issue(b"k" * 32, grant, int(time.time()), 3600)
    response = deliver(bearer_group, BODY, {"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "bearer_token_invalid"


def test_a_bearer_token_alone_is_enough_for_a_group_without_a_secret(
    client: FlaskClient,
    deliver: Any,
    group_factory: Callable[..., dict[str, Any]],
    oauth_client: Any,
) -> None:
    group = group_factory(secret=None, require_bearer=True)
    token = fetch_token(client, oauth_client(group))
    response = deliver(group, BODY, {"Authorization": f"Bearer {token}"}, signed=False)
    assert response.status_code == 200, response.get_json()
    refused = deliver(group, BODY, signed=False)
    assert refused.status_code == 401


def test_the_token_is_never_stored_with_the_delivery(
    client: FlaskClient,
    admin: Admin,
    deliver: Any,
    bearer_group: dict[str, Any],
    oauth_client: Any,
) -> None:
    token = fetch_token(client, oauth_client(bearer_group))
    deliver(bearer_group, BODY, {"Authorization": f"Bearer {token}"})
    event_id = admin.get("/events").get_json()["items"][0]["id"]
    event = admin.get(f"/events/{event_id}").get_json()
    assert token not in json.dumps(event)
