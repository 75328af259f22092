"""``gateway send``: a signed sample or file, posted as the group's provider would post it.

The command runs as a user runs it (a subprocess with the deployment's environment). Its
requests go either to a served gateway (gunicorn) or to a recorder on 127.0.0.1 that keeps them,
so each signature can be checked against an implementation other than the gateway's own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import standardwebhooks
import stripe

from gateway.config import Settings
from gateway.connectors import sample_delivery, shipped_profiles
from tests.acceptance.conftest import ROOT, Api, process_env

SECRETS = {
    # connector: a secret of the shape its provider uses
    "xemelgo": "xemelgo-test-secret-0123456789abcdef",
    "xtnd": "xtnd-test-secret-0123456789",
    "xilnex": "xilnex-test-secret-0123456789",
    "generic": "generic-test-api-key-0123456789",
    "github": "github-test-secret-0123456789",
    "shopify": "shopify-test-secret-0123456789",
    "stripe": "whsec_test_secret_0123456789",
    "standard-webhooks": "whsec_dGVzdC1zZWNyZXQtZm9yLXN0YW5kYXJkLXdlYmhvb2tz",
}

SAMPLES = [
    # (connector, event type, events the sample carries)
    ("xemelgo", "inventory.cycle_count", 1),  # sha256=<hex> of the raw body
    ("xtnd", "OrderCreated", 1),  # sha256=<HEX>; notifications split into events
    ("xtnd", "OrderPicked", 3),  # one delivery carrying three notifications
    ("xilnex", "Complete Sales", 1),  # HMAC of the raw body, type from EventName
    ("generic", "order.created", 1),  # an API key header instead of a signature
    ("github", "push", 1),  # type in X-GitHub-Event, id in X-GitHub-Delivery
    ("shopify", "orders/create", 1),  # base64 HMAC, type in X-Shopify-Topic
    ("stripe", "payment_intent.succeeded", 1),  # t=...,v1=... over "{t}.{body}"
    ("standard-webhooks", "user.created", 1),  # v1,<base64> over "{id}.{timestamp}.{body}"
]


def gateway_send(settings: Settings, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``gateway send ARGS`` with the deployment's environment, public URL ``url``."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", "send", *args],
        cwd=ROOT,
        env=process_env(settings, GATEWAY_PUBLIC_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make_group(call: Callable[..., Any], connector: str, events: list[str]) -> dict[str, Any]:
    """Create a group through ``call(path, body)`` (the served API or the test client)."""
    function = shipped_profiles()[connector].document["functions"][0]["name"]
    body = {
        "name": f"Test {connector}",
        "connector": connector,
        "function": function,
        "events": events,
        "secret": SECRETS[connector],
    }
    group: dict[str, Any] = call("/groups", body)
    return group


def served_group(api: Api, connector: str, events: list[str]) -> dict[str, Any]:
    def call(path: str, body: Any) -> Any:
        response = api.post(path, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    return make_group(call, connector, events)


def answer_of(result: subprocess.CompletedProcess[str]) -> tuple[int, dict[str, Any]]:
    """The status and JSON body ``gateway send`` printed."""
    status, _, body = result.stdout.strip().partition(" ")
    return int(status), json.loads(body)


def stored_payloads(api: Api, group_id: str) -> list[tuple[str, Any]]:
    items = api.get("/events", params={"group_id": group_id}).json()["items"]
    ids = sorted(int(e["id"]) for e in items)
    events = [api.get(f"/events/{event_id}").json() for event_id in ids]
    return [(e["type"], e["payload"]) for e in events]


# --- against a served gateway ------------------------------------------------------------


@pytest.mark.parametrize(("connector", "event_type", "count"), SAMPLES)
def test_send_posts_the_connectors_signed_sample_and_the_gateway_accepts_it(
    start_web: Any, settings: Settings, connector: str, event_type: str, count: int
) -> None:
    url, _ = start_web()
    api = Api(url, settings.admin_token or "")
    group = served_group(api, connector, [event_type])

    result = gateway_send(settings, url, group["id"], "--event", event_type)

    assert result.returncode == 0, result.stdout + result.stderr
    status, answer = answer_of(result)
    assert status == 200
    assert (answer["accepted"], answer["duplicates"], answer["ignored"]) == (count, 0, 0)
    sample = json.loads(sample_delivery(shipped_profiles()[connector], event_type)[0])
    expected = sample["Notifications"] if connector == "xtnd" else [sample]
    assert stored_payloads(api, group["id"]) == [(event_type, p) for p in expected]


def test_send_to_a_group_requiring_a_token_carries_one_of_its_clients(
    start_web: Any, settings: Settings
) -> None:
    url, _ = start_web()
    api = Api(url, settings.admin_token or "")
    group = served_group(api, "xemelgo", ["inventory.cycle_count"])
    api.patch(f"/groups/{group['id']}", json={"require_bearer": True})

    without = gateway_send(settings, url, group["id"], "--event", "inventory.cycle_count")
    api.post(f"/groups/{group['id']}/oauth-clients", json={})
    with_one = gateway_send(settings, url, group["id"], "--event", "inventory.cycle_count")

    assert without.returncode == 1
    assert "has no client to give one to" in without.stderr
    assert with_one.returncode == 0, with_one.stdout + with_one.stderr
    assert answer_of(with_one)[1]["accepted"] == 1


@pytest.mark.parametrize(
    ("connector", "event_type", "content"),
    [
        # a body-typed sender: the type comes from the file's own topic
        (
            "xemelgo",
            None,
            {
                "id": "00000000-0000-4000-8000-00000000f11e",
                "eventTimestamp": 1765579999000,
                "topic": "inventory.moved",
                "data": {"itemId": "inv-test-file-1", "toLocation": {"id": "loc-test-file"}},
            },
        ),
        # a header-typed sender: --event names the type the file is sent as
        ("github", "issues", {"action": "opened", "issue": {"number": 42, "title": "Test"}}),
        # XTND with a file of two notifications of actions that have no sample
        (
            "xtnd",
            None,
            {
                "Id": "f11e0000000000000000000000000001",
                "Attempt": 1,
                "Properties": {"NotificationId": "f11e0000-0000-4000-8000-000000000001"},
                "Notifications": [
                    {"Action": "OfferCreated", "Details": {"OfferNumber": "OFF-TEST-1"}},
                    {"Action": "OfferChanged", "Details": {"OfferNumber": "OFF-TEST-1"}},
                ],
            },
        ),
    ],
)
def test_send_posts_a_file_as_it_is(
    start_web: Any,
    settings: Settings,
    tmp_path: Path,
    connector: str,
    event_type: str | None,
    content: dict[str, Any],
) -> None:
    url, _ = start_web()
    api = Api(url, settings.admin_token or "")
    notifications = content.get("Notifications", [content])
    types = [event_type or n.get("topic") or n.get("Action") for n in notifications]
    group = served_group(api, connector, list(dict.fromkeys(types)))
    file = tmp_path / "payload.json"
    file.write_text(json.dumps(content, indent=2), encoding="utf-8")
    options = ["--event", event_type] if event_type else []

    result = gateway_send(settings, url, group["id"], str(file), *options)

    assert result.returncode == 0, result.stdout + result.stderr
    assert answer_of(result)[0] == 200
    assert stored_payloads(api, group["id"]) == list(zip(types, notifications, strict=True))


def test_a_tampered_or_unsigned_copy_of_a_sent_delivery_is_refused(
    start_web: Any, settings: Settings, recorder: Recorder
) -> None:
    url, _ = start_web()
    api = Api(url, settings.admin_token or "")
    group = served_group(api, "xtnd", ["OrderCreated"])
    sent = gateway_send(
        settings, url, group["id"], "--event", "OrderCreated", "--url", recorder.url
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    (request,) = recorder.requests
    headers = {k: v for k, v in request.headers.items() if k in ("content-type", "ms-signature")}
    tampered = request.body.replace(b'"Quantity": 2', b'"Quantity": 200')
    unsigned = {k: v for k, v in headers.items() if k != "ms-signature"}

    genuine = requests.post(group["callback_url"], data=request.body, headers=headers, timeout=10)
    changed = requests.post(group["callback_url"], data=tampered, headers=headers, timeout=10)
    bare = requests.post(group["callback_url"], data=request.body, headers=unsigned, timeout=10)

    assert tampered != request.body
    assert genuine.status_code == 200
    assert (changed.status_code, changed.json()["error"]["code"]) == (401, "signature_mismatch")
    assert (bare.status_code, bare.json()["error"]["code"]) == (401, "signature_missing")
    assert len(api.get("/events", params={"group_id": group["id"]}).json()["items"]) == 1


def test_a_refusal_is_printed_and_exits_non_zero(start_web: Any, settings: Settings) -> None:
    url, _ = start_web()
    api = Api(url, settings.admin_token or "")
    group = served_group(api, "xemelgo", ["inventory.cycle_count"])
    gone = group["callback_url"]
    assert api.post(f"/groups/{group['id']}/rotate-url").status_code == 200

    result = gateway_send(settings, url, group["id"], "--url", gone)

    assert result.returncode == 1
    status, answer = answer_of(result)
    assert (status, answer["error"]["code"]) == (404, "not_found")


# --- what exactly is sent ---------------------------------------------------------------


class Recorder:
    """An HTTP server on 127.0.0.1 that answers 200 and keeps every request it gets."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        recorded = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k.lower(): v for k, v in self.headers.items()}
                recorded.append(Recorded(self.path, headers, self.rfile.read(length)))
                answer = b'{"accepted": 1, "duplicates": 0, "ignored": 0, "delivery_id": "1"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test looks at the requests themselves."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/recorded"


