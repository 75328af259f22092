"""The group page's OAuth 2.0 part: clients made (secret shown once), rotated and revoked, and
the switch that requires a bearer token."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.console.conftest import Console


def shown_secret(html: str) -> str:
    match = re.search(r'id="f-client-secret" class="mono" value="([^"]+)"', html)
    assert match, "the page shows no client secret"
    return match.group(1)


def test_a_client_made_on_the_page_shows_its_secret_once(
    console: Console, admin: Any, group_factory: Callable[..., Any]
) -> None:
    group = group_factory()
    page = f"/admin/groups/{group['id']}"
    made = console.post(f"{page}/oauth-clients", {"name": "Xemelgo production"})
    assert made.status_code == 200
    assert made.headers["Cache-Control"] == "no-store"
    secret = shown_secret(made.text)
    [client] = admin.get(f"/groups/{group['id']}/oauth-clients").get_json()["items"]
    assert client["name"] == "Xemelgo production"
    assert client["client_id"] in made.text
    assert "/oauth/token" in made.text
    again = console.get(page).text
    assert secret not in again
    assert client["client_id"] in again


def test_rotating_and_revoking_a_client_on_the_page(
    console: Console, admin: Any, group_factory: Callable[..., Any]
) -> None:
    group = group_factory()
    page = f"/admin/groups/{group['id']}"
    first = shown_secret(console.post(f"{page}/oauth-clients").text)
    [client] = admin.get(f"/groups/{group['id']}/oauth-clients").get_json()["items"]
    rotated = console.post(f"{page}/oauth-clients/{client['client_id']}/rotate-secret")
    assert rotated.status_code == 200
    assert shown_secret(rotated.text) != first
    revoked = console.post(f"{page}/oauth-clients/{client['client_id']}/revoke")
    assert revoked.status_code == 303
    assert admin.get(f"/groups/{group['id']}/oauth-clients").get_json()["items"] == []
    gone = console.post(f"{page}/oauth-clients/{client['client_id']}/revoke")
    assert gone.status_code == 404


def test_the_page_switches_the_bearer_requirement(
    console: Console, admin: Any, group_factory: Callable[..., Any]
) -> None:
    group = group_factory()
    page = f"/admin/groups/{group['id']}"
    assert "Require a token" in console.get(page).text
    assert console.post(f"{page}/require-bearer", {"require_bearer": "true"}).status_code == 303
    assert admin.get(f"/groups/{group['id']}").get_json()["require_bearer"] is True
    assert "Stop requiring a token" in console.get(page).text
    assert console.post(f"{page}/require-bearer", {"require_bearer": "false"}).status_code == 303
    assert admin.get(f"/groups/{group['id']}").get_json()["require_bearer"] is False
