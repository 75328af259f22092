"""Compressed deliveries: decompressed where the connector profile accepts them, else 415."""

from __future__ import annotations

import copy
import gzip
import hashlib
import hmac
import json
import zlib
from typing import Any

import pytest

from gateway.connectors import shipped_profiles

SECRET = "compressed-test-secret-0123456789"
BODY = json.dumps({"id": "m-1", "eventTimestamp": 1, "topic": "inventory.moved", "data": {}})


def profile(name: str, signed: str) -> dict[str, Any]:
    """Xemelgo's profile under another name, accepting gzip and deflate bodies."""
    document = copy.deepcopy(shipped_profiles()["xemelgo"].document)
    document["name"] = name
    document["content_encoding"] = {"accept": ["gzip", "deflate"], "signed": signed}
    return document


def signature(content: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), content, hashlib.sha256).hexdigest()
    return {"xemelgo-signature": f"sha256={digest}"}


def post(client: Any, group: dict[str, Any], sent: bytes, headers: dict[str, str]) -> Any:
    headers = {"Content-Type": "application/json", **headers}
    return client.post(f"/hooks/{group['token']}", data=sent, headers=headers)


@pytest.mark.parametrize(
    ("signed", "compress"),
    [
        ("decompressed", gzip.compress),
        ("compressed", gzip.compress),
        ("decompressed", zlib.compress),
    ],
    ids=["gzip, signed as decompressed", "gzip, signed as sent", "deflate"],
)
def test_an_accepted_compressed_body_is_verified_and_stored_decompressed(
    admin: Any, client: Any, group_factory: Any, signed: str, compress: Any
) -> None:
    assert admin.post("/connectors", profile("squeezed", signed)).status_code == 201
    group = group_factory(
        connector="squeezed", secret=SECRET, events=["inventory.moved"], function="webhooks"
    )
    sent = compress(BODY.encode())
    coding = "gzip" if compress is gzip.compress else "deflate"
    signed_bytes = sent if signed == "compressed" else BODY.encode()

    response = post(client, group, sent, {"Content-Encoding": coding, **signature(signed_bytes)})

    assert response.status_code == 200, response.get_json()
    (event,) = admin.get("/events").get_json()["items"]
    assert event["type"] == "inventory.moved"


def test_a_signature_over_the_other_bytes_is_refused(
    admin: Any, client: Any, group_factory: Any
) -> None:
    admin.post("/connectors", profile("squeezed", "decompressed"))
    group = group_factory(
        connector="squeezed", secret=SECRET, events=["inventory.moved"], function="webhooks"
    )
    sent = gzip.compress(BODY.encode())

    response = post(client, group, sent, {"Content-Encoding": "gzip", **signature(sent)})

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("coding", "sent", "status", "code"),
    [
        ("gzip", gzip.compress(BODY.encode()), 415, "unsupported_content_encoding"),
        ("deflate", zlib.compress(BODY.encode()), 415, "unsupported_content_encoding"),
        ("br", BODY.encode(), 415, "unsupported_content_encoding"),
    ],
    ids=["gzip", "deflate", "an unknown coding"],
)
def test_a_compressed_body_the_connector_does_not_accept_is_415(
    admin: Any, client: Any, group_factory: Any, coding: str, sent: bytes, status: int, code: str
) -> None:
    group = group_factory(secret=SECRET, events=["inventory.moved"])

    response = post(client, group, sent, {"Content-Encoding": coding, **signature(BODY.encode())})

    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert admin.get("/events").get_json()["items"] == []


def test_a_body_that_decompresses_past_the_limit_is_413(
    admin: Any, client: Any, group_factory: Any, gw: Any
) -> None:
    admin.post("/connectors", profile("squeezed", "decompressed"))
    group = group_factory(
        connector="squeezed", secret=SECRET, events=["inventory.moved"], function="webhooks"
    )
    bomb = gzip.compress(b" " * (gw.settings.max_body_bytes * 8), compresslevel=9)

    response = post(client, group, bomb, {"Content-Encoding": "gzip"})

    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"
