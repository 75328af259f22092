"""The pure half of OAuth on callback URLs: reading a token request's client, and tokens."""

from __future__ import annotations

import base64
import time

import pytest

from gateway.access_tokens import (
    ClientCredentials,
    Grant,
    TokenRequestError,
    bearer_token,
    client_credentials,
    issue,
    read,
    token_key,
)
from gateway.errors import VerificationFailed

GRANT = {"grant_type": ["client_credentials"]}


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "form", "expected"),
    [
        (basic("abc:s3cret"), GRANT, ClientCredentials("abc", "s3cret")),
        # RFC 6749 2.3.1: both are form-encoded before they are joined with the colon
        (basic("a%3Ab:s%2Bc+d"), GRANT, ClientCredentials("a:b", "s+c d")),
        ("basic " + basic("abc:x")[6:], GRANT, ClientCredentials("abc", "x")),
        (
            None,
            {**GRANT, "client_id": ["abc"], "client_secret": ["x"]},
            ClientCredentials("abc", "x"),
        ),
    ],
)
def test_the_client_is_read_from_basic_or_the_form(
    authorization: str | None, form: dict[str, list[str]], expected: ClientCredentials
) -> None:
    assert client_credentials(authorization, form) == expected


@pytest.mark.parametrize(
    ("authorization", "form", "error"),
    [
        ("Basic !!!", GRANT, "invalid_client"),
        (basic("no-colon"), GRANT, "invalid_client"),
        (basic(":secret"), GRANT, "invalid_client"),
        ("Bearer abc", GRANT, "invalid_client"),
        (None, {**GRANT, "client_secret": ["x"]}, "invalid_client"),
        (basic("a:b"), {**GRANT, "client_secret": ["x"]}, "invalid_request"),
        (None, {"grant_type": ["client_credentials", "password"]}, "invalid_request"),
        (None, {"grant_type": ["authorization_code"]}, "unsupported_grant_type"),
    ],
)
def test_a_request_that_is_not_one_client_s_credentials_grant_is_refused(
    authorization: str | None, form: dict[str, list[str]], error: str
) -> None:
    with pytest.raises(TokenRequestError) as refused:
        client_credentials(authorization, form)
    assert refused.value.error == error
    assert refused.value.status == (401 if error == "invalid_client" else 400)


def test_a_token_is_good_for_its_group_only() -> None:
    key = token_key("a secret key")
    token = issue(key, Grant("client", "group-a", 3), now=int(time.time()), ttl_s=3600)
    assert read(key, token, "group-a") == Grant("client", "group-a", 3)
    with pytest.raises(VerificationFailed) as refused:
        read(key, token, "group-b")
    assert refused.value.code == "bearer_token_invalid"


def test_the_token_key_depends_on_the_secret_key() -> None:
    assert token_key("one") != token_key("two")
    assert len(token_key("one")) == 32


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Token abc", "Basic abc"])
def test_a_delivery_without_a_bearer_token_says_so(header: str | None) -> None:
    with pytest.raises(VerificationFailed) as refused:
        bearer_token(header)
    assert refused.value.code == "bearer_token_missing"