class Recorded:
    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path = path
        self.headers = headers
        self.body = body


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    thread.join()


@pytest.fixture
def local_group(admin: Any) -> Callable[[str, list[str]], dict[str, Any]]:
    """A group made through the in-process admin API, on the database ``gateway send`` reads."""

    def make(connector: str, events: list[str]) -> dict[str, Any]:
        def call(path: str, body: Any) -> Any:
            response = admin.post(path, body)
            assert response.status_code == 201, response.get_json()
            return response.get_json()

        return make_group(call, connector, events)

    return make


def _hmac(secret: str, content: bytes) -> bytes:
    return hmac.new(secret.encode(), content, hashlib.sha256).digest()


def _stripe_ok(headers: dict[str, str], body: bytes, secret: str) -> bool:
    stripe.WebhookSignature.verify_header(
        body.decode(), headers["stripe-signature"], secret, tolerance=300
    )
    return True


def _standard_ok(headers: dict[str, str], body: bytes, secret: str) -> bool:
    standardwebhooks.Webhook(secret).verify(body, headers)
    return True


def _is_uuid(value: str) -> bool:
    return str(uuid.UUID(value)) == value


SIGNATURES: list[tuple[str, str, Callable[[dict[str, str], bytes, str], bool]]] = [
    # (connector, event type, what its provider's own receiver code would accept)
    (
        "xemelgo",  # sha256= and lower-case hex, as in Xemelgo's verification example
        "inventory.cycle_count",
        lambda h, b, s: h["xemelgo-signature"] == "sha256=" + _hmac(s, b).hex(),
    ),
    (
        "xtnd",  # sha256= and UPPER-case hex, as in XTND's documentation
        "OrderCreated",
        lambda h, b, s: h["ms-signature"] == "sha256=" + _hmac(s, b).hex().upper(),
    ),
    (
        "xilnex",  # HMAC-SHA256 of the raw body
        "Complete Sales",
        lambda h, b, s: h["xilnex-webhook-signature"] == _hmac(s, b).hex(),
    ),
    (
        "generic",  # the API key itself
        "order.created",
        lambda h, b, s: h["x-api-key"] == s,
    ),
    (
        "github",  # X-Hub-Signature-256, the event in X-GitHub-Event, a GUID per delivery
        "push",
        lambda h, b, s: (
            (h["x-hub-signature-256"], h["x-github-event"])
            == ("sha256=" + _hmac(s, b).hex(), "push")
            and _is_uuid(h["x-github-delivery"])
        ),
    ),
    (
        "shopify",  # base64 HMAC, the topic in X-Shopify-Topic
        "orders/create",
        lambda h, b, s: (
            (h["x-shopify-hmac-sha256"], h["x-shopify-topic"])
            == (base64.b64encode(_hmac(s, b)).decode(), "orders/create")
        ),
    ),
    ("stripe", "payment_intent.succeeded", _stripe_ok),  # Stripe's own library verifies it
    ("standard-webhooks", "user.created", _standard_ok),  # the reference library verifies it
]


