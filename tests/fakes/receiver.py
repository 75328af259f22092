"""A webhook receiver on ``https://127.0.0.1:<port>``, for the HTTP target's tests.

It keeps every request it gets, answers with scripted statuses when told to, checks the
credentials of whichever auth mode it is set up for, and issues OAuth 2.0 client-credentials
tokens at ``/oauth/token``. Standard Webhooks signatures are checked by the ``standardwebhooks``
library, as a real receiver would.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.fakes.tls import Handshaking, LoopbackTls

TOKEN_PATH = "/oauth/token"


@dataclass(frozen=True)
class Received:
    """One request the receiver took, as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Answer:
    """A scripted answer to the next data request."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    #: Answer nothing until the receiver stops, as a receiver that hangs does.
    hang: bool = False


class FakeReceiver(LoopbackTls):
    """Start it with ``with``; set ``auth`` and its credentials before the first request."""

    def __init__(self) -> None:
        #: ``none``, ``bearer``, ``basic``, ``oauth2`` or ``standard_webhooks``.
        self.auth = "none"
        self.bearer_token = "fake-bearer-" + secrets.token_hex(8)
        self.username, self.password = "gateway", "fake-password-" + secrets.token_hex(8)
        self.client_id, self.client_secret = "fake-client", "fake-secret-" + secrets.token_hex(8)
        self.signing_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        #: Data requests accepted, in the order they arrived.
        self.received: list[Received] = []
        #: Data requests with good credentials, answered as scripted or accepted.
        self.attempts: list[Received] = []
        #: Requests refused for their credentials, and token requests made.
        self.refused = 0
        self.token_requests = 0
        self._tokens: set[str] = set()
        self._answers: deque[Answer] = deque()
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        super().__init__(_handler_for(self), "fake-receiver")

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    def answer_next(self, *answers: Answer) -> None:
        """Answer the next data requests so, in order, before answering normally again."""
        self._answers.extend(answers)

    def revoke_tokens(self) -> None:
        """Forget the tokens issued, as when they expire early on the receiver's side."""
        self._tokens.clear()

    def env(self, prefix: str = "HTTP_") -> dict[str, str]:
        """The variables of an HTTP target sending here with the receiver's auth mode."""
        per_mode = {
            "none": {},
            "bearer": {"TOKEN": self.bearer_token},
            "basic": {"USERNAME": self.username, "PASSWORD": self.password},
            "oauth2": {
                "TOKEN_URL": self.origin + TOKEN_PATH,
                "CLIENT_ID": self.client_id,
                "CLIENT_SECRET": self.client_secret,
            },
            "standard_webhooks": {"SIGNING_SECRET": self.signing_secret},
        }
        values = {"URL": self.origin, "CA_BUNDLE": self.ca_path, "AUTH": self.auth}
        return {prefix + name: value for name, value in {**values, **per_mode[self.auth]}.items()}

    # -- the server's side ---------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if path == TOKEN_PATH:
            return self._token(headers, body)
        with self._lock:
            if not self._authorized(headers, body):
                self.refused += 1
                return Answer(401, '{"error": "unauthorized"}')
            request = Received(method, path, headers, json.loads(body))
            self.attempts.append(request)
            if self._answers:
                return self._answers.popleft()
            self.received.append(request)
            created = path not in self._seen
            self._seen.add(path)
            return Answer(201 if created else 200, json.dumps({"id": f"r-{len(self._seen)}"}))

    def _authorized(self, headers: dict[str, str], body: bytes) -> bool:
        given = headers.get("authorization", "")
        if self.auth == "bearer":
            return given == f"Bearer {self.bearer_token}"
        if self.auth == "basic":
            return given == _basic(self.username, self.password)
        if self.auth == "oauth2":
            return given.removeprefix("Bearer ") in self._tokens
        if self.auth == "standard_webhooks":
            try:
                Webhook(self.signing_secret).verify(body, headers)
            except WebhookVerificationError:
                return False
        return True

    def _token(self, headers: dict[str, str], body: bytes) -> Answer:
        with self._lock:
            self.token_requests += 1
            form = dict(part.split("=", 1) for part in body.decode().split("&") if part)
            if headers.get("authorization") != _basic(self.client_id, self.client_secret):
                return Answer(401, '{"error": "invalid_client"}')
            if form.get("grant_type") != "client_credentials":
                return Answer(400, '{"error": "unsupported_grant_type"}')
            token = secrets.token_urlsafe(16)
            self._tokens.add(token)
            answer = {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
            return Answer(200, json.dumps(answer))


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _handler_for(receiver: FakeReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(Handshaking):
        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = receiver.handle(self.command, self.path, headers, body)
            if answer.hang:
                receiver._stopping.wait()
                return
            data = answer.body.encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
