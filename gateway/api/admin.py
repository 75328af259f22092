"""The admin API under /api/v1: thin shells over the services, guarded by the bearer token."""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Callable, Sequence
from functools import partial
from operator import attrgetter
from typing import Any, TypeVar

from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from gateway import event_log, groups, paging, records, views
from gateway.api import openapi, reference_page, schemas
from gateway.api.openapi import OPENAPI_PATH, operation
from gateway.errors import (
    BadRequest,
    Detail,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    ValidationFailed,
)
from gateway.history import event_with_sent_fields
from gateway.http import UNREADABLE_BODY, gateway, unreadable_body
from gateway.mapping_store import API
from gateway.models import Group, MappingVersion, iso
from gateway.preview import preview
from gateway.targets import credentials
from gateway.targets.usage import target_usage
from gateway.validation import Schema, strict_json, whole_number

PREFIX = "/api/v1"
bp = Blueprint("admin", __name__, url_prefix=PREFIX)

T = TypeVar("T")


def _authenticate() -> None:
    """Runs before routing, so that without the token no path under /api/v1 says if it exists;
    the OpenAPI document and its reference page hold no secret, and are open to read."""
    if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
        return
    if request.path == OPENAPI_PATH or _is_reference_page(request.path):
        return
    expected = gateway().settings.admin_token or ""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise Unauthorized("a valid 'Authorization: Bearer <admin token>' header is required")


def _is_reference_page(path: str) -> bool:
    return path == reference_page.PATH or path.startswith(reference_page.PATH + "/")


@bp.before_request
def _refuse_nul_characters() -> None:
    """No id, name or filter can hold U+0000 (PostgreSQL text cannot), so none is looked up."""
    values = [*(request.view_args or {}).values(), *request.args.keys(), *request.args.values()]
    if any("\x00" in str(value) for value in values):
        raise BadRequest(
            "the path and query parameters cannot contain the NUL character",
            code="nul_character",
        )


#: An admin body may be this many times GATEWAY_MAX_BODY_BYTES: a preview carries a payload
#: besides its mapping. Not more: checking a mapping document costs the web process about a
#: second a megabyte, which deliveries to the same process wait for.
ADMIN_BODY_FACTOR = 4


def _body(schema: Schema | None = None) -> dict[str, Any]:
    limit = ADMIN_BODY_FACTOR * gateway().settings.max_body_bytes
    too_large = PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
    # werkzeug refuses a longer declared length, and stops a chunked body one byte past it.
    request.max_content_length = limit + 1
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge as exc:
        raise too_large from exc
    except UNREADABLE_BODY as exc:
        raise unreadable_body(exc) from exc
    if len(raw) > limit:
        raise too_large
    try:
        data = strict_json(raw) if raw else {}
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    return schema.validate(data) if schema else data


def _single(name: str) -> str | None:
    """A query parameter that takes one value; given twice, which one counts is not guessed."""
    values = request.args.getlist(name)
    if len(values) > 1:
        raise BadRequest(
            f"{name} is given {len(values)} times; it takes one value",
            code="repeated_parameter",
            details=[Detail(name, "give it once")],
        )
    return values[0] if values else None


def _list(
    read: Callable[[int, paging.Key | None], Sequence[T]],
    key: Callable[[T], paging.Key],
    view: Callable[[T], Any],
) -> Any:
    """A page of a list, every list paged alike; its cursors are bound to the list's path."""
    limit = paging.parse_limit(_single("limit"))
    pages = gateway().paging(request.path)
    rows, next_cursor = pages.page(read, key, limit, _single("cursor"))
    return jsonify(items=[view(row) for row in rows], next_cursor=next_cursor)


def _created(payload: Any) -> Any:
    response = jsonify(payload)
    response.status_code = 201
    return response


