"""Routing rules: which webhook records an event goes to. Pure; no Flask, no database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from gateway.errors import MappingError


@dataclass(frozen=True)
class Route:
    """An active webhook record, ready to match events."""

    webhook_id: str
    label: str
    events: frozenset[str]
    filter_source: str | None
    filter: ParsedResult | None
    mapping_name: str | None
    mapping_version: int | None

    def takes(self, event_type: str, payload: Any) -> bool:
        """True when the record registers this type and its filter (on the payload) is true."""
        if event_type not in self.events:
            return False
        if self.filter is None:
            return True
        try:
            return self.filter.search(payload) is True
        except JMESPathError as exc:
            error = MappingError(
                f"filter {self.filter_source!r} of webhook record {self.label!r} failed: {exc}"
            )
            error.webhook_id = self.webhook_id
            raise error from exc


def compile_route(
    webhook_id: str,
    label: str,
    events: Iterable[str],
    filter_source: str | None,
    mapping_name: str | None,
    mapping_version: int | None,
) -> Route:
    return Route(
        webhook_id=webhook_id,
        label=label,
        events=frozenset(events),
        filter_source=filter_source,
        filter=jmespath.compile(filter_source) if filter_source else None,
        mapping_name=mapping_name,
        mapping_version=mapping_version,
    )


def routes_for(routes: Iterable[Route], event_type: str, payload: Any) -> list[Route]:
    """Every route that takes the event, in the given order; [] means the event is unrouted."""
    return [route for route in routes if route.takes(event_type, payload)]
