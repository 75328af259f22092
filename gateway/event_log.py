"""The event log: what came in, what happened to it, and replaying it."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, Text, cast, func, or_, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from gateway.connectors import subscribes
from gateway.errors import BadRequest, Conflict, Detail, NotFound, ValidationFailed
from gateway.mapping import event_context
from gateway.models import Delivery, Event, EventResult, EventStatus, Group, iso
from gateway.services import Gateway

STATUSES = frozenset(s.value for s in EventStatus)
#: Events a worker holds or that were never meant to run cannot be replayed.
NOT_REPLAYABLE = (EventStatus.DUPLICATE, EventStatus.PROCESSING)
#: Events a replay locks or changes per statement.
CHANGED_AT_ONCE = 500

#: A SELECT of any columns; filtering keeps what it selects.
_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


#: A time of day, a space, and an offset's ``HH:MM`` or ``HHMM``: the space can only be the
#: ``+`` of an offset left unencoded in a URL's query (``T10:00:00+08:00``), which decodes as one.
_DECODED_PLUS = re.compile(
    r"(?P<time>[T ]\d\d:?\d\d(?::?\d\d(?:[.,]\d+)?)?) (?P<offset>\d\d:?\d\d)$"
)


def parse_time(value: str, name: str) -> datetime:
    """An ISO 8601 time, in UTC (SQLite compares times by their wall clock, whatever their
    offset); a ``+`` decoded as a space is a ``+``; no offset is UTC."""
    restored = _DECODED_PLUS.sub(r"\g<time>+\g<offset>", value)
    try:
        parsed = datetime.fromisoformat(restored.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed(
            f"{name} is not an ISO 8601 time", details=[Detail(name, f"cannot parse {value!r}")]
        ) from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # An offset carries a time at the calendar's edge past it in UTC (year 1 at +01:00,
        # year 9999 at -01:00): still before, or after, every time stored.
        ahead = (parsed.utcoffset() or timedelta()) > timedelta()
        return (datetime.min if ahead else datetime.max).replace(tzinfo=UTC)


def parse_event_id(value: Any) -> int:
    return parse_numeric_id(value, "event")


def parse_numeric_id(value: Any, kind: str) -> int:
    """An id the database counts up; anything else names no ``kind`` (404)."""
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise NotFound.of(kind, text)
    return int(text)


def filtered(
    query: _Query, filters: Mapping[str, Any], *, unindexed: Collection[str] = ()
) -> _Query:
    """Apply the event log's filters (group_id, type, status, since, until, contains); the
    columns named in ``unindexed`` are compared so that SQLite looks none of them up in an
    index."""
    column = partial(_column, unindexed=unindexed)
    if filters.get("group_id"):
        query = query.where(column("group_id") == filters["group_id"])
    if filters.get("type"):
        query = query.where(column("type") == filters["type"])
    statuses = _statuses(filters.get("status") or ())
    if statuses:
        query = query.where(column("status").in_(statuses))
    if filters.get("since"):
        query = query.where(column("received_at") >= parse_time(filters["since"], "since"))
    if filters.get("until"):
        query = query.where(column("received_at") < parse_time(filters["until"], "until"))
    if filters.get("contains"):
        query = query.where(json_holds(Event.payload, filters["contains"]))
    return query


def json_holds(
    column: ColumnElement[Any] | QueryableAttribute[Any], text: str
) -> ColumnElement[bool]:
    """Whether the JSON in ``column`` holds ``text`` in a key or a value, ignoring case.

    Stored JSON keeps non-ASCII characters as they came or escaped (``\\u00e9``): both forms
    are looked for.
    """
    stored = func.lower(cast(column, Text))
    needles = dict.fromkeys([text.lower(), json.dumps(text.lower())[1:-1]])
    return or_(*(stored.contains(needle, autoescape=True) for needle in needles))


def _statuses(given: str | Iterable[str]) -> list[str]:
    """The statuses a filter names: a text of them comma-separated, or several such texts (a
    repeated query parameter, a JSON list), meaning all of them."""
    texts = [given] if isinstance(given, str) else given
    statuses = [s.strip() for text in texts for s in text.split(",") if s.strip()]
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise ValidationFailed(
            f"unknown status {', '.join(unknown)}",
            details=[Detail("status", f"choose from {', '.join(sorted(STATUSES))}")],
        )
    return statuses


def _column(name: str, unindexed: Collection[str]) -> ColumnElement[Any]:
    column: ColumnElement[Any] = Event.__table__.c[name]
    return _Unindexed(column) if name in unindexed else column


class _Unindexed(ColumnElement[Any]):
    """A column as SQLite must not look it up in an index (``+column``), to choose for it
    which index a query walks: it has no statistics to choose well. Elsewhere, the column."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(_Unindexed)
