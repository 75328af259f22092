"""Deliveries as received: refusals recorded within a bound, the list, and re-processing.

The receive path stores accepted deliveries itself (``gateway.storage.inbox``); a refused one
(400, 401) to a known group is recorded here, off that path. Its body is kept only when the
request was verified (a valid signature, or a group that asks for none): then the admin can fix
the profile or the group and re-process it. Unverified refusals could come from anyone, so each
group records at most ``GATEWAY_REFUSED_PER_MINUTE`` of them a minute, and counts the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, insert, select
from sqlalchemy.orm import Session

from gateway.errors import BadRequest, Conflict, Detail, NotFound, ValidationFailed
from gateway.event_log import parse_numeric_id, parse_time
from gateway.intake import split_delivery
from gateway.metrics import REFUSALS_UNRECORDED
from gateway.models import Delivery, DeliveryOutcome, Event, EventStatus, Group
from gateway.services import Gateway
from gateway.storage import Storage
from gateway.storage.inbox import NewDelivery, Receipt, event_row, insert_new_events

#: The first key of the advisory locks that line up the refusals recorded for one group.
REFUSAL_RECORDS = 2
#: How much of an unverified refusal's headers (names and values) is kept.
UNVERIFIED_HEADER_CHARS = 2048
FILTERS = ("group_id", "outcome", "status", "since", "until")
OUTCOMES = frozenset(o.value for o in DeliveryOutcome)


@dataclass(frozen=True)
class Refusal:
    """A refused request to a known group, as it is recorded."""

    group_id: str
    received_at: datetime
    method: str
    remote_addr: str | None
    #: None when the request's own could not be stored.
    content_type: str | None
    #: Credentials removed.
    headers: dict[str, str]
    status: int
    error_code: str
    message: str
    #: Whether it passed verification: then its body is kept.
    verified: bool
    #: What was read of the body; None when the refusal came before it was read.
    body: bytes | None


class RefusalLog:
    """Records refusals, unverified ones at most ``per_minute`` per group and UTC minute.

    The database's count is the bound, taken with the group's refusals lined up, so that
    processes and hosts share it; each process also remembers what it saw, so that a flood of
    unverified requests past the bound costs no write at all.
    """

    def __init__(self, db: Storage, per_minute: int) -> None:
        self._db = db
        self._per_minute = per_minute
        #: Per group: the minute last recorded in, and how many were recorded in it.
        self._recorded: dict[str, tuple[datetime, int]] = {}

    def record(self, refusal: Refusal) -> int | None:
        """Store a refusal; its delivery id, or None when the bound left it out.

        Raises StoreUnavailable when the database cannot take it.
        """
        minute = refusal.received_at.replace(second=0, microsecond=0)
        if not refusal.verified and self._full(refusal.group_id, minute):
            REFUSALS_UNRECORDED.labels(refusal.group_id).inc()
            return None
        with self._db.session() as session:
            if not refusal.verified:
                self._db.line_up(session, REFUSAL_RECORDS, refusal.group_id)
                recorded = session.scalar(_unverified_in(refusal.group_id, minute)) or 0
                if recorded >= self._per_minute:
                    self._recorded[refusal.group_id] = (minute, recorded)
                    REFUSALS_UNRECORDED.labels(refusal.group_id).inc()
                    return None
            row = _refused_row(refusal)
            session.add(row)
            session.flush()
            delivery_id = row.id
        if not refusal.verified:
            at, count = self._recorded.get(refusal.group_id, (minute, 0))
            self._recorded[refusal.group_id] = (minute, count + 1 if at == minute else 1)
        return delivery_id

    def _full(self, group_id: str, minute: datetime) -> bool:
        """Whether this process alone has recorded the whole bound of ``minute`` already."""
        at, count = self._recorded.get(group_id, (None, 0))
        return at == minute and count >= self._per_minute


def _unverified_in(group_id: str, minute: datetime) -> Any:
    """The group's unverified refusals in ``minute`` (through the partial index of refusals)."""
    return select(func.count()).where(
        Delivery.group_id == group_id,
        Delivery.outcome == DeliveryOutcome.REFUSED,
        Delivery.received_at >= minute,
        Delivery.received_at < minute + timedelta(minutes=1),
        Delivery.verified.is_(False),
    )


