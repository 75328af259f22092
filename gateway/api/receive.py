"""The receive endpoint: find the group, verify, parse, store durably, then answer.

Nothing here waits on a target: the sender gets its 200 as soon as the delivery is on disk.

Callbacks are served by a WSGI layer of their own in front of the Flask app (:class:`Hooks`):
they need none of Flask's request machinery (a request context, routing over every admin route,
response objects), which cost as much CPU per delivery as verifying it and storing it.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.wsgi import get_content_length, get_input_stream

from gateway import views
from gateway.access_tokens import challenge
from gateway.api.openapi import operation
from gateway.config import Settings
from gateway.connectors import Profile
from gateway.content_encoding import decode
from gateway.deliveries import Refusal, RefusalLog
from gateway.errors import (
    BadRequest,
    GatewayError,
    NotFound,
    PayloadTooLarge,
    StoreUnavailable,
    VerificationFailed,
)
from gateway.groups import accepted_secrets, find_by_token
from gateway.http import (
    UNREADABLE_BODY,
    as_gateway_error,
    error_headers,
    http_error,
    unreadable_body,
)
from gateway.intake import IncomingEvent, split_delivery
from gateway.logs import LOGGED_PATH
from gateway.metrics import DELIVERIES, RECEIVE_LATENCY, REFUSALS_UNRECORDED, labelled
from gateway.models import Group
from gateway.oauth_clients import check_bearer
from gateway.services import Gateway
from gateway.storage.inbox import GroupChanged, NewDelivery, Receipt, group_state
from gateway.verify import verify, with_api_key

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

#: Callback URLs: this prefix and the group's token.
PREFIX = "/hooks/"
#: What the access log shows of a callback's path while its token names no group.
UNKNOWN_GROUP_PATH = f"{PREFIX}-"
METHODS = ("POST", "PUT")
ALLOW = "OPTIONS, POST, PUT"
#: Never stored, whatever the connector: headers that carry a reusable credential (a key, a
#: token, a shared secret, a password or a session) of the sender, the browser or a proxy. A
#: name is taken for one when it is listed here or contains one of CREDENTIAL_WORDS.
#: Signature headers (``x-hub-signature-256``, ``stripe-signature``, ``webhook-signature``...)
#: are kept: a signature is good for its own body only, and admins need it to debug rejections.
#: A connector's own key headers are removed besides these (``Profile.credential_headers``).
CREDENTIAL_NAMES = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
CREDENTIAL_WORDS = (
    "token",  # x-auth-token, x-gitlab-token, x-amz-security-token, private-token...
    "secret",  # x-webhook-secret, x-client-secret...
    "password",
    "passwd",
    "session",
    "credential",
    "apikey",
    "api-key",  # api-key, x-goog-api-key...
    "subscription-key",
    "functions-key",
)
#: A name whose last word is one of these names a credential too (x-access-key, x-custom-key,
#: private-key, x-api-auth), unless it is one of NOT_CREDENTIALS.
CREDENTIAL_LAST_WORDS = ("key", "auth")
NOT_CREDENTIALS = frozenset({"idempotency-key", "x-idempotency-key"})


@functools.lru_cache(maxsize=4096)
def is_credential(name: str) -> bool:
    """Whether a header (lower-cased name) may carry a credential; asked once per name."""
    if name in NOT_CREDENTIALS:
        return False
    return (
        name in CREDENTIAL_NAMES
        or any(word in name for word in CREDENTIAL_WORDS)
        or name.rpartition("-")[2] in CREDENTIAL_LAST_WORDS
    )


#: The longest content type a delivery row holds.
MAX_CONTENT_TYPE = 200
#: Built once: ``json.dumps`` with options builds an encoder on every call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
#: Tries to store a delivery whose group changes under it before the sender is told to retry.
ATTEMPTS = 3


#: The refusals that leave a trace (``gateway.deliveries``): the sender's request was wrong.
RECORDED_REFUSALS = frozenset({400, 401})


class Unparseable(BadRequest):
    """A verified delivery its connector's profile cannot parse: refused, and kept."""

    def __init__(self, error: BadRequest, body: bytes) -> None:
        super().__init__(error.message, code=error.code, details=error.details)
        #: The body as parsed: decompressed when it came compressed.
        self.kept = body


@dataclass(frozen=True)
class KnownGroup:
    """A group as its deliveries use it, with what each of them would otherwise recompute."""

    group: Group
    #: The state the inbox checks again at commit (:func:`gateway.storage.inbox.group_state`).
    state: tuple[Any, ...]
    registered: frozenset[str]

    @classmethod
    def of(cls, group: Group) -> KnownGroup:
        return cls(group, group_state(group), frozenset(group.events))