def _as_it_is(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(_Unindexed, "sqlite")
def _unary_plus(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


def list_events(
    gw: Gateway, filters: Mapping[str, Any], limit: int, before: int | None
) -> list[Event]:
    """Newest first: up to ``limit`` events of ids below ``before``.

    Each filter but the time window has an index that lists its events newest first, so a walk
    down one reads about a page. The window's index is in time order, which ids follow only
    closely: when a walk would pass more events to reach the window than it holds, every id
    of the window is read through that index instead, and the newest kept.
    """
    with gw.db.read_session() as session:
        window = _window_is_shorter(session, filters, before)
        unindexed = ("group_id", "type", "status", "id") if window else ("received_at",)
        ids = filtered(select(Event.id), filters, unindexed=unindexed)
        if before is not None:
            ids = ids.where(_column("id", unindexed) < before)
        # PostgreSQL would walk the primary key down to an old window, not knowing that ids
        # follow times: ordered by an expression, it reads the window instead.
        newest = (Event.id + 0).desc() if window else Event.id.desc()
        # The ids first: a window's are sorted from its index alone, not with their rows.
        page = list(session.scalars(ids.order_by(newest).limit(limit)))
        rows = select(Event).where(Event.id.in_(page)).order_by(Event.id.desc())
        return list(session.scalars(rows))


def _window_is_shorter(session: Session, filters: Mapping[str, Any], before: int | None) -> bool:
    """Whether the ``since``/``until`` window holds fewer events than lie above it (newer than
    ``until``, older than ``before``): those a newest-first walk passes before it.

    Ids rise with ``received_at`` closely but not strictly (deliveries stored out of the order
    they came in, clocks of several hosts), so the first id received at each bound, found at
    once in the ``received_at`` index, tells both counts roughly: enough to choose how to read
    a page, which never changes what the page holds.
    """
    if not filters.get("until"):
        return False  # the window reaches the newest events: a walk is in it at once
    top = before if before is not None else _next_id(session, func.max(Event.id))
    end = min(top, _first_received(session, parse_time(filters["until"], "until")) or top)
    start = None
    if filters.get("since"):
        start = _first_received(session, parse_time(filters["since"], "since"))
    if start is None:
        start = _next_id(session, func.min(Event.id)) - 1
    return end - start < top - end


def _first_received(session: Session, moment: datetime) -> int | None:
    """The id of the first event received at or after ``moment``; None if none was."""
    query = select(Event.id).where(Event.received_at >= moment).order_by(Event.received_at)
    return session.scalar(query.limit(1))


def _next_id(session: Session, extreme: Any) -> int:
    return int(session.scalar(select(extreme)) or 0) + 1


def event_key(event: Event) -> int:
    """An event's place in the newest-first log: its id, which only falls along the log."""
    return event.id


def get_event(gw: Gateway, event_id: Any) -> tuple[Event, Delivery | None, list[EventResult]]:
    key = parse_event_id(event_id)
    with gw.db.read_session() as session:
        event = session.get(Event, key)
        if event is None:
            raise NotFound.of("event", key)
        delivery = session.get(Delivery, event.delivery_id)
        history = list(
            session.scalars(
                select(EventResult).where(EventResult.event_id == key).order_by(EventResult.id)
            )
        )
    return event, delivery, history


def mapping_context(event: Event, group: Group | None) -> dict[str, Any]:
    """A stored event as its mappings and filters see it (MAPPINGS.md), the same wherever it
    is evaluated, so a preview or a later look shows what processing made of it.

    A deleted group leaves its connector and function unknown: empty, and ``group`` null.
    """
    return event_context(
        event.payload,
        id=str(event.id),
        type=event.type,
        received_at=iso(event.received_at) or "",
        group_id=event.group_id,
        connector=group.connector if group else "",
        function=group.function if group else "",
        group=group_fields(group),
    )


def group_fields(group: Group | None) -> dict[str, Any] | None:
    """``event.group`` in the mapping context: the group's name and external id, or null."""
    return None if group is None else {"name": group.name, "external_id": group.external_id}


@dataclass(frozen=True)
class Replayed:
    """What a replay did: how many events it took again, and how many of them stay ignored."""

    replayed: int
    #: Events whose group still does not register their type: ignored, as on receipt.
    ignored: int
    #: Events the filters matched: all of them taken again, unless a worker claimed some since,
    #: or the replay was a dry run.
    matched: int = 0
    dry_run: bool = False
    #: Events whose group is paused: held again, as on receipt, until it is resumed.
    held: int = 0


def replay(gw: Gateway, event_id: Any) -> Event:
    key = parse_event_id(event_id)
    with gw.db.session() as session:
        event = session.get(Event, key)
        if event is None:
            raise NotFound.of("event", key)
        if event.status in NOT_REPLAYABLE:
            raise _not_now(event)
        taken = _redecide(
            session, [(event.id, event.group_id, event.type)], gw.db.now(session)
        ).replayed
        session.refresh(event)
        if not taken:  # a worker claimed it since it was read
            raise _not_now(event)
    return event


def _not_now(event: Event) -> Conflict:
    return Conflict(f"event {event.id} is {event.status} and cannot be replayed now")


#: The filters a replay of many events takes; without any, it needs ``all``.
REPLAY_FILTERS = ("group_id", "type", "status", "since", "until", "contains")
#: Statuses that never meant something went wrong: a replay takes such events only when its
#: status filter names them (an ``ignored`` event replayed after its group was deleted fails).
NEVER_ERRORS = (
    EventStatus.DELIVERED,
    EventStatus.IGNORED,
    EventStatus.DUPLICATE,
    EventStatus.STALE,
)
#: Those, and held events: they wait for their paused group, and a replay holds them again.
TAKEN_WHEN_NAMED = (*NEVER_ERRORS, EventStatus.HELD)


def replay_matching(
    gw: Gateway,
    filters: Mapping[str, Any],
    limit: int | None = None,
    *,
    every_event: bool = False,
    dry_run: bool = False,
) -> Replayed:
    """Take every event matching ``filters`` again, as :func:`replay` takes one.

    No filter at all matches the whole log, so only with ``every_event``; events whose status
    never meant an error are taken only when ``filters`` names their status. A ``dry_run``
    counts the events matched and changes none.
    """
    if not any(filters.get(name) for name in REPLAY_FILTERS) and not every_event:
        raise BadRequest(
            "a replay without any filter would take every event of the log: give a filter"
            f' ({", ".join(REPLAY_FILTERS)}), or ask for every event ("all": true, or --all)',
            code="replay_needs_filter",
        )
    query = filtered(select(Event.id, Event.group_id, Event.type), filters).where(
        Event.status.not_in(NOT_REPLAYABLE)
    )
    if not filters.get("status"):
        query = query.where(Event.status.not_in(TAKEN_WHEN_NAMED))
    if limit:
        query = query.order_by(Event.id).limit(limit)
    if dry_run:
        with gw.db.read_session() as session:
            matched = session.scalar(select(func.count()).select_from(query.subquery()))
        return Replayed(0, 0, matched=matched or 0, dry_run=True)
    with gw.db.session() as session:
        events = session.execute(query).all()
        return dataclasses.replace(
            _redecide(session, events, gw.db.now(session)), matched=len(events)
        )


def _redecide(session: Session, events: Sequence[tuple[int, str, str]], now: datetime) -> Replayed:
    """Queue each event (id, group, type) whose group registers its type, as the receive path
    decides, holding those of a paused group, and ignore the others; how many were taken again,
    and how many of those ignored or held. ``now`` is the database's clock, which workers read
    due times on.

    A group deleted since decides nothing: its events are queued and fail saying so.
    """
    _lock_in_id_order(session, [event_id for event_id, _, _ in events])
    groups = _groups_deciding(session, {group_id for _, group_id, _ in events})
    taken: dict[EventStatus, list[int]] = defaultdict(list)
    unregistered: dict[str, list[int]] = defaultdict(list)
    for event_id, group_id, event_type in events:
        group = groups.get(group_id)
        if group is None or subscribes(group.events, event_type):
            paused = group is not None and group.paused
            taken[EventStatus.HELD if paused else EventStatus.PENDING].append(event_id)
        else:
            unregistered[event_type].append(event_id)
    queued = {
        status: _change(session, ids, _requeued(status, now)) for status, ids in taken.items()
    }
    ignored = sum(_change(session, ids, _ignored(t, now)) for t, ids in unregistered.items())
    return Replayed(sum(queued.values()) + ignored, ignored, held=queued.get(EventStatus.HELD, 0))


def _lock_in_id_order(session: Session, ids: Sequence[int]) -> None:
    """Lock the events to be replayed, lowest id first (on PostgreSQL; SQLite has one writer).

    Updated as they were chosen, they would be locked in whatever order the table holds them:
    two replays of the same events could each wait for a row the other holds, and PostgreSQL
    would abort one (503). Events a worker claimed meanwhile are left to it.
    """
    ordered = sorted(ids)
    for start in range(0, len(ordered), CHANGED_AT_ONCE):
        session.execute(
            select(Event.id)
            .where(
                Event.id.in_(ordered[start : start + CHANGED_AT_ONCE]),
                Event.status.not_in(NOT_REPLAYABLE),
            )
            .order_by(Event.id)
            .with_for_update()
        )


@dataclass(frozen=True)
class _Deciding:
    """What of a group decides where a replayed event goes, as on receipt."""

    events: frozenset[str]
    paused: bool


def _groups_deciding(session: Session, group_ids: Iterable[str]) -> dict[str, _Deciding]:
    query = select(Group.id, Group.events, Group.paused).where(Group.id.in_(list(group_ids)))
    return {
        group_id: _Deciding(frozenset(types), paused)
        for group_id, types, paused in session.execute(query)
    }


def _requeued(status: EventStatus, now: datetime) -> dict[str, Any]:
    """Pending (or held) again with a fresh retry budget; the attempts so far stay counted for
    history."""
    return {
        "status": status,
        "attempts_before_replay": Event.attempts_before_replay + Event.attempts,
        "attempts": 0,
        "next_attempt_at": now,
        "processed_at": None,
        "last_error": None,
    }


def _ignored(event_type: str, now: datetime) -> dict[str, Any]:
    return {
        "status": EventStatus.IGNORED,
        "next_attempt_at": None,
        "processed_at": now,
        "last_error": (
            f"the group does not register {event_type!r}; add it to the group's events, then replay"
        ),
    }


def _change(session: Session, ids: Sequence[int], values: dict[str, Any]) -> int:
    """Set ``values`` on the events ``ids`` unless a worker claimed one in the meantime; the
    number changed, which leaves out those claimed (or purged) since they were chosen."""
    changed = 0
    for start in range(0, len(ids), CHANGED_AT_ONCE):
        chosen = ids[start : start + CHANGED_AT_ONCE]
        changed += len(
            session.scalars(
                update(Event)
                .where(Event.id.in_(chosen), Event.status.not_in(NOT_REPLAYABLE))
                .values(values)
                .returning(Event.id)
                .execution_options(synchronize_session=False)
            ).all()
        )
    return changed