def _refused_row(refusal: Refusal) -> Delivery:
    body = refusal.body
    headers = refusal.headers if refusal.verified else _trimmed(refusal.headers)
    return Delivery(
        group_id=refusal.group_id,
        received_at=refusal.received_at,
        remote_addr=refusal.remote_addr,
        method=refusal.method,
        content_type=refusal.content_type,
        headers=headers,
        body=body if refusal.verified else None,
        outcome=DeliveryOutcome.REFUSED,
        status=refusal.status,
        verified=refusal.verified,
        error_code=refusal.error_code,
        message=refusal.message,
        size=None if body is None else len(body),
        sha256=None if body is None else hashlib.sha256(body).hexdigest(),
    )


def _trimmed(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers in order, within UNVERIFIED_HEADER_CHARS: the last one kept is cut short,
    and any after it left out. Enough to tell a misconfigured sender; not a store for anyone's
    16 KiB of padding."""
    kept: dict[str, str] = {}
    room = UNVERIFIED_HEADER_CHARS
    for name, value in headers.items():
        if len(name) >= room:
            break
        kept[name] = value[: room - len(name)]
        room -= len(name) + len(kept[name])
    return kept


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryInfo:
    """A delivery without its body: what lists and pages show."""

    id: int
    group_id: str
    outcome: str
    status: int
    error_code: str | None
    message: str | None
    verified: bool
    received_at: datetime
    size: int | None
    sha256: str | None
    body_stored: bool
    content_type: str | None
    method: str
    remote_addr: str | None
    headers: dict[str, Any]
    reprocessed_at: datetime | None


def _info_columns(db: Storage) -> tuple[Any, ...]:
    """Size and digest of an accepted row from its body, which the receive path alone wrote."""
    return (
        Delivery.id,
        Delivery.group_id,
        Delivery.outcome,
        Delivery.status,
        Delivery.error_code,
        Delivery.message,
        Delivery.verified,
        Delivery.received_at,
        func.coalesce(Delivery.size, func.length(Delivery.body)).label("size"),
        func.coalesce(Delivery.sha256, db.sha256_hex(Delivery.body)).label("sha256"),
        Delivery.body.is_not(None).label("body_stored"),
        Delivery.content_type,
        Delivery.method,
        Delivery.remote_addr,
        Delivery.headers,
        Delivery.reprocessed_at,
    )


def _info(row: Row[Any]) -> DeliveryInfo:
    return DeliveryInfo(**row._mapping)


def parse_delivery_id(value: Any) -> int:
    return parse_numeric_id(value, "delivery")


def list_deliveries(
    gw: Gateway, filters: Mapping[str, Any], limit: int, before: int | None
) -> list[DeliveryInfo]:
    """Newest first: up to ``limit`` deliveries of ids below ``before``."""
    query = select(*_info_columns(gw.db))
    if filters.get("group_id"):
        query = query.where(Delivery.group_id == filters["group_id"])
    if filters.get("outcome"):
        query = query.where(Delivery.outcome == _outcome(filters["outcome"]))
    if filters.get("status"):
        query = query.where(Delivery.status == _status(filters["status"]))
    if filters.get("since"):
        query = query.where(Delivery.received_at >= parse_time(filters["since"], "since"))
    if filters.get("until"):
        query = query.where(Delivery.received_at < parse_time(filters["until"], "until"))
    if before is not None:
        query = query.where(Delivery.id < before)
    with gw.db.read_session() as session:
        rows = session.execute(query.order_by(Delivery.id.desc()).limit(limit))
        return [_info(row) for row in rows]


def _outcome(value: str) -> str:
    if value not in OUTCOMES:
        raise ValidationFailed(
            f"unknown outcome {value!r}",
            details=[Detail("outcome", f"choose from {', '.join(sorted(OUTCOMES))}")],
        )
    return value


def _status(value: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) == 3):
        raise ValidationFailed(
            f"status {value!r} is not an HTTP status",
            details=[Detail("status", "an HTTP status such as 400 or 401")],
        )
    return int(value)


def delivery_key(delivery: DeliveryInfo) -> int:
    """A delivery's place in the newest-first list: its id."""
    return delivery.id


def get_delivery(gw: Gateway, delivery_id: Any) -> DeliveryInfo:
    key = parse_delivery_id(delivery_id)
    with gw.db.read_session() as session:
        row = session.execute(select(*_info_columns(gw.db)).where(Delivery.id == key)).first()
    if row is None:
        raise NotFound.of("delivery", key)
    return _info(row)


def get_body(gw: Gateway, delivery_id: Any) -> tuple[bytes, str | None]:
    """The stored body exactly as received, and its content type."""
    key = parse_delivery_id(delivery_id)
    with gw.db.read_session() as session:
        row = session.execute(
            select(Delivery.body, Delivery.content_type).where(Delivery.id == key)
        ).first()
    if row is None:
        raise NotFound.of("delivery", key)
    body, content_type = row
    if body is None:
        raise NotFound(
            f"delivery {key} has no stored body: it was refused before it was verified",
            code="body_not_stored",
        )
    return body, content_type


# --- re-processing -------------------------------------------------------------------------


def reprocess(gw: Gateway, delivery_id: Any) -> Receipt:
    """Run a refused delivery through intake again with today's profile and group.

    The delivery is locked for the transaction and accepted in it, so that it gives its events
    once however many calls race: a later one finds it accepted already.
    """
    key = parse_delivery_id(delivery_id)
    with gw.db.session() as session:
        delivery = session.get(Delivery, key, with_for_update=True)
        if delivery is None:
            raise NotFound.of("delivery", key)
        body = _reprocessable(delivery)
        group = session.get(Group, delivery.group_id)
        if group is None or not group.active:
            state = "deleted" if group is None else "disabled"
            raise Conflict(
                f"delivery {key}'s group {delivery.group_id} is {state}", code="group_unavailable"
            )
        profile = gw.connectors.get(group.connector)
        try:
            events = split_delivery(profile, delivery.headers, body, delivery.content_type)
        except BadRequest as exc:
            raise ValidationFailed(
                f"delivery {key} still cannot be parsed as connector {group.connector!r}"
                f" delivers: {exc.message}",
                code="still_invalid",
            ) from exc
        again = NewDelivery(
            group_id=group.id,
            registered_events=frozenset(group.events),
            method=delivery.method,
            remote_addr=delivery.remote_addr,
            content_type=delivery.content_type,
            headers=delivery.headers,
            body=body,
            received_at=gw.db.now(session),
            events=events,
            paused=group.paused,
        )
        receipt = _insert_events(gw.db, session, again, key)
        delivery.outcome = DeliveryOutcome.ACCEPTED
        delivery.reprocessed_at = again.received_at
    return receipt


def _reprocessable(delivery: Delivery) -> bytes:
    """The delivery's body, if it is a refused one that kept it."""
    if delivery.outcome != DeliveryOutcome.REFUSED:
        when = "re-processed" if delivery.reprocessed_at else "accepted"
        raise Conflict(
            f"delivery {delivery.id} was {when} already: its events exist",
            code="already_accepted",
        )
    if delivery.body is None:
        raise Conflict(
            f"delivery {delivery.id} has no stored body: it was refused ({delivery.error_code})"
            " before it was verified, so only its sender can send it again",
            code="body_not_stored",
        )
    return delivery.body


def _insert_events(
    db: Storage, session: Session, delivery: NewDelivery, delivery_id: int
) -> Receipt:
    """Insert the events as the receive path does: those whose key is taken as duplicates."""
    taken = dict.fromkeys(
        (EventStatus.PENDING, EventStatus.HELD, EventStatus.IGNORED, EventStatus.DUPLICATE), 0
    )
    new_events = insert_new_events(db)
    for incoming in delivery.events:
        row = event_row(delivery, delivery_id, incoming, due=delivery.received_at)
        if not session.execute(new_events.values(row)).rowcount:  # type: ignore[attr-defined]
            row.update(status=EventStatus.DUPLICATE, next_attempt_at=None)
            session.execute(insert(Event).values(row))
        taken[row["status"]] += 1
    return Receipt(
        delivery_id,
        accepted=taken[EventStatus.PENDING] + taken[EventStatus.HELD],
        duplicates=taken[EventStatus.DUPLICATE],
        ignored=taken[EventStatus.IGNORED],
    )
