"""Preview a mapping: the upserts it would make for a stored event or a given payload.

Nothing is written. A candidate document can be tried against the last N stored events of the
types its webhook records take, showing per event what would change against the current version.
Upserts the mapping skips are listed with the reason; for a stored event, each upsert says
whether the stale-write guard would hold it back, from the record's stored write mark.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, true

from gateway import event_log, views
from gateway.connectors import EVERY_EVENT
from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.groups import get_group
from gateway.mapping import (
    CompiledMapping,
    PlannedUpsert,
    SkippedUpsert,
    compile_mapping,
    diff_plans,
    event_context,
    validate_document,
)
from gateway.models import Event, Group, Webhook, WriteMark, iso
from gateway.services import Gateway
from gateway.staleness import is_older
from gateway.storage.bulk import rows_by_keys

DEFAULT_LAST = 10


def preview(gw: Gateway, name: str, body: Mapping[str, Any]) -> views.PreviewAnswer:
    current = _current(gw, name)
    candidate = _candidate(name, body.get("document"))
    mapping = candidate or current
    if mapping is None:
        raise NotFound.of("mapping", name, "send a candidate 'document' to try one")
    samples = _samples(gw, name, body)
    results = [
        _preview_one(gw, sample, mapping, current if candidate else None) for sample in samples
    ]
    previewed = views.PreviewedMapping(
        name=name,
        version=None if candidate else mapping.version,
        candidate=candidate is not None,
        compared_to=current.version if candidate and current else None,
    )
    # One event or payload asked for: its result is repeated at the top level.
    alone = len(results) == 1 and ("event_id" in body or "payload" in body)
    repeated = {field: getattr(results[0], field) for field in results[0].model_fields_set}
    return views.PreviewAnswer(mapping=previewed, results=results, **(repeated if alone else {}))


def _current(gw: Gateway, name: str) -> CompiledMapping | None:
    try:
        return gw.mappings.compiled(name)
    except NotFound:
        return None


def _candidate(name: str, document: Any) -> CompiledMapping | None:
    if document is None:
        return None
    if "name" not in document:
        document = {"name": name, **document}
    validate_document(document)
    return compile_mapping(document, version=0)


def _samples(gw: Gateway, name: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "event_id" in body and ("payload" in body or "event_type" in body):
        raise BadRequest(
            "preview a stored event ('event_id') or a payload ('event_type' and 'payload'),"
            " not both",
            code="ambiguous_sample",
        )
    if "event_id" in body:
        event, _, _ = event_log.get_event(gw, body["event_id"])
        return [_stored_sample(gw, event)]
    if "payload" in body:
        if not body.get("event_type"):
            raise BadRequest("a payload needs its 'event_type'", code="event_type_required")
        return [_payload_sample(gw, body)]
    if "event_type" in body:
        raise BadRequest("an 'event_type' needs its 'payload'", code="payload_required")
    return [_stored_sample(gw, e) for e in _recent_events(gw, name, body.get("last", DEFAULT_LAST))]


def _payload_sample(gw: Gateway, body: Mapping[str, Any]) -> dict[str, Any]:
    """A payload as if received now; by the group named, when one is (``event.group_id``,
    ``connector`` and ``function`` then filled, and its target's write marks read)."""
    group = get_group(gw, body["group_id"]) if body.get("group_id") else None
    return {
        "event": None,
        "target": (group.target or gw.targets.default_name()) if group else None,
        "context": event_context(
            body["payload"],
            id="preview",
            type=body["event_type"],
            received_at=iso(datetime.now(UTC)) or "",
            group_id=group.id if group else None,
            connector=group.connector if group else None,
            function=group.function if group else None,
            group=event_log.group_fields(group),
        ),
    }


def _recent_events(gw: Gateway, name: str, last: int) -> list[Event]:
    """The newest stored events of the types that webhook records using ``name`` take (of any
    type in their groups, when one of them takes every event)."""
    with gw.db.read_session() as session:
        records = session.scalars(select(Webhook).where(Webhook.mapping_name == name)).all()
        types = {t for w in records for t in w.events}
        group_ids = {w.group_id for w in records}
        if not types:
            raise BadRequest(
                f"no webhook record uses mapping {name!r}; preview an 'event_id' or a 'payload'",
                code="nothing_to_preview",
            )
        of_types = Event.type.in_(types) if EVERY_EVENT not in types else true()
        query = (
            select(Event)
            .where(of_types, Event.group_id.in_(group_ids))
            .where(Event.status != "duplicate")
            .order_by(Event.id.desc())
            .limit(last)
        )
        return list(session.scalars(query))


def _stored_sample(gw: Gateway, event: Event) -> dict[str, Any]:
    with gw.db.read_session() as session:
        group = session.get(Group, event.group_id)
    return {
        "event": event,
        "target": (group.target if group else None) or gw.targets.default_name(),
        "context": event_log.mapping_context(event, group),
    }


def _preview_one(
    gw: Gateway, sample: dict[str, Any], mapping: CompiledMapping, current: CompiledMapping | None
) -> views.PreviewResult:
    event = sample["event"]
    result: dict[str, Any] = {
        "event_id": str(event.id) if event is not None else None,
        "event_type": sample["context"]["event"]["type"],
    }
    try:
        plan = mapping.explained_plan(sample["context"])
    except GatewayError as exc:
        return views.PreviewResult(**result, upserts=[], skipped=[], error=exc.message)
    marks = None if sample["target"] is None else _write_marks(gw, sample["target"], plan.upserts)
    result["upserts"] = [upsert_view(p, marks) for p in plan.upserts]
    result["skipped"] = [skipped_view(s) for s in plan.skipped]
    result["error"] = None
    if current is not None:
        try:
            result["changes"] = diff_plans(current.plan(sample["context"]), plan.upserts)
        except GatewayError as exc:
            result["changes"] = None
            result["current_error"] = exc.message
    return views.PreviewResult(**result)


#: A record's write mark: the ordering value and the event that last wrote it.
_Marks = dict[tuple[str, str], tuple[Any, int]]


def _write_marks(gw: Gateway, target: str, planned: list[PlannedUpsert]) -> _Marks:
    """The write marks of the records the guarded upserts would write, read only."""
    keys = sorted({(target, p.object, p.external_id) for p in planned if p.guarded})
    if not keys:
        return {}
    columns = ("object", "external_id", "order_value", "event_id")
    with gw.db.read_session() as session:
        rows = rows_by_keys(session, WriteMark.__table__, keys, columns)
        return {(obj, ext): (value, event_id) for obj, ext, value, event_id in rows}


def upsert_view(planned: PlannedUpsert, marks: _Marks | None = None) -> views.PlannedUpsert:
    """One upsert as the preview shows it; ``marks`` None when no write marks were read."""
    parent = planned.parent
    return views.PlannedUpsert(
        key=planned.key,
        object=planned.object,
        external_id_field=planned.external_id_field,
        external_id=planned.external_id,
        fields=planned.fields,
        parent=None
        if parent is None
        else views.Parent(
            relationship=parent.relationship,
            external_id_field=parent.external_id_field,
            external_id=parent.external_id,
        ),
        order_value=planned.order_value,
        **_staleness(planned, marks),
    )


def _staleness(planned: PlannedUpsert, marks: _Marks | None) -> dict[str, Any]:
    """Whether processing would hold the upsert back as stale: null when not known."""
    if marks is None:
        return {"stale": None, "last_written": None}
    mark = marks.get((planned.object, planned.external_id)) if planned.guarded else None
    if mark is None:
        return {"stale": False, "last_written": None}
    value, event_id = mark
    return {
        "stale": is_older(planned.order_value, value),
        "last_written": views.LastWritten(order_value=value, event_id=str(event_id)),
    }


def skipped_view(skipped: SkippedUpsert) -> views.SkippedUpsert:
    return views.SkippedUpsert(key=skipped.key, object=skipped.object, reason=skipped.reason)
