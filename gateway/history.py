"""What each processing attempt of an event sent to its target, worked out again when asked.

Nothing more is stored per attempt: a history row names the mapping version and the upsert that
made it, versions never change, and a mapping's expressions depend on the event alone, so that
version evaluated again on the stored event plans the very upserts the worker sent. Each version
is evaluated once per look, however many attempts and ``for_each`` items share it.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from gateway import event_log, views
from gateway.errors import GatewayError, NotFound
from gateway.mapping import PlannedUpsert
from gateway.models import Event, EventResult, Group
from gateway.services import Gateway

log = logging.getLogger(__name__)

#: What a history row says it sent when it concerns no planned record: routing outcomes,
#: failures before planning, upserts the mapping skipped.
NOTHING: Mapping[str, Any] = {"external_id_field": None, "fields": None, "fields_note": None}

GROUP_DELETED = (
    "the event's webhook group was deleted, so the connector and function its mapping saw"
    " are unknown"
)

#: A planned record as a history row names it: upsert key, object, external id.
_RecordKey = tuple[str, str, str]
#: What one mapping version sends for the event, by record (every upsert of the record, in
#: order); or why it cannot be told.
_Replanned = dict[_RecordKey, list[Mapping[str, Any]]] | str


def event_with_sent_fields(gw: Gateway, event_id: Any) -> views.EventDetail:
    """The event as the admin API and the console show it, each attempt with what it sent."""
    event, delivery, history = event_log.get_event(gw, event_id)
    return views.EventDetail.of_parts(event, delivery, history, sent_upserts(gw, event, history))


def sent_upserts(
    gw: Gateway, event: Event, history: Sequence[EventResult]
) -> list[Mapping[str, Any]]:
    """Per history row, in order: the external id field and the fields its upsert sent, as the
    target receives them; or null fields and a note saying why they cannot be told."""
    pins = [_pin(row) for row in history]
    versions = {pin for pin in pins if pin is not None}
    if not versions:
        return [NOTHING] * len(history)
    with gw.db.read_session() as session:
        group = session.get(Group, event.group_id)
    if group is None:
        unknown = {**NOTHING, "fields_note": GROUP_DELETED}
        return [NOTHING if pin is None else unknown for pin in pins]
    context = event_log.mapping_context(event, group)
    replanned = {pin: _replan(gw, *pin, context) for pin in versions}
    seen: Counter[tuple[Any, ...]] = Counter()
    return [
        NOTHING if pin is None else _sent(row, replanned[pin], seen)
        for row, pin in zip(history, pins, strict=True)
    ]


def _pin(row: EventResult) -> tuple[str, int] | None:
    """The mapping version that planned the row's record; None for a row naming no such record."""
    if row.mapping_name and row.mapping_version is not None and row.upsert_key and row.external_id:
        return (row.mapping_name, row.mapping_version)
    return None


def _replan(gw: Gateway, name: str, version: int, context: dict[str, Any]) -> _Replanned:
    """What the version sends for the event, evaluated as the worker does; or why it cannot."""
    where = f"version {version} of mapping {name!r}"
    try:
        plan = gw.mappings.compiled(name, version).plan(context)
    except NotFound:
        return f"{where} is no longer stored"
    except GatewayError as exc:
        return f"{where} cannot map this event now: {exc.message}"
    except Exception:
        # A bug must not take the event's page down with it.
        log.exception("evaluating %s again on event %s failed", where, context["event"]["id"])
        return f"{where} failed unexpectedly on this event; the error has been logged"
    by_record: dict[_RecordKey, list[Mapping[str, Any]]] = defaultdict(list)
    for upsert in plan:
        by_record[(upsert.key, upsert.object, upsert.external_id)].append(_what_was_sent(upsert))
    return by_record


def _what_was_sent(upsert: PlannedUpsert) -> dict[str, Any]:
    return {
        "external_id_field": upsert.external_id_field,
        "fields": upsert.request(None).record(),
        "fields_note": None,
    }


def _sent(
    row: EventResult, replanned: _Replanned, seen: Counter[tuple[Any, ...]]
) -> Mapping[str, Any]:
    """The row's upsert: the n-th of the attempt's rows for its record is the n-th the version
    plans for it (``seen`` counts them), as ``for_each`` items may repeat an external id."""
    if isinstance(replanned, str):
        return {**NOTHING, "fields_note": replanned}
    record = (row.upsert_key or "", row.object or "", row.external_id or "")
    occurrence = (row.attempt, row.webhook_id, *record)
    nth = seen[occurrence]
    seen[occurrence] += 1
    candidates = replanned.get(record, [])
    if nth >= len(candidates):
        return {
            **NOTHING,
            "fields_note": f"version {row.mapping_version} of mapping {row.mapping_name!r}"
            " evaluated again makes no such upsert of this event",
        }
    return candidates[nth]