@pytest.mark.parametrize(("connector", "event_type", "accepted_by"), SIGNATURES)
def test_send_signs_the_sample_as_the_provider_does(
    settings: Settings,
    recorder: Recorder,
    local_group: Any,
    connector: str,
    event_type: str,
    accepted_by: Callable[[dict[str, str], bytes, str], bool],
) -> None:
    group = local_group(connector, [event_type])

    result = gateway_send(settings, "http://127.0.0.1:9", group["id"], "--url", recorder.url)

    assert result.returncode == 0, result.stdout + result.stderr
    (request,) = recorder.requests
    assert request.body == sample_delivery(shipped_profiles()[connector], event_type)[0]
    assert request.headers["content-type"] == "application/json"
    assert accepted_by(request.headers, request.body, SECRETS[connector])


def test_send_reproduces_xtnds_published_signature_vector(
    settings: Settings, recorder: Recorder, admin: Any, tmp_path: Path
) -> None:
    response = admin.post(
        "/groups",
        {
            "name": "Test xtnd vector",
            "connector": "xtnd",
            "function": "backend",
            "events": ["OrderCreated"],
            "secret": "secret123",
        },
    )
    file = tmp_path / "vector.txt"
    file.write_bytes(b"{'test':'test2'}")

    result = gateway_send(
        settings, "http://127.0.0.1:9", response.get_json()["id"], str(file), "--url", recorder.url
    )

    assert result.returncode == 0, result.stdout + result.stderr
    (request,) = recorder.requests
    assert request.body == b"{'test':'test2'}"
    assert request.headers["ms-signature"] == (
        "sha256=25FB6994568A75CD233E04BA1C653AF1BF476041CC543AF04F82CAAC482C201A"
    )


