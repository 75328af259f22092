"""Local receivers for alert messages, started by the tests on 127.0.0.1: an HTTP server for
the webhook and Slack channels, an SMTP server with STARTTLS and a password for email.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from gateway.errors import TransientTargetError
from gateway.targets.base import UpsertResult
from tests.integration.test_worker import ITEM_MAPPING, moved

SMTP_USER = "alerts@example.test"
SMTP_PASSWORD = "smtp-password-" + secrets.token_hex(8)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records every POST; answers ``status``."""

    base_url: str = ""
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
        return list(self.requests)


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.arrived:
                receiver.requests.append(Received(self.path, dict(self.headers), body))
                receiver.arrived.notify_all()
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join()


@dataclass
class SmtpServer:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Message] = field(default_factory=list)
    #: Whether each message came over TLS, from the signed-in user.
    sessions: list[tuple[bool, Any]] = field(default_factory=list)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        self.server.messages.append(message_from_bytes(envelope.content))
        self.server.sessions.append((session.ssl is not None, session.auth_data))
        return "250 Message accepted"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, auth_data=SMTP_USER if ok else None)


class _AnyPortController(Controller):
    """Listens on a port the system picks."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """An SMTP server that requires STARTTLS and a password, its certificate from a local CA
    that the gateway's TLS client is made to trust."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    server = SmtpServer()
    controller = _AnyPortController(
        _Handler(server),
        hostname="127.0.0.1",
        port=0,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
    )
    controller.start()
    server.port = controller.port
    yield server
    controller.stop()


@pytest.fixture
def signing_key() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@pytest.fixture
def channels(
    admin: Any, http_receiver: HttpReceiver, smtp_server: SmtpServer, signing_key: str
) -> dict[str, str]:
    """One channel of each kind, their ids by kind, all pointed at the local receivers."""
    bodies = {
        "webhook": {"url": f"{http_receiver.base_url}/hook", "secret": signing_key},
        "slack": {"url": f"{http_receiver.base_url}/slack"},
        "email": {
            "host": smtp_server.host,
            "port": smtp_server.port,
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "from": "gateway@example.test",
            "to": ["ops@example.test"],
        },
    }
    ids = {}
    for kind, body in bodies.items():
        response = admin.post("/alerts/channels", {"name": f"{kind} channel", "kind": kind, **body})
        assert response.status_code == 201, response.get_json()
        ids[kind] = response.get_json()["id"]
    return ids


@pytest.fixture
def rule_factory(admin: Any) -> Callable[..., dict[str, Any]]:
    """Create a rule through the API; keyword arguments override the defaults."""

    def make(kind: str = "event_dead", **overrides: Any) -> dict[str, Any]:
        body = {"name": f"{kind} rule", "kind": kind, **overrides}
        response = admin.post("/alerts/rules", body)
        assert response.status_code == 201, response.get_json()
        rule: dict[str, Any] = response.get_json()
        return rule

    return make


class SwitchableTarget:
    """A remote CRM stand-in that is down until told otherwise."""

    name = "crm"

    def __init__(self) -> None:
        self.down = True

    def upsert(self, requests: Any) -> list[UpsertResult]:
        if self.down:
            raise TransientTargetError("the target is unreachable")
        return [
            UpsertResult(ok=True, created=True, record_id=f"a{n}") for n, _ in enumerate(requests)
        ]


@pytest.fixture
def crm(gw: Any, monkeypatch: pytest.MonkeyPatch) -> SwitchableTarget:
    target = SwitchableTarget()
    monkeypatch.setattr(gw.targets, "is_local", lambda name: False)
    monkeypatch.setattr(gw.targets, "remote", lambda name: target)
    return target


@pytest.fixture
def xemelgo_group(admin: Any, group_factory: Any) -> dict[str, Any]:
    """A group whose inventory.moved events go to the CRM through a mapping."""
    assert admin.put("/mappings/items", ITEM_MAPPING).status_code == 201
    group = group_factory(events=["inventory.moved"])
    clone = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"], "mapping": "items"},
    )
    assert clone.status_code == 201, clone.get_json()
    return group


@pytest.fixture
def send_moves(deliver: Any, xemelgo_group: dict[str, Any], worker: Any) -> Callable[[int], None]:
    """Deliver ``n`` events and let the worker try each once (``max_attempts`` 1)."""
    worker.settings = worker.settings.with_overrides({"max_attempts": 1})
    sent = itertools.count()

    def send(n: int) -> None:
        events = [moved(f"A-{i}", "Dock", next(sent)) for i in range(n)]
        for event in events:
            response = deliver(xemelgo_group, event)
            assert response.status_code == 200, response.get_json()
        worker.drain()

    return send


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Scene:
    """Everything an end-to-end alert test touches: the gateway, a channel of each kind at the
    local receivers, a CRM that is down, and a group whose events go to it."""

    gw: Any
    admin: Any
    channels: dict[str, str]
    rule: Callable[..., dict[str, Any]]
    send_moves: Callable[[int], None]
    crm: SwitchableTarget
    worker: Any
    http: HttpReceiver
    smtp: SmtpServer

    def received(self) -> dict[str, int]:
        """How many messages each channel's receiver got."""
        return {
            "webhook": len(self.http.at("/hook")),
            "slack": len(self.http.at("/slack")),
            "email": len(self.smtp.messages),
        }


@pytest.fixture
def scene(
    gw: Any,
    admin: Any,
    channels: dict[str, str],
    rule_factory: Callable[..., dict[str, Any]],
    send_moves: Callable[[int], None],
    crm: SwitchableTarget,
    worker: Any,
    http_receiver: HttpReceiver,
    smtp_server: SmtpServer,
) -> Scene:
    return Scene(
        gw, admin, channels, rule_factory, send_moves, crm, worker, http_receiver, smtp_server
    )
