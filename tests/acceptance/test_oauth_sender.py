"""A sender secured with OAuth 2.0, as a real OAuth client library drives it against gunicorn.

requests-oauthlib fetches a token with the client-credentials grant (client authentication by
HTTP Basic, or by form fields) and sends it with a signed delivery, as Xemelgo does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from oauthlib.oauth2 import BackendApplicationClient, InvalidClientError
from requests_oauthlib import OAuth2Session

from gateway.config import Settings
from tests.acceptance.conftest import Api

SECRET = "xemelgo-test-secret-0123456789abcdef"
BODY = json.dumps(
    {
        "id": "delivery-1",
        "topic": "inventory.cycle_count",
        "eventTimestamp": 1767225600000,
        "data": {"itemId": "A-1"},
    }
).encode()


def signed(body: bytes) -> dict[str, str]:
    """Xemelgo's signature header, computed here rather than by the gateway's own signer."""
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"xemelgo-signature": f"sha256={digest}", "Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def plain_http_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """oauthlib insists on HTTPS; the test server is plain HTTP on 127.0.0.1."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.mark.parametrize("include_client_id", [False, True], ids=["basic", "form-fields"])
def test_an_oauth_client_fetches_a_token_and_delivers_with_it(
    settings: Settings,
    start_web: Callable[..., tuple[str, subprocess.Popen[bytes]]],
    include_client_id: bool,
) -> None:
    url, _ = start_web()
    api = Api(url, settings.admin_token or "")
    group = api.post(
        "/groups",
        json={
            "name": "Warehouse",
            "connector": "xemelgo",
            "function": "webhooks",
            "events": ["inventory.cycle_count"],
            "secret": SECRET,
            "require_bearer": True,
        },
    ).json()
    credentials = api.post(f"/groups/{group['id']}/oauth-clients", json={}).json()

    session = OAuth2Session(client=BackendApplicationClient(client_id=credentials["client_id"]))
    token: dict[str, Any] = session.fetch_token(
        f"{url}/oauth/token",
        client_id=credentials["client_id"],
        client_secret=credentials["client_secret"],
        include_client_id=include_client_id,
    )
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600

    delivered = session.post(group["callback_url"], data=BODY, headers=signed(BODY), timeout=10)
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["accepted"] == 1

    unsigned = session.post(group["callback_url"], data=BODY, timeout=10)
    assert unsigned.status_code == 401
    without_token = api.session.post(
        group["callback_url"], data=BODY, headers={**signed(BODY), "Authorization": ""}
    )
    assert without_token.status_code == 401
    assert without_token.json()["error"]["code"] == "bearer_token_missing"

    revoked = api.delete(f"/groups/{group['id']}/oauth-clients/{credentials['client_id']}")
    assert revoked.status_code == 204
    after = session.post(group["callback_url"], data=BODY, headers=signed(BODY), timeout=10)
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "bearer_token_invalid"
    with pytest.raises(InvalidClientError):
        OAuth2Session(
            client=BackendApplicationClient(client_id=credentials["client_id"])
        ).fetch_token(
            f"{url}/oauth/token",
            client_id=credentials["client_id"],
            client_secret=credentials["client_secret"],
        )