@pytest.mark.parametrize(
    ("connector", "events", "arguments", "message"),
    [
        # a header-typed sender needs to be told which event a file is
        ("github", ["push"], ["FILE"], "give --event TYPE"),
        # an event without a sample cannot be sent without a file
        ("xtnd", ["OrderCreated"], ["--event", "OfferCreated"], "has no sample for event"),
        # a group none of whose events has a sample, and neither --event nor FILE
        ("xemelgo", ["work_order.created"], [], "none of the group's events has a"),
    ],
)
def test_send_explains_what_it_needs_instead_of_failing(
    settings: Settings,
    recorder: Recorder,
    local_group: Any,
    tmp_path: Path,
    connector: str,
    events: list[str],
    arguments: list[str],
    message: str,
) -> None:
    group = local_group(connector, events)
    file = tmp_path / "payload.json"
    file.write_text('{"zen": "Test"}', encoding="utf-8")
    arguments = [str(file) if a == "FILE" else a for a in arguments]

    result = gateway_send(settings, recorder.url, group["id"], *arguments, "--url", recorder.url)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert recorder.requests == []


def test_send_to_an_unknown_group_says_so(settings: Settings, recorder: Recorder) -> None:
    result = gateway_send(settings, recorder.url, "no-such-group", "--url", recorder.url)

    assert result.returncode == 1
    assert "Error: not_found: no webhook group 'no-such-group'" in result.stderr
    assert "Traceback" not in result.stderr