@bp.get("/openapi.json")
@operation(
    "meta",
    {
        "description": "The OpenAPI 3.1 document.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    },
    public=True,
)
def get_open_api() -> Any:
    """This document, browsable at `/api/v1/docs`; neither needs the admin token."""
    return jsonify(openapi.document(current_app))


# --- connectors --------------------------------------------------------------------------


_by_name = attrgetter("name")


@bp.get("/connectors")
@operation("connectors", page="Connector", errors="503")
def list_connectors() -> Any:
    """The connector profiles, shipped and custom, by name."""
    profiles = gateway().connectors.all()
    return _list(paging.in_memory(profiles, _by_name), _by_name, lambda p: p.public())


@bp.post("/connectors")
@operation("connectors", "Connector", status=201, errors="400 409 422 503", body="ConnectorProfile")
def register_connector() -> Any:
    """Register a custom connector profile."""
    return _created(gateway().connectors.register(_body()).public())


_CONNECTOR_NAME = {"name": "The connector's name."}


@bp.get("/connectors/<name>")
@operation("connectors", "ConnectorWithHistory", errors="404 503", path=_CONNECTOR_NAME)
def get_connector(name: str) -> Any:
    """One connector profile with its version history (newest first; none for a shipped one)."""
    return jsonify(_connector_with_history(name))


@bp.put("/connectors/<name>")
@operation(
    "connectors",
    "ConnectorWithHistory",
    more={201: "ConnectorWithHistory"},
    errors="400 404 409 422 503",
    body="ConnectorProfileBody",
    path=_CONNECTOR_NAME,
)
def put_connector(name: str) -> Any:
    """Create or change a custom connector profile: each change is a new version.

    The new version verifies and reads the deliveries received from then on; deliveries already
    received keep what they were. A connector profile as GET shows it may be sent back: its
    `version` then names the version edited (409 `version_conflict` if there is a newer one).
    Shipped profiles are read-only (409 `connector_read_only`), and a version that would take
    from a group its function or registered events is refused (409 `connector_in_use`, each
    group in `details`).
    """
    profile, changed = gateway().connectors.put(name, _body())
    created = changed and profile.version == 1
    return jsonify(_connector_with_history(profile.name)), 201 if created else 200


@bp.delete("/connectors/<name>")
@operation("connectors", status=204, errors="404 409 503", path=_CONNECTOR_NAME)
def delete_connector(name: str) -> Any:
    """Delete a custom connector profile and its history: 409 `connector_in_use` while a
    webhook group uses it, 409 `connector_read_only` for a shipped one."""
    gateway().connectors.delete(name)
    return "", 204


def _connector_with_history(name: str) -> dict[str, Any]:
    registry = gateway().connectors
    shown = registry.get(name).public()
    shown["history"] = [
        {"version": v.version, "created_at": iso(v.created_at), "changes": v.changes}
        for v in registry.history(name)
    ]
    return shown


# --- groups ------------------------------------------------------------------------------


def _group_view(group: Group) -> dict[str, Any]:
    return groups.view(gateway(), group).body()


@bp.post("/groups")
@operation("groups", views.Group, status=201, errors="400 422 503", body="GroupCreate")
def create_group() -> Any:
    """Create a webhook group with its callback URL and blank template record."""
    return _created(_group_view(groups.create_group(gateway(), _body(schemas.group_create))))


@bp.get("/groups")
@operation("groups", page=views.Group, errors="503")
def list_groups() -> Any:
    """The webhook groups, by id."""
    gw = gateway()
    return _list(
        partial(groups.list_groups, gw),
        lambda row: row[0].id,
        lambda row: groups.view(gw, *row).body(),
    )


@bp.get("/groups/<group_id>")
@operation("groups", views.Group, errors="404 503")
def get_group(group_id: str) -> Any:
    """One group."""
    return jsonify(_group_view(groups.get_group(gateway(), group_id)))


@bp.patch("/groups/<group_id>")
@operation("groups", views.Group, errors="404 422 503", body="GroupUpdate", body_required=False)
def update_group(group_id: str) -> Any:
    """Change a group (name, events, secret, active, target...)."""
    body = _body(schemas.group_update)
    return jsonify(_group_view(groups.update_group(gateway(), group_id, body)))


@bp.delete("/groups/<group_id>")
@operation("groups", status=204, errors="404 503")
def delete_group(group_id: str) -> Any:
    """Delete a group and its webhook records."""
    groups.delete_group(gateway(), group_id)
    return "", 204


@bp.post("/groups/<group_id>/rotate-url")
@operation("groups", views.Group, errors="404 503")
def rotate_group_url(group_id: str) -> Any:
    """A new callback URL; the old one stops working."""
    return jsonify(_group_view(groups.rotate_url(gateway(), group_id)))


@bp.post("/groups/<group_id>/rotate-secret")
@operation("groups", views.Group, errors="404 422 503", body="RotateSecret")
def rotate_group_secret(group_id: str) -> Any:
    """A new secret; the previous one is still accepted for `previous_valid_for_s`."""
    body = _body(schemas.rotate_secret)
    secret, keep_for = body["secret"], body.get("previous_valid_for_s", 0)
    return jsonify(_group_view(groups.rotate_secret(gateway(), group_id, secret, keep_for)))


@bp.get("/groups/<group_id>/webhooks")
@operation("webhooks", page=views.Webhook, errors="404 503")
def list_group_webhooks(group_id: str) -> Any:
    """A group's webhook records, the template first."""
    read = partial(groups.list_webhooks, gateway(), group_id)
    return _list(read, groups.webhook_key, _webhook_view)


def _webhook_view(webhook: Any) -> dict[str, Any]:
    return views.Webhook.of(webhook).body()


# --- webhook records ---------------------------------------------------------------------


@bp.post("/webhooks/<webhook_id>/clone")
@operation("webhooks", views.Webhook, status=201, errors="404 422 503", body="WebhookClone")
def clone_webhook(webhook_id: str) -> Any:
    """Clone a record (or the template) into a new webhook record."""
    body = _with_mapping_saved(_body(schemas.webhook_clone))
    return _created(_webhook_view(groups.clone_webhook(gateway(), webhook_id, body)))


@bp.get("/webhooks/<webhook_id>")
@operation("webhooks", views.Webhook, errors="404 503")
def get_webhook(webhook_id: str) -> Any:
    """One webhook record."""
    return jsonify(_webhook_view(groups.get_webhook(gateway(), webhook_id)))


@bp.patch("/webhooks/<webhook_id>")
@operation(
    "webhooks",
    views.Webhook,
    errors="404 409 422 503",
    body="WebhookUpdate",
    body_required=False,
)
def update_webhook(webhook_id: str) -> Any:
    """Change a webhook record (the template takes only a new label)."""
    body = _with_mapping_saved(_body(schemas.webhook_update))
    return jsonify(_webhook_view(groups.update_webhook(gateway(), webhook_id, body)))


def _with_mapping_saved(body: dict[str, Any]) -> dict[str, Any]:
    """A record's ``mapping`` given as a whole document: saved first, as ``PUT
    /mappings/{its name}`` would save it (a new version only if it changed), then named."""
    document = body.get("mapping")
    if not isinstance(document, dict) or "upserts" not in document:
        return body
    name = document.get("name")
    if not isinstance(name, str):
        raise ValidationFailed(
            "a mapping document given with a webhook record needs its name",
            details=[Detail("mapping.name", "the name to save the document under is required")],
        )
    try:
        gateway().mappings.put(name, document, source=API)
    except ValidationFailed as invalid:
        invalid.details = tuple(Detail(f"mapping.{d.path}", d.message) for d in invalid.details)
        raise
    return {**body, "mapping": name}


@bp.delete("/webhooks/<webhook_id>")
@operation("webhooks", status=204, errors="404 409 503")
def delete_webhook(webhook_id: str) -> Any:
    """Delete a webhook record (never the template)."""
    groups.delete_webhook(gateway(), webhook_id)
    return "", 204


# --- mappings ----------------------------------------------------------------------------


def mapping_view(row: Any) -> dict[str, Any]:
    """The document itself with its version, and the document again whole under ``document``."""
    return {
        **row.document,
        "name": row.name,
        "version": row.version,
        "document": row.document,
        "created_at": iso(row.created_at),
    }


MAPPING_NAME = {"name": "The mapping's name."}
MAPPING_VERSION = openapi.query_parameter(
    "version",
    {"type": "integer", "minimum": 1, "maximum": schemas.MAX_INT32},
    "A version to show.",
)


@bp.get("/mappings")
@operation("mappings", page="Mapping", errors="503")
def list_mappings() -> Any:
    """The newest version of every mapping document, by name."""
    return _list(gateway().mappings.latest, _by_name, mapping_view)


@bp.get("/mappings/<name>")
@operation("mappings", "Mapping", errors="404 503", query=[MAPPING_VERSION], path=MAPPING_NAME)
def get_mapping(name: str) -> Any:
    """A mapping document, its newest version unless `version` is given."""
    version = _single("version")
    number = None if version is None else whole_number(version, schemas.MAX_INT32)
    if version is not None and number is None:
        raise BadRequest(
            f"version must be a whole number up to {schemas.MAX_INT32}", code="invalid_version"
        )
    return jsonify(mapping_view(gateway().mappings.get(name, number)))


@bp.get("/mappings/<name>/versions")
@operation("mappings", page="Mapping", errors="404 503", path=MAPPING_NAME)
def list_mapping_versions(name: str) -> Any:
    """Every version of a mapping document, newest first."""
    read = partial(gateway().mappings.versions, name)
    return _list(read, attrgetter("version"), mapping_view)


@bp.put("/mappings/<name>")
@operation(
    "mappings",
    "Mapping",
    more={201: "Mapping"},
    errors="409 422 503",
    body="MappingDocumentBody",
    path=MAPPING_NAME,
)
def put_mapping(name: str) -> Any:
    """Create or change a mapping document (a new version each change).

    Answers 201 with its first version when it is created, else 200 with the newest version,
    changed or unchanged.
    """
    gw = gateway()
    body = _body()
    document, based_on = _as_edited(body)
    try:
        read = gw.mappings.get(name, based_on)
    except NotFound:
        read = None
    if "document" in body:
        _check_copy(body["document"], {"name": name, **document}, read)
    row, changed = gw.mappings.put(name, document, based_on, source=API)
    response = jsonify(mapping_view(row))
    response.status_code = 201 if changed and row.version == 1 else 200
    return response


#: What ``mapping_view`` adds to a document; a document read by GET may be sent back as it is.
READ_ONLY_MAPPING_FIELDS = ("document", "created_at")


def _as_edited(body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """The document to store, and the version it was edited from when the body says so."""
    document = {k: v for k, v in body.items() if k not in READ_ONLY_MAPPING_FIELDS}
    based_on = document.pop("version", None)
    if based_on is not None and not (type(based_on) is int and 1 <= based_on <= schemas.MAX_INT32):
        raise ValidationFailed(
            "version, when given, is the version this change was made to",
            details=[Detail("version", f"{based_on!r} is not a version number")],
        )
    return document, based_on


def _check_copy(copy: Any, document: dict[str, Any], read: MappingVersion | None) -> None:
    """Refuse an edit made to GET's ``document`` copy alone, which would be dropped unseen.

    The fields beside the copy are what is stored: the copy must be left as it was read (the
    version named, or the newest) or kept equal to them.
    """
    if copy == document or (read is not None and copy == read.document):
        return
    raise ValidationFailed(
        "the document copy differs from the mapping's own fields",
        details=[
            Detail(
                "document",
                "edit the fields beside it (they are what is stored), or leave the copy out",
            )
        ],
    )


@bp.post("/mappings/<name>/preview")
@operation(
    "mappings",
    views.PreviewAnswer,
    errors="404 422 503",
    body="Preview",
    body_required=False,
    path=MAPPING_NAME,
)
def preview_mapping(name: str) -> Any:
    """The upserts a mapping (or a candidate document) would make; nothing is written."""
    return jsonify(preview(gateway(), name, _body(schemas.preview)).body())


# --- events and records ------------------------------------------------------------------

EVENT_FILTERS = ("group_id", "type", "status", "since", "until", "contains")
#: The event filters that take several values: each one given, comma-separated or repeated.
EVENT_FILTERS_OF_SEVERAL = ("status",)


def _event_filters() -> dict[str, Any]:
    filters = {
        k: request.args.getlist(k) if k in EVENT_FILTERS_OF_SEVERAL else _single(k)
        for k in EVENT_FILTERS
    }
    return {k: v for k, v in filters.items() if v}


@bp.get("/events")
@operation("events", page=views.EventSummary, errors="422 503", query=openapi.EVENT_FILTERS)
def list_events() -> Any:
    """The event log, newest first."""
    filters = _event_filters()
    read = partial(event_log.list_events, gateway(), filters)
    return _list(read, event_log.event_key, _event_summary)


def _event_summary(event: Any) -> dict[str, Any]:
    return views.EventSummary.of(event).body()


@bp.get("/events/<event_id>")
@operation("events", views.EventDetail, errors="404 503")
def get_event(event_id: str) -> Any:
    """One event with its payload, its delivery's headers and its history."""
    return jsonify(event_with_sent_fields(gateway(), event_id).body())


@bp.post("/events/<event_id>/replay")
@operation("events", views.EventSummary, errors="404 409 503")
def replay_event(event_id: str) -> Any:
    """Process one event again (it stays ignored while its group does not register its type,
    and is held while its group is paused: it runs once the group is resumed)."""
    return jsonify(_event_summary(event_log.replay(gateway(), event_id)))


@bp.post("/events/replay")
@operation("events", views.Replayed, errors="400 422 503", body="EventFilter", body_required=False)
def replay_events() -> Any:
    """Process every event matching the filters again (never duplicates; held events only when
    the status filter names them, and those of a paused group are held again)."""
    body = _body(schemas.event_filter)
    filters = {k: body[k] for k in EVENT_FILTERS if body.get(k)}
    done = event_log.replay_matching(
        gateway(),
        filters,
        body.get("limit"),
        every_event=body.get("all", False),
        dry_run=body.get("dry_run", False),
    )
    return jsonify(views.Replayed(**dataclasses.asdict(done)).body())


@bp.get("/records")
@operation("records", page=views.RecordObject, errors="503")
def list_record_objects() -> Any:
    """The objects of the embedded local store, each with how many records it holds."""
    objects = paging.in_memory(records.list_objects(gateway()), records.object_key)
    return _list(objects, records.object_key, lambda item: views.RecordObject.of(*item).body())


@bp.get("/records/<obj>")
@operation("records", page=views.Record, errors="422 503", query=openapi.RECORD_FILTERS)
def list_records(obj: str) -> Any:
    """The records of one object, by external id."""
    filters = {k: v for k in records.RECORD_FILTERS if (v := _single(k)) is not None}
    read = partial(records.list_records, gateway(), obj, filters)
    return _list(read, records.record_key, lambda record: views.Record.of(record).body())


@bp.get("/records/<obj>/<path:external_id>")
@operation("records", views.Record, errors="404 503")
def get_record(obj: str, external_id: str) -> Any:
    """A record in the embedded local store."""
    record = records.get_record(gateway(), obj, external_id)
    return jsonify(views.Record.of(record).body())


@bp.delete("/records/<obj>/<path:external_id>")
@operation("records", status=204, errors="404 503")
def delete_record(obj: str, external_id: str) -> Any:
    """Remove a record from the embedded local store."""
    records.delete_record(gateway(), obj, external_id)
    return "", 204


# --- targets -----------------------------------------------------------------------------


@bp.get("/targets")
@operation("targets", page=views.Target, errors="503")
def list_targets() -> Any:
    """The targets in use, each with the API usage it last reported, the default first."""
    targets = paging.in_memory(target_usage(gateway()), _target_key)
    return _list(targets, _target_key, views.Target.body)


def _target_key(target: views.Target) -> list[Any]:
    """The default target first, then the others by name, as ``target_usage`` orders them."""
    return [0 if target.default else 1, target.name]


TARGET_NAME = {
    "name": "A remote target: `salesforce`, `salesforce:<profile>`, `http` or `http:<profile>`."
}


@bp.get("/targets/<name>/credentials")
@operation("targets", views.TargetCredentialsView, errors="404 503", path=TARGET_NAME)
def get_target_credentials(name: str) -> Any:
    """Which credentials are stored for a remote target (hints only, never values)."""
    stored = gateway().credentials.get(name)
    if stored is None:
        raise NotFound.of("stored credentials for target", name)
    return jsonify(credentials.view(stored).body())


@bp.put("/targets/<name>/credentials")
@operation(
    "targets",
    views.TargetCredentialsView,
    errors="422 503",
    body="TargetCredentials",
    path=TARGET_NAME,
)
def put_target_credentials(name: str) -> Any:
    """Store a remote target's credentials, encrypted; they win over the environment."""
    body = _body(schemas.target_credentials)
    return jsonify(credentials.view(gateway().credentials.put(name, body)).body())


@bp.delete("/targets/<name>/credentials")
@operation("targets", status=204, errors="404 503", path=TARGET_NAME)
def delete_target_credentials(name: str) -> Any:
    """Forget a remote target's stored credentials (the environment's apply again)."""
    gateway().credentials.delete(name)
    return "", 204


def init_app(app: Flask) -> None:
    app.before_request(_authenticate)
    app.register_blueprint(bp)
    reference_page.init_app(app)
