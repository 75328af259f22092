"""Route and map: what each event of a batch asks of its targets, before anything is sent."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gateway.errors import MappingError, NotFound
from gateway.event_log import mapping_context
from gateway.mapping import CompiledMapping, PlannedUpsert, SkippedUpsert
from gateway.mapping_store import MappingStore
from gateway.models import Event, EventStatus, Group, Webhook
from gateway.routing import Route, compile_route, routes_for, why_unrouted
from gateway.services import Gateway
from gateway.storage.results import RecordKey
from gateway.targets.base import UpsertResult

log = logging.getLogger("gateway.worker")


@dataclass
class Planned:
    """One upsert an event asks for through one webhook record."""

    event: Event
    route: Route
    #: None for an event sent as it is (``send: event``), which no mapping made.
    mapping_version: int | None
    upsert: PlannedUpsert
    target: str
    result: UpsertResult | None = None
    stale: bool = False
    #: An earlier attempt of the event applied this very upsert: it is not sent again.
    applied: bool = False
    #: What the stale-write guard has to say about this upsert, for the history.
    note: str | None = None

    @property
    def record(self) -> RecordKey:
        return (self.target, self.upsert.object, self.upsert.external_id)


@dataclass(frozen=True)
class Skipped:
    """One upsert of a webhook record's mapping that the event makes no record for, and why."""

    route: Route
    mapping_version: int
    upsert: SkippedUpsert
    target: str


@dataclass
class Outcome:
    """Where an event ends up after this attempt, and why."""

    event: Event
    status: str = EventStatus.DELIVERED
    message: str | None = None
    transient: bool = False
    #: The soonest a retry can pass, as the targets said (a pause over an API limit).
    retry_after_s: float = 0.0
    planned: list[Planned] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: History columns naming what a failure before any upsert concerns, as far as known.
    about: dict[str, Any] = field(default_factory=dict)
    #: Set when a limit of its target held the event back: it is due again then, and this
    #: attempt is not counted.
    wait_until: datetime | None = None


class MappingsOfBatch:
    """The mappings a batch uses, each looked up once for the whole batch.

    A record following a mapping's newest version would otherwise ask the database which
    version that is for every event.
    """

    def __init__(self, store: MappingStore) -> None:
        self._store = store
        self._found: dict[tuple[str, int | None], CompiledMapping | NotFound] = {}

    def get(self, name: str, version: int | None) -> CompiledMapping:
        key = (name, version)
        if key not in self._found:
            try:
                self._found[key] = self._store.compiled(name, version)
            except NotFound as exc:
                self._found[key] = exc
        found = self._found[key]
        if isinstance(found, NotFound):
            raise found
        return found


def plan_batch(gw: Gateway, events: Sequence[Event], worker_id: str) -> list[Outcome]:
    """Each event's routes and the upserts their mappings make of it, in the events' order."""
    planner = _Planner(gw, {e.group_id for e in events}, worker_id)
    return [planner.plan_or_fail(event) for event in events]


class _Planner:
    """The batch's groups, routes and mappings, read once."""

    def __init__(self, gw: Gateway, group_ids: set[str], worker_id: str) -> None:
        self._worker_id = worker_id
        self._default_target = gw.targets.default_name
        self._mappings = MappingsOfBatch(gw.mappings)
        with gw.db.read_session() as session:
            groups = session.scalars(select(Group).where(Group.id.in_(group_ids)))
            self._groups = {g.id: g for g in groups}
            webhooks = session.scalars(
                select(Webhook)
                .where(
                    Webhook.group_id.in_(group_ids),
                    Webhook.active,
                    Webhook.is_template.is_(False),
                )
                .order_by(Webhook.created_at, Webhook.id)
            )
            self._routes: dict[str, list[Route]] = defaultdict(list)
            for w in webhooks:
                self._routes[w.group_id].append(
                    compile_route(
                        w.id,
                        w.label,
                        w.events,
                        w.filter,
                        w.mapping_name,
                        w.mapping_version,
                        w.send,
                    )
                )

    def plan_or_fail(self, event: Event) -> Outcome:
        """:meth:`plan`, with an error nobody foresaw failing this event alone, not the batch."""
        try:
            return self.plan(event)
        except Exception:
            log.exception(
                "worker %s: unexpected error planning event %s", self._worker_id, event.id
            )
            return fail(
                Outcome(event), "an unexpected error occurred while mapping it; it has been logged"
            )

    def plan(self, event: Event) -> Outcome:
        outcome = Outcome(event)
        group = self._groups.get(event.group_id)
        if group is None:
            return fail(outcome, "the event's webhook group was deleted")
        context = mapping_context(event, group)
        candidates = self._routes.get(group.id, [])
        try:
            matched = routes_for(candidates, event.type, context)
        except MappingError as exc:
            return fail(outcome, exc.message, {"webhook_id": exc.webhook_id})
        if not matched:
            outcome.status = EventStatus.UNROUTED
            outcome.message = why_unrouted(candidates, event.type)
            return outcome
        target = group.target or self._default_target()
        for route in matched:
            if route.send == "event":
                sent = replace(route, mapping_name=None, mapping_version=None)
                outcome.planned.append(Planned(event, sent, None, event_record(context), target))
                continue
            if not route.mapping_name:
                return fail(
                    outcome,
                    f"webhook record {route.label!r} has no mapping; attach one and replay",
                    about(route),
                )
            try:
                mapping = self._mappings.get(route.mapping_name, route.mapping_version)
            except NotFound as exc:
                why = about(route, route.mapping_version)
                return fail(outcome, f"webhook record {route.label!r}: {exc.message}", why)
            try:
                plan = mapping.explained_plan(context)
            except MappingError as exc:
                why = about(route, mapping.version, exc.upsert_key)
                return fail(outcome, f"webhook record {route.label!r}: {exc.message}", why)
            version = mapping.version
            outcome.planned += [Planned(event, route, version, u, target) for u in plan.upserts]
            outcome.skipped += [Skipped(route, version, u, target) for u in plan.skipped]
        return outcome


def event_record(context: dict[str, Any]) -> PlannedUpsert:
    """The event itself as one record: object ``event``, its id the external id, and its
    names (type, time received, group) beside its payload."""
    names = context["event"]
    return PlannedUpsert(
        key="event",
        object="event",
        external_id_field="id",
        external_id=names["id"],
        fields={**names, "payload": context["payload"]},
        parent=None,
        order_value=None,
    )


def fail(outcome: Outcome, message: str, about: dict[str, Any] | None = None) -> Outcome:
    outcome.status = EventStatus.FAILED
    outcome.message = message
    outcome.planned = []
    outcome.skipped = []
    outcome.about = about or {}
    return outcome


def about(
    route: Route, mapping_version: int | None = None, upsert_key: str | None = None
) -> dict[str, Any]:
    """The history columns naming the webhook record, mapping version and upsert of a row."""
    return {
        "webhook_id": route.webhook_id,
        "mapping_name": route.mapping_name,
        "mapping_version": mapping_version,
        "upsert_key": upsert_key,
    }