class GroupCache:
    """Active groups by callback token, so that a delivery needs no read before its write.

    An entry may be stale: each delivery carries the group state it was verified against, and
    the inbox stores it only if that state still holds when it commits. A delivery the stale
    entry refuses never reaches that check, so the receive path reads the group again before
    it refuses one (:meth:`Hooks._verified`).
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._groups: dict[str, KnownGroup] = {}
        self._limit = limit

    def find(self, gw: Gateway, token: str) -> tuple[KnownGroup, bool]:
        """The group, and whether it was just read (False: from the cache, perhaps stale)."""
        cached = self._groups.get(token)
        return (cached, False) if cached else (self.refresh(gw, token), True)

    def refresh(self, gw: Gateway, token: str) -> KnownGroup:
        """Read the group again; NotFound (and no entry) once it is rotated out or disabled."""
        self._groups.pop(token, None)
        known = KnownGroup.of(find_by_token(gw, token))
        if len(self._groups) >= self._limit:
            self._groups.clear()
        self._groups[token] = known
        return known


class Hooks:
    """WSGI middleware: ``POST|PUT /hooks/<token>`` here, everything else to the Flask app."""

    def __init__(self, gw: Gateway, app: WSGIApplication) -> None:
        self._gw = gw
        self._app = app
        self._groups = GroupCache()
        self._refusals = RefusalLog(gw.db, gw.settings.refused_per_minute)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self._app(environ, start_response)
        environ[LOGGED_PATH] = UNKNOWN_GROUP_PATH  # the group's id once the token names one
        token = path[len(PREFIX) :]
        if not token or "/" in token:
            return self._app(environ, start_response)  # Flask's 404, as for any unknown path
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "OPTIONS":
            start_response("200 OK", [("Allow", ALLOW), ("Content-Length", "0")])
            return []
        if method in METHODS:
            status, payload, headers = self._receive(environ, _path_text(token))
        else:
            error = http_error(MethodNotAllowed(valid_methods=METHODS))
            status, payload, headers = error.status, _json(error.body()), {"Allow": ALLOW}
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                *headers.items(),
            ],
        )
        return [] if method == "HEAD" else [payload]

    @operation(
        "receive",
        views.Receipt,
        more={
            401: {
                "description": "The signature, timestamp, API key or (where the group requires"
                " one) the OAuth access token is wrong or missing; the expected signature is"
                " never shown.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
            415: {
                "description": "`unsupported_content_encoding`: the body is compressed with a"
                " coding the connector profile does not accept (its `content_encoding`).",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
        errors="400 404 413 503",
        body="DeliveryBody",
        public=True,
        served_at=(PREFIX + "{token}", METHODS),
    )
    def _receive(self, environ: WSGIEnvironment, token: str) -> tuple[int, bytes, dict[str, str]]:
        """Receive a delivery from a provider.

        The body is kept byte for byte and verified as the group's connector signs; its
        content type must be JSON or one the connector profile lists. Signature, timestamp and
        API key headers depend on the connector. A delivery answered 400 or 401 is recorded as
        a refused delivery (`GET /api/v1/deliveries`), its body kept when it was verified, so
        that it can be re-processed once the profile can parse it.
        """
        started = time.perf_counter()
        group: KnownGroup | None = None
        request: _Request | None = None
        fresh = True
        try:
            group, fresh = self._groups.find(self._gw, token)
            environ[LOGGED_PATH] = f"{PREFIX}group:{group.group.id}"
            request = _Request.of(environ, self._gw.settings)
            receipt = self._store(token, request, group, fresh)
        except Exception as exc:
            error = as_gateway_error(exc)
            if not fresh:
                error = self._unless_gone(token, error)
            if group is not None and error.status in RECORDED_REFUSALS:
                error = self._record(group.group, environ, request, error)
            labelled(DELIVERIES, group.group.id if group else "unknown", error.code).inc()
            headers = {**error_headers(error), **challenge(error.code)}
            return error.status, _json(error.body()), headers
        # Stored deliveries and their events are counted by the inbox, once per commit.
        RECEIVE_LATENCY.observe(time.perf_counter() - started)
        return 200, _receipt_json(receipt), {}

    def _record(
        self,
        group: Group,
        environ: WSGIEnvironment,
        request: _Request | None,
        error: GatewayError,
    ) -> GatewayError:
        """Record a refusal; the error to answer with.

        A verified delivery that cannot be kept is answered 503, so that its sender sends it
        again; any other refusal stands whether or not its trace could be written.
        """
        verified = isinstance(error, Unparseable)
        profile = self._gw.connectors.get(group.connector)
        refusal = Refusal(
            group_id=group.id,
            received_at=datetime.now(UTC),
            method=environ.get("REQUEST_METHOD", ""),
            remote_addr=environ.get("REMOTE_ADDR"),
            content_type=request.content_type if request else None,
            headers=_stored_headers(request.headers, profile, group.api_key) if request else {},
            status=error.status,
            error_code=error.code,
            message=error.message,
            verified=verified,
            body=error.kept if isinstance(error, Unparseable) else _body_read(request),
        )
        try:
            self._refusals.record(refusal)
        except Exception as exc:
            if verified:
                return StoreUnavailable("the delivery could not be kept; retry later")
            REFUSALS_UNRECORDED.labels(group.id).inc()
            if not isinstance(exc, StoreUnavailable):  # an outage is logged where it is seen
                log.warning("a refused delivery to group %s was not recorded: %s", group.id, exc)
        return error

    def _unless_gone(self, token: str, error: GatewayError) -> GatewayError:
        """A cached group's refusal stands only if the token still names a group, else 404.

        Saying what else is wrong with a request to a rotated-out, disabled or deleted URL would
        tell whoever holds it that it once worked. A refused signature has read it again already.
        """
        if isinstance(error, NotFound | VerificationFailed) or error.status >= 500:
            return error
        try:
            self._groups.refresh(self._gw, token)
        except NotFound as gone:
            return gone
        except GatewayError:
            pass  # the database cannot say: the refusal itself is still true
        return error

    def _store(self, token: str, request: _Request, group: KnownGroup, fresh: bool) -> Receipt:
        """Verify, parse and store; start over with the group read afresh if it has changed."""
        for _ in range(ATTEMPTS):
            try:
                delivery = self._verified(token, request, group, fresh)
                return self._gw.inbox.store(delivery)
            except GroupChanged:
                group, fresh = self._groups.refresh(self._gw, token), True
        raise StoreUnavailable("the webhook group kept changing; retry later")

    def _verified(
        self, token: str, request: _Request, group: KnownGroup, fresh: bool
    ) -> NewDelivery:
        """Verify against the group; if a cached one refuses, against the group as it is now.

        Only a delivery that reaches the commit tells the cache its group changed; one signed
        with a secret set since would be refused for as long as the entry lives. An unchanged
        group's refusal stands, so a valid delivery never pays for the extra read.
        """
        try:
            return _verified_delivery(self._gw, group, request)
        except VerificationFailed:
            if fresh:
                raise
            current = self._groups.refresh(self._gw, token)
            if current.state == group.state:
                raise
            return _verified_delivery(self._gw, current, request)


def _body_read(request: _Request | None) -> bytes | None:
    return None if request is None else request.body


def _json(body: dict[str, Any]) -> bytes:
    return (_COMPACT_JSON.encode(body) + "\n").encode()


def _receipt_json(receipt: Receipt) -> bytes:
    """What ``_json`` gives for a receipt, without encoding a dict for every delivery."""
    return (
        f'{{"accepted":{receipt.accepted},"duplicates":{receipt.duplicates},'
        f'"ignored":{receipt.ignored},"delivery_id":"{receipt.delivery_id}"}}\n'
    ).encode()


@dataclass(frozen=True)
class _Request:
    """What the endpoint reads of a request, taken from the WSGI environ once."""

    method: str
    remote_addr: str | None
    content_type: str | None
    #: Lower-cased names.
    headers: dict[str, str]
    body: bytes
    query_string: str

    def query(self) -> dict[str, str]:
        """The query parameters, the first value of each: an API key may be one of them."""
        parameters: dict[str, str] = {}
        for name, value in urllib.parse.parse_qsl(self.query_string, keep_blank_values=True):
            parameters.setdefault(name, value)
        return parameters

    @classmethod
    def of(cls, environ: WSGIEnvironment, settings: Settings) -> _Request:
        """Headers, content type and body, each refused with its own error when unfit."""
        content_type = environ.get("CONTENT_TYPE")
        headers = _headers(environ, settings.max_header_bytes)
        _check_content_type(content_type)
        return cls(
            method=environ["REQUEST_METHOD"],
            remote_addr=environ.get("REMOTE_ADDR"),
            content_type=content_type,
            headers=headers,
            body=_read_body(environ, settings.max_body_bytes),
            query_string=environ.get("QUERY_STRING", ""),
        )


def _verified_delivery(gw: Gateway, known: KnownGroup, request: _Request) -> NewDelivery:
    group = known.group
    profile = gw.connectors.get(group.connector, group.connector_version)
    now = datetime.now(UTC)
    headers, body = request.headers, request.body
    signed = body
    if "content-encoding" in headers:  # decompressed to the limit a body is held to
        limit = gw.settings.max_body_bytes
        body = decode(headers["content-encoding"], profile.content_encodings, body, limit)
        signed = request.body if profile.signs_compressed else body
    if group.require_bearer:
        check_bearer(gw, group, headers)
    secrets = accepted_secrets(gw, group, now)
    if secrets or not group.require_bearer:  # a bearer token alone is enough without a secret
        spec = with_api_key(profile.verification, group.api_key)
        verify(spec, secrets, headers, signed, now.timestamp(), query=request.query())
    try:
        events = _storable(split_delivery(profile, headers, body, request.content_type))
    except BadRequest as exc:
        raise Unparseable(exc, body) from exc
    return NewDelivery(
        group_id=group.id,
        registered_events=profile.registered(group.function, known.registered),
        method=request.method,
        remote_addr=request.remote_addr,
        content_type=request.content_type,
        headers=_stored_headers(headers, profile, group.api_key),
        body=body,
        received_at=now,
        events=events,
        group_state=known.state,
        paused=group.paused,
    )


def _headers(environ: WSGIEnvironment, limit: int) -> dict[str, str]:
    """The headers with lower-cased names, read in one pass; 400 if they exceed ``limit``."""
    headers: dict[str, str] = {}
    size = 0
    for key, value in environ.items():
        name = _header_name(key)
        if name and (value or key not in _UNPREFIXED_HEADERS):
            headers[name] = value
            size += len(name) + len(value) + 4
    if size > limit:
        raise BadRequest(
            f"request headers are {size} bytes; the limit is {limit}", code="headers_too_large"
        )
    return headers


@functools.lru_cache(maxsize=4096)
def _header_name(key: str) -> str:
    """The lower-cased header name an environ key carries, or "" for any other key.

    Asked once per key: a request's environ holds some 30 keys, and working out each name
    again for every request took 1.6 of the 4.4 us reading its headers cost.
    """
    if key.startswith("HTTP_") and key not in _SHADOWED_HEADERS:
        return key[5:].replace("_", "-").lower()
    if key in _UNPREFIXED_HEADERS:
        return key.replace("_", "-").lower()
    return ""


#: The two headers WSGI passes without the ``HTTP_`` prefix (as werkzeug reads them, the
#: prefixed copies some servers add too are ignored).
_UNPREFIXED_HEADERS = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})
_SHADOWED_HEADERS = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})


def _check_content_type(content_type: str | None) -> None:
    """Refuse a content type the deliveries table cannot hold (PostgreSQL: 200 characters)."""
    if content_type and (len(content_type) > MAX_CONTENT_TYPE or "\x00" in content_type):
        raise BadRequest(
            f"the content type must be at most {MAX_CONTENT_TYPE} characters, without NUL",
            code="unsupported_content_type",
        )


def _storable(events: list[IncomingEvent]) -> list[IncomingEvent]:
    """Refuse a NUL character in an event's type or id: PostgreSQL text cannot hold it."""
    if any("\x00" in event.type or "\x00" in event.dedupe_key for event in events):
        raise BadRequest(
            "an event's type or id contains the NUL character (\\u0000)", code="invalid_payload"
        )
    return events


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """Read at most ``limit`` bytes; refuse larger bodies before reading them whole."""
    declared = get_content_length(environ)
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    body = _read_input(environ, limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
    if declared is not None and len(body) < declared:
        raise BadRequest(
            f"the request body ended after {len(body)} of its {declared} bytes",
            code="body_incomplete",
        )
    return body


def _read_input(environ: WSGIEnvironment, size: int) -> bytes:
    """Read the body, refusing one the server cannot read whole as the sender's fault (400)."""
    try:
        body: bytes = get_input_stream(environ).read(size)
    except UNREADABLE_BODY as exc:
        raise unreadable_body(exc) from exc
    return body


def _path_text(token: str) -> str:
    """A path segment as text: WSGI hands paths over as UTF-8 bytes decoded as Latin-1."""
    return token.encode("latin-1").decode("utf-8", "replace")


def _stored_headers(
    headers: Mapping[str, str], profile: Profile, api_key: Mapping[str, str] | None
) -> dict[str, str]:
    redacted = profile.credential_headers
    if api_key and "header" in api_key:
        redacted = redacted | {api_key["header"].lower()}
    return {
        name: value
        for name, value in headers.items()
        if not is_credential(name) and name not in redacted
    }


def init_app(app: Flask) -> None:
    app.wsgi_app = Hooks(app.extensions["gateway"], app.wsgi_app)  # type: ignore[method-assign]
