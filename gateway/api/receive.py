"""The receive endpoint: find the group, verify, parse, store durably, then answer.

Nothing here waits on a target: the sender gets its 200 as soon as the delivery is on disk.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, jsonify, request

from gateway.errors import BadRequest, GatewayError, PayloadTooLarge
from gateway.groups import accepted_secrets, find_by_token
from gateway.inbox import NewDelivery
from gateway.intake import IncomingEvent, split_delivery
from gateway.metrics import DELIVERIES, EVENTS_RECEIVED, RECEIVE_LATENCY
from gateway.verify import verify
from gateway.web import error_response, gateway

bp = Blueprint("receive", __name__)

#: Never stored, whatever the connector: they authenticate the sender or the browser.
ALWAYS_REDACTED = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
#: The longest content type a delivery row holds.
MAX_CONTENT_TYPE = 200


@bp.route("/hooks/<token>", methods=["POST", "PUT"])
def receive(token: str) -> Any:
    started = time.perf_counter()
    group_label = "unknown"
    try:
        gw = gateway()
        group = find_by_token(gw, token)
        group_label = group.id
        _check_header_size(gw.settings.max_header_bytes)
        _check_content_type(request.content_type)
        body = _read_body(gw.settings.max_body_bytes)
        profile = gw.connectors.get(group.connector)
        headers = {name.lower(): value for name, value in request.headers.items()}
        now = datetime.now(UTC)
        verify(
            profile.verification, accepted_secrets(gw, group, now), headers, body, now.timestamp()
        )
        events = _storable(split_delivery(profile, headers, body, request.content_type))
        receipt = gw.inbox.store(
            NewDelivery(
                group_id=group.id,
                registered_events=frozenset(group.events),
                method=request.method,
                remote_addr=request.remote_addr,
                content_type=request.content_type,
                headers=_stored_headers(headers, profile.verification),
                body=body,
                received_at=now,
                events=events,
            )
        )
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


def _check_header_size(limit: int) -> None:
    size = sum(len(name) + len(value) + 4 for name, value in request.headers.items())
    if size > limit:
        raise BadRequest(
            f"request headers are {size} bytes; the limit is {limit}", code="headers_too_large"
        )


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
    app.register_blueprint(bp)
