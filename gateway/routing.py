"""Routing rules: which webhook records an event goes to. Pure; no Flask, no database."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.connectors import subscribes
from gateway.errors import MappingError
from gateway.mapping import Expression


@dataclass(frozen=True)
class Route:
    """An active webhook record, ready to match events."""

    webhook_id: str
    label: str
    events: frozenset[str]
    filter_source: str | None
    filter: Expression | None
    mapping_name: str | None
    mapping_version: int | None
    #: ``event`` when the record sends the event itself rather than its mapping's upserts.
    send: str = "upserts"

    def takes(self, event_type: str, scope: Mapping[str, Any]) -> bool:
        """True when the record registers this type and its filter (on ``scope``) is true."""
        if not subscribes(self.events, event_type):
            return False
        if self.filter is None:
            return True
        try:
            return self.filter.evaluate(scope) is True
        except MappingError as exc:
            exc.webhook_id = self.webhook_id  # the event's history names the failing record
            raise


def compile_route(
    webhook_id: str,
    label: str,
    events: Iterable[str],
    filter_source: str | None,
    mapping_name: str | None,
    mapping_version: int | None,
    send: str = "upserts",
) -> Route:
    where = f"filter {filter_source!r} of webhook record {label!r} failed"
    return Route(
        webhook_id=webhook_id,
        label=label,
        events=frozenset(events),
        filter_source=filter_source,
        filter=Expression(filter_source, where) if filter_source else None,
        mapping_name=mapping_name,
        mapping_version=mapping_version,
        send=send,
    )


def filter_scope(context: Mapping[str, Any]) -> dict[str, Any]:
    """What a filter sees: the payload's own top-level keys, and ``payload`` and ``event``.

    Filters were first evaluated on the bare payload; ``payload`` and ``event`` let an admin
    write them as mapping expressions are written. The payload's own keys win, so a filter on a
    payload that has a ``payload`` or ``event`` key keeps the meaning it always had.
    """
    payload = context["payload"]
    scope = {"payload": payload, "event": context["event"]}
    if isinstance(payload, dict):
        scope.update(payload)
    return scope


def routes_for(routes: Sequence[Route], event_type: str, context: Mapping[str, Any]) -> list[Route]:
    """Every route that takes the event, in the given order; [] means the event is unrouted.

    ``context`` is the event's mapping context (:func:`gateway.mapping.event_context`); the
    filters' scope is built from it only when some route has a filter.
    """
    scope = filter_scope(context) if any(route.filter for route in routes) else context
    return [route for route in routes if route.takes(event_type, scope)]


def why_unrouted(routes: Iterable[Route], event_type: str) -> str:
    """Why no route took an event: no record takes its type, or their filters all said no."""
    takers = sum(subscribes(route.events, event_type) for route in routes)
    if takers == 0:
        return f"no active webhook record of this group takes {event_type!r}"
    if takers == 1:
        return (
            f"1 active webhook record of this group takes {event_type!r},"
            " but its filter did not match"
        )
    return (
        f"{takers} active webhook records of this group take {event_type!r},"
        " but none of their filters matched"
    )
