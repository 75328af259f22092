"""The receive endpoint: find the group, verify, parse, store durably, then answer.

Nothing here waits on a target: the sender gets its 200 as soon as the delivery is on disk.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request

from gateway.core import Gateway
from gateway.errors import BadRequest, GatewayError, PayloadTooLarge, StoreUnavailable
from gateway.groups import accepted_secrets, find_by_token
from gateway.inbox import GroupChanged, NewDelivery, Receipt, group_state
from gateway.intake import IncomingEvent, split_delivery
from gateway.metrics import DELIVERIES, EVENTS_RECEIVED, RECEIVE_LATENCY
from gateway.models import Group
from gateway.verify import verify
from gateway.web import error_response, gateway

bp = Blueprint("receive", __name__)

#: Never stored, whatever the connector: they authenticate the sender or the browser.
ALWAYS_REDACTED = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
#: The longest content type a delivery row holds.
MAX_CONTENT_TYPE = 200


#: Tries to store a delivery whose group changes under it before the sender is told to retry.
ATTEMPTS = 3


class GroupCache:
    """Active groups by callback token, so that a delivery needs no read before its write.

    An entry may be stale: each delivery carries the group state it was verified against, and
    the inbox stores it only if that state still holds when it commits.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._groups: dict[str, Group] = {}
        self._limit = limit

    def find(self, gw: Gateway, token: str) -> Group:
        return self._groups.get(token) or self.refresh(gw, token)

    def refresh(self, gw: Gateway, token: str) -> Group:
        """Read the group again; NotFound (and no entry) once it is rotated out or disabled."""
        self._groups.pop(token, None)
        group = find_by_token(gw, token)
        if len(self._groups) >= self._limit:
            self._groups.clear()
        self._groups[token] = group
        return group


@bp.route("/hooks/<token>", methods=["POST", "PUT"])
def receive(token: str) -> Any:
    started = time.perf_counter()
    group_label = "unknown"
    try:
        gw = gateway()
        group = _groups().find(gw, token)
        group_label = group.id
        headers = _headers(gw.settings.max_header_bytes)
        _check_content_type(request.content_type)
        body = _read_body(gw.settings.max_body_bytes)
        receipt = _store(gw, token, group, headers, body)
    except GatewayError as error:
        DELIVERIES.labels(group_label, error.code).inc()
        return error_response(error)
    DELIVERIES.labels(group_label, "accepted").inc()
    for disposition, count in (
        ("accepted", receipt.accepted),
        ("duplicate", receipt.duplicates),
        ("ignored", receipt.ignored),
    ):
        if count:
            EVENTS_RECEIVED.labels(group_label, disposition).inc(count)
    RECEIVE_LATENCY.observe(time.perf_counter() - started)
    return jsonify(
        accepted=receipt.accepted,
        duplicates=receipt.duplicates,
        ignored=receipt.ignored,
        delivery_id=str(receipt.delivery_id),
    )


def _groups() -> GroupCache:
    return current_app.extensions["receive.groups"]  # type: ignore[no-any-return]


def _store(gw: Gateway, token: str, group: Group, headers: dict[str, str], body: bytes) -> Receipt:
    """Verify, parse and store; start over with the group read afresh if it changed meanwhile."""
    for _ in range(ATTEMPTS):
        try:
            return gw.inbox.store(_verified_delivery(gw, group, headers, body))
        except GroupChanged:
            group = _groups().refresh(gw, token)
    raise StoreUnavailable("the webhook group kept changing; retry later")


def _verified_delivery(
    gw: Gateway, group: Group, headers: dict[str, str], body: bytes
) -> NewDelivery:
    profile = gw.connectors.get(group.connector)
    now = datetime.now(UTC)
    verify(profile.verification, accepted_secrets(gw, group, now), headers, body, now.timestamp())
    return NewDelivery(
        group_id=group.id,
        registered_events=frozenset(group.events),
        method=request.method,
        remote_addr=request.remote_addr,
        content_type=request.content_type,
        headers=_stored_headers(headers, profile.verification),
        body=body,
        received_at=now,
        events=_storable(split_delivery(profile, headers, body, request.content_type)),
        group_state=group_state(group),
    )


def _headers(limit: int) -> dict[str, str]:
    """The headers with lower-cased names, read in one pass; 400 if they exceed ``limit``."""
    headers: dict[str, str] = {}
    size = 0
    for name, value in request.headers.items():
        headers[name.lower()] = value
        size += len(name) + len(value) + 4
    if size > limit:
        raise BadRequest(
            f"request headers are {size} bytes; the limit is {limit}", code="headers_too_large"
        )
    return headers


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


def _read_body(limit: int) -> bytes:
    """Read at most ``limit`` bytes; refuse larger bodies before reading them whole."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
    return body


def _credential_headers(spec: Mapping[str, Any]) -> Iterator[str]:
    """Headers that carry the secret itself (API keys, shared secrets) under this scheme."""
    if spec.get("scheme") in ("api-key", "header-secret"):
        yield str(spec["header"]).lower()
    for sub in spec.get("schemes", ()):
        yield from _credential_headers(sub)


def _stored_headers(headers: Mapping[str, str], spec: Mapping[str, Any]) -> dict[str, str]:
    redacted = ALWAYS_REDACTED | set(_credential_headers(spec))
    return {name: value for name, value in headers.items() if name not in redacted}


def init_app(app: Flask) -> None:
    app.extensions["receive.groups"] = GroupCache()
    app.register_blueprint(bp)
