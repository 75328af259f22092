"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /api/v1/openapi.json``.

Request bodies are described by the very schemas that validate them (``gateway.api.schemas``,
the connector profile and mapping document schemas shipped as package data), so the document
cannot drift from what the API accepts; response shapes are defined here, next to the table of
operations, and the tests hold both against the routes Flask serves and the bodies it answers.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from gateway.api import schemas
from gateway.models import EventStatus
from gateway.paging import DEFAULT_LIMIT, MAX_LIMIT

OPENAPI_PATH = "/api/v1/openapi.json"

DESCRIPTION = """\
A self-hosted inbound webhook gateway: providers POST to a group's callback URL, the gateway
verifies, stores and answers, then routes each event through mappings to a target.

Every call under `/api/v1`, this document included, needs
`Authorization: Bearer {GATEWAY_ADMIN_TOKEN}`; without it every path there answers 401, known
or not. The receive endpoint (`/hooks/{token}`) and the operational endpoints (`/healthz`,
`/readyz`, `/metrics`) take no admin token.

Every error answers `{"error": {"code", "message", "details"?}}`; validation errors (422) list
each problem in `details` as `{"path", "message"}`. Lists answer `{"items", "next_cursor"}`
and take `limit` (1 to 500, default 50) and `cursor`: pass `next_cursor` unchanged to get the
next page, until it is null. A cursor is bound to the list that gave it out; any other answers
400 `invalid_cursor`, and a bad `limit` 400 `invalid_limit`, each with `details`. A query
parameter that takes one value answers 400 `repeated_parameter` when given twice, `details`
naming it; one that takes several (the event log's `status`) counts every value given.
Secrets are write-only: responses show at most a masked `secret_hint`.
"""


def document(public_url: str) -> dict[str, Any]:
    """The whole document; the server is the gateway's public URL."""
    return copy.deepcopy(_build(public_url.rstrip("/")))


# --- schema helpers ----------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [{"type": "null"}, schema]}


def _closed(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object that has exactly these properties, all required unless named ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def _list_of(item: str) -> dict[str, Any]:
    return _closed({"items": {"type": "array", "items": _ref(item)}, "next_cursor": CURSOR})


def _package_schema(package: str, prefix: str, components: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema shipped in ``package``, its ``$defs`` hoisted into the components.

    Inside an OpenAPI document ``#`` is the document's root, so the schema's own
    ``#/$defs/x`` references are rewritten to point at the hoisted ``{prefix}.x`` components.
    """
    raw = json.loads((resources.files(package) / "schema.json").read_text("utf-8"))
    for key in ("$schema", "$id"):
        raw.pop(key, None)
    definitions = raw.pop("$defs", {})

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node = {**node, "$ref": f"#/components/schemas/{prefix}.{ref[len('#/$defs/') :]}"}
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite(value) for value in node]
        return node

    for name, definition in definitions.items():
        components[f"{prefix}.{name}"] = rewrite(definition)
    return rewrite(raw)  # type: ignore[no-any-return]


# --- response shapes ---------------------------------------------------------------------

TIME = {"type": "string", "format": "date-time"}
OPTIONAL_TIME = {"type": ["string", "null"], "format": "date-time"}
TEXT = {"type": "string"}
OPTIONAL_TEXT = {"type": ["string", "null"]}
STRINGS = {"type": "array", "items": TEXT}
CURSOR = {"type": ["string", "null"], "description": "Pass as `cursor` for the next page."}
ANY: dict[str, Any] = {"description": "Any JSON value."}
NUMERIC_ID = {"type": "string", "pattern": "^[0-9]+$"}
MAPPING_PIN = _closed({"name": TEXT, "version": {"type": ["integer", "null"], "minimum": 1}})

ERROR = _closed(
    {
        "error": _closed(
            {
                "code": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                "message": {"type": "string", "minLength": 1},
                "details": {
                    "type": "array",
                    "items": _closed({"path": TEXT, "message": TEXT}),
                },
            },
            optional=("details",),
        )
    }
)

GROUP = _closed(
    {
        "id": TEXT,
        "name": TEXT,
        "connector": TEXT,
        "function": TEXT,
        "external_id": OPTIONAL_TEXT,
        "events": STRINGS,
        "callback_url": {"type": "string", "format": "uri"},
        "template_webhook_id": OPTIONAL_TEXT,
        "active": {"type": "boolean"},
        "secret_hint": {
            "type": ["string", "null"],
            "description": "The secret's last four characters at most; never the secret.",
        },
        "previous_secret_expires_at": OPTIONAL_TIME,
        "target": OPTIONAL_TEXT,
        "created_at": TIME,
        "updated_at": TIME,
    }
)

WEBHOOK = _closed(
    {
        "id": TEXT,
        "group_id": TEXT,
        "label": TEXT,
        "events": STRINGS,
        "active": {"type": "boolean"},
        "filter": {**OPTIONAL_TEXT, "description": schemas.FILTER_DESCRIPTION},
        "mapping": _nullable(MAPPING_PIN),
        "is_template": {"type": "boolean"},
        "created_at": TIME,
        "updated_at": TIME,
    }
)

EVENT_SUMMARY_FIELDS: dict[str, Any] = {
    "id": NUMERIC_ID,
    "group_id": TEXT,
    "delivery_id": NUMERIC_ID,
    "type": TEXT,
    "status": {"enum": [status.value for status in EventStatus]},
    "received_at": TIME,
    "dedupe_key": TEXT,
    "attempts": {"type": "integer", "minimum": 0},
    "last_error": OPTIONAL_TEXT,
    "next_attempt_at": OPTIONAL_TIME,
    "processed_at": OPTIONAL_TIME,
}

HISTORY_ROW = _closed(
    {
        "attempt": {
            "type": "integer",
            "description": "The attempt's number; it keeps counting up across replays, while "
            "the event's `attempts` counts the current retry budget.",
        },
        "at": TIME,
        "status": TEXT,
        "webhook_id": OPTIONAL_TEXT,
        "mapping": _nullable(MAPPING_PIN),
        "upsert_key": OPTIONAL_TEXT,
        "target": OPTIONAL_TEXT,
        "object": OPTIONAL_TEXT,
        "external_id_field": {
            "type": ["string", "null"],
            "description": "The field of `object` that holds `external_id`, when `fields` is "
            "known.",
        },
        "external_id": OPTIONAL_TEXT,
        "outcome": {
            "type": ["string", "null"],
            "description": "Per upsert: `created`, `updated`, `failed`, `retry`, `stale`, or "
            "`skipped` (the message says why); null on a row for the whole event.",
        },
        "record_id": OPTIONAL_TEXT,
        "message": OPTIONAL_TEXT,
        "fields": {
            "type": ["object", "null"],
            "description": "The record as this upsert sent it to the target: the external id "
            "under `external_id_field`, a parent as its relationship field holding the "
            "parent's external id. A planned upsert that was not sent (`stale`, `skipped`) "
            "shows what it would have sent. Not stored: the mapping version named, which "
            "never changes, is evaluated on the stored event again. Null on a row that names "
            "no record the mapping planned, and when it cannot be worked out (`fields_note` "
            "says why).",
        },
        "fields_note": {
            "type": ["string", "null"],
            "description": "Why `fields` is null on a row that names a planned record: the "
            "mapping version is no longer stored, the group was deleted (its connector and "
            "function are unknown), or the version no longer maps the event as it did.",
        },
    }
)

EVENT_DETAIL = _closed(
    {
        **EVENT_SUMMARY_FIELDS,
        "payload": ANY,
        "headers": {
            "type": ["object", "null"],
            "additionalProperties": TEXT,
            "description": "The delivery's headers, as under `delivery`.",
        },
        "occurred_at": OPTIONAL_TIME,
        "delivery": _nullable(
            _closed(
                {
                    "id": NUMERIC_ID,
                    "received_at": TIME,
                    "remote_addr": OPTIONAL_TEXT,
                    "method": TEXT,
                    "content_type": OPTIONAL_TEXT,
                    "headers": {
                        "type": "object",
                        "additionalProperties": TEXT,
                        "description": "As received, lower-cased, with credentials removed.",
                    },
                    "size": {"type": "integer", "minimum": 0},
                }
            )
        ),
        "history": {"type": "array", "items": HISTORY_ROW},
    }
)

RECORD = _closed(
    {
        "object": TEXT,
        "external_id": TEXT,
        "external_id_field": TEXT,
        "fields": {"type": "object"},
        "created_at": TIME,
        "updated_at": TIME,
        "source_event_id": {"type": ["string", "null"], "pattern": "^[0-9]+$"},
    }
)

UPSERT = _closed(
    {
        "key": TEXT,
        "object": TEXT,
        "external_id_field": TEXT,
        "external_id": TEXT,
        "fields": {"type": "object"},
        "parent": _nullable(
            _closed({"relationship": TEXT, "external_id_field": TEXT, "external_id": TEXT})
        ),
        "order_value": ANY,
        "stale": {
            "type": ["boolean", "null"],
            "description": "For a stored event: true when processing would skip this upsert as "
            "older than what last wrote the record (`order_by`). Null for a bare payload, "
            "which has no group and so no target to look in.",
        },
        "last_written": _nullable(
            _closed(
                {
                    "order_value": {
                        **ANY,
                        "description": "The `order_by` value that last wrote the record.",
                    },
                    "event_id": NUMERIC_ID,
                }
            )
        ),
    }
)

SKIPPED_UPSERT = _closed(
    {
        "key": TEXT,
        "object": TEXT,
        "reason": {
            "type": "string",
            "description": "Its `when` is not true, its parent was skipped, or its `for_each` "
            "yields no items.",
        },
    }
)

PREVIEW_RESULT_FIELDS: dict[str, Any] = {
    "event_id": {"type": ["string", "null"]},
    "event_type": TEXT,
    "upserts": {"type": "array", "items": _ref("PlannedUpsert")},
    "skipped": {
        "type": "array",
        "items": SKIPPED_UPSERT,
        "description": "The mapping's upserts that make no record for this event, and why.",
    },
    "error": {
        "type": ["string", "null"],
        "description": "Why the mapping cannot plan this event, if it cannot.",
    },
    "changes": {
        "type": ["array", "null"],
        "items": {"type": "object"},
        "description": "For a candidate document: what it would send differently.",
    },
    "current_error": {"type": "string"},
}

PREVIEW_RESULT = _closed(PREVIEW_RESULT_FIELDS, optional=("changes", "current_error"))

PREVIEW_ANSWER = _closed(
    {
        "mapping": _closed(
            {
                "name": TEXT,
                "version": {"type": ["integer", "null"]},
                "candidate": {"type": "boolean"},
                "compared_to": {"type": ["integer", "null"]},
            }
        ),
        "results": {"type": "array", "items": _ref("PreviewResult")},
        # One event_id or payload previewed: its result is repeated at the top level.
        **PREVIEW_RESULT_FIELDS,
    },
    optional=tuple(PREVIEW_RESULT_FIELDS),
)

TARGET = _closed(
    {
        "name": TEXT,
        "default": {"type": "boolean"},
        "api_usage": _nullable(
            _closed(
                {
                    "used": {"type": "integer"},
                    "limit": {"type": "integer"},
                    "remaining": {"type": "integer", "minimum": 0},
                    "reported_at": OPTIONAL_TIME,
                }
            )
        ),
    }
)

TARGET_CREDENTIALS_VIEW = _closed(
    {
        "target": TEXT,
        "variables": {
            "type": "object",
            "description": "Each stored variable with a hint of its value, never the value.",
            "additionalProperties": {"type": ["string", "null"]},
        },
        "updated_at": {"type": "string", "format": "date-time"},
    }
)

RECEIPT = _closed(
    {
        "accepted": {"type": "integer", "minimum": 0},
        "duplicates": {"type": "integer", "minimum": 0},
        "ignored": {"type": "integer", "minimum": 0},
        "delivery_id": NUMERIC_ID,
    }
)


def _connector(profile: dict[str, Any]) -> dict[str, Any]:
    """A profile as the API shows it: its defaults spelled out and the events with samples."""
    return {
        **profile,
        "properties": {**profile["properties"], "samples": STRINGS},
        "required": [*profile["required"], "description", "content_types", "samples"],
    }


def _mapping(document: dict[str, Any]) -> dict[str, Any]:
    """A mapping version as the API shows it: the document's own fields, then its version."""
    extra = {
        "version": {"type": "integer", "minimum": 1},
        "document": _ref("MappingDocument"),
        "created_at": TIME,
    }
    return {
        **document,
        "properties": {**document["properties"], **extra},
        "required": [*document["required"], *extra],
    }


def _mapping_body(document: dict[str, Any]) -> dict[str, Any]:
    """The mapping document as PUT takes it: its name may be left to the URL, and a mapping as
    GET shows it may be sent back (``version`` then guards against a change made meanwhile)."""
    read_back = {
        "version": {
            "type": "integer",
            "minimum": 1,
            "maximum": schemas.MAX_INT32,
            "description": "The version this change was made to: 409 if the mapping has a"
            " newer one.",
        },
        "document": {
            "description": "GET's copy of the document: as read, or equal to the fields beside"
            " it (they are what is stored); 422 otherwise."
        },
        "created_at": {"description": "Ignored: when the version read was made."},
    }
    return {
        **document,
        "properties": {**document["properties"], **read_back},
        "required": [r for r in document["required"] if r != "name"],
    }


#: A request body for each body schema, shown to readers and tried first by API fuzzers.
EXAMPLES: dict[str, Any] = {
    "ConnectorProfile": {
        "name": "acme",
        "title": "Acme shop",
        "functions": [{"name": "webhooks", "events": ["order.created", "order.paid"]}],
        "verification": {
            "scheme": "hmac",
            "header": "X-Acme-Signature",
            "algorithm": "sha256",
            "encoding": "hex",
        },
        "events": {"type": {"jmespath": "type"}, "id": {"jmespath": "id"}},
    },
    "GroupCreate": {
        "name": "Warehouse moves",
        "connector": "xemelgo",
        "function": "webhooks",
        "events": ["inventory.moved"],
        "secret": "a-signing-secret-of-24-characters-or-more",
    },
    "GroupUpdate": {"events": ["inventory.moved", "inventory.cycle_count"], "active": True},
    "RotateSecret": {"secret": "the-new-signing-secret-0123456789", "previous_valid_for_s": 3600},
    "WebhookClone": {"label": "Moves", "events": ["inventory.moved"], "mapping": "items"},
    "WebhookUpdate": {"active": False},
    "MappingDocumentBody": {
        "description": "Each moved item becomes an Item__c record.",
        "upserts": [
            {
                "key": "item",
                "object": "Item__c",
                "external_id_field": "Item_Id__c",
                "external_id": "payload.data.itemId",
                "fields": {"Location__c": "payload.data.location"},
            }
        ],
    },
    "Preview": {
        "event_type": "inventory.moved",
        "payload": {"data": {"itemId": "A-1", "location": "Dock 3"}},
    },
    "EventFilter": {"status": "failed,dead", "since": "2026-01-01T00:00:00Z"},
    "TargetCredentials": {
        "SALESFORCE_USERNAME": "integration@example.com",
        "SALESFORCE_CONSUMER_KEY": "3MVG9-example-consumer-key",
        "SALESFORCE_PRIVATE_KEY_FILE": "/etc/gateway/salesforce.key",
    },
}


# --- responses ---------------------------------------------------------------------------

ERROR_RESPONSES = {
    "400": (
        "BadRequest",
        "The request is malformed: a body that is not a JSON object, or a bad query parameter"
        " (`invalid_limit`, `invalid_cursor`, `repeated_parameter`: `details` names it).",
    ),
    "401": ("Unauthorized", "No valid `Authorization: Bearer` admin token."),
    "404": (
        "NotFound",
        "No such resource; the message names its kind and quotes its id: `no event '42'`.",
    ),
    "409": ("Conflict", "The request conflicts with the resource's current state."),
    "413": (
        "PayloadTooLarge",
        "The body is larger than `GATEWAY_MAX_BODY_BYTES` (a delivery) or four times that (an"
        " admin request).",
    ),
    "422": ("ValidationFailed", "The body or a filter is not valid; `details` says where."),
    "503": ("Unavailable", "The database is unavailable; retry after `Retry-After` seconds."),
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(ok: dict[str, dict[str, Any]], errors: str) -> dict[str, Any]:
    """``ok`` by status, then the shared error responses named by ``errors`` ("400 404...")."""
    answers: dict[str, Any] = dict(ok)
    for status in errors.split():
        answers[status] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
    return dict(sorted(answers.items()))


def _error_components() -> dict[str, Any]:
    components = {}
    for status, (name, description) in ERROR_RESPONSES.items():
        components[name] = _json(_ref("Error"), description)
        if status == "503":
            components[name]["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}
            }
    return components


# --- parameters --------------------------------------------------------------------------


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


PAGE = [
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "Items per page.",
    ),
    _query(
        "cursor",
        {"type": "string"},
        "The `next_cursor` of the previous page of this same list, unchanged.",
    ),
]
GROUP_ID = _path("group_id", "The group's id.")
WEBHOOK_ID = _path("webhook_id", "The webhook record's id.")
EVENT_ID = _path("event_id", "The event's id.")
MAPPING_NAME = _path("name", "The mapping's name.")
TARGET_NAME = _path("name", "A remote target: `salesforce` or `salesforce:<profile>`.")
EVENT_FILTERS = [
    _query("group_id", {"type": "string"}, "Only this group's events."),
    _query("type", {"type": "string"}, "Only events of this type."),
    {
        **_query(
            "status",
            {"type": "array", "items": {"type": "string"}},
            "Only events in any of these statuses: "
            + ", ".join(status.value for status in EventStatus)
            + ". Repeat the parameter (`status=failed&status=dead`), comma-separate the"
            " statuses (`status=failed,dead`), or both.",
        ),
        "style": "form",
        "explode": True,
    },
    _query(
        "since",
        {"type": "string", "format": "date-time"},
        "Received at or after this ISO 8601 time.",
    ),
    _query("until", {"type": "string", "format": "date-time"}, "Received before this time."),
]


# --- operations --------------------------------------------------------------------------


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: str | None = None,
    body_required: bool = True,
    public: bool = False,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
    }
    if parameters:
        operation["parameters"] = parameters
    if body:
        media: dict[str, Any] = {"schema": _ref(body)}
        if body in EXAMPLES:
            media["example"] = EXAMPLES[body]
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": media},
        }
        responses = _responses(responses, "413")
    if parameters and "400" not in responses and not public:
        # A parameter holding U+0000 is refused before anything is looked up.
        responses = _responses(responses, "400")
    operation["responses"] = responses
    if public:
        operation["security"] = []
    return operation


def _admin_paths() -> dict[str, dict[str, Any]]:
    ok = {
        "group": {"200": _json(_ref("Group"), "The group.")},
        "webhook": {"200": _json(_ref("Webhook"), "The webhook record.")},
        "event": {"200": _json(_ref("EventSummary"), "The event, queued again.")},
        "deleted": {"204": {"description": "Deleted."}},
    }
    return {
        "/api/v1/openapi.json": {
            "get": _operation(
                "getOpenApi",
                "This document",
                "meta",
                _responses({"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")}, "401"),
            )
        },
        "/api/v1/connectors": {
            "get": _operation(
                "listConnectors",
                "The connector profiles, shipped and custom",
                "connectors",
                _responses(
                    {"200": _json(_ref("ConnectorList"), "A page of profiles, by name.")},
                    "400 401 503",
                ),
                parameters=PAGE,
            ),
            "post": _operation(
                "registerConnector",
                "Register a custom connector profile",
                "connectors",
                _responses(
                    {"201": _json(_ref("Connector"), "The registered profile.")},
                    "400 401 409 422 503",
                ),
                body="ConnectorProfile",
            ),
        },
        "/api/v1/connectors/{name}": {
            "get": _operation(
                "getConnector",
                "One connector profile",
                "connectors",
                _responses({"200": _json(_ref("Connector"), "The profile.")}, "401 404 503"),
                parameters=[_path("name", "The connector's name.")],
            )
        },
        "/api/v1/groups": {
            "get": _operation(
                "listGroups",
                "The webhook groups, by id",
                "groups",
                _responses({"200": _json(_ref("GroupList"), "A page of groups.")}, "400 401 503"),
                parameters=PAGE,
            ),
            "post": _operation(
                "createGroup",
                "Create a webhook group with its callback URL and blank template record",
                "groups",
                _responses({"201": _json(_ref("Group"), "The new group.")}, "400 401 422 503"),
                body="GroupCreate",
            ),
        },
        "/api/v1/groups/{group_id}": {
            "get": _operation(
                "getGroup",
                "One group",
                "groups",
                _responses(ok["group"], "401 404 503"),
                parameters=[GROUP_ID],
            ),
            "patch": _operation(
                "updateGroup",
                "Change a group (name, events, secret, active, target...)",
                "groups",
                _responses(ok["group"], "400 401 404 422 503"),
                parameters=[GROUP_ID],
                body="GroupUpdate",
                body_required=False,
            ),
            "delete": _operation(
                "deleteGroup",
                "Delete a group and its webhook records",
                "groups",
                _responses(ok["deleted"], "401 404 503"),
                parameters=[GROUP_ID],
            ),
        },
        "/api/v1/groups/{group_id}/rotate-url": {
            "post": _operation(
                "rotateGroupUrl",
                "A new callback URL; the old one stops working",
                "groups",
                _responses(ok["group"], "401 404 503"),
                parameters=[GROUP_ID],
            )
        },
        "/api/v1/groups/{group_id}/rotate-secret": {
            "post": _operation(
                "rotateGroupSecret",
                "A new secret; the previous one is still accepted for `previous_valid_for_s`",
                "groups",
                _responses(ok["group"], "400 401 404 422 503"),
                parameters=[GROUP_ID],
                body="RotateSecret",
            )
        },
        "/api/v1/groups/{group_id}/webhooks": {
            "get": _operation(
                "listGroupWebhooks",
                "A group's webhook records, the template first",
                "webhooks",
                _responses(
                    {"200": _json(_ref("WebhookList"), "A page of the group's records.")},
                    "400 401 404 503",
                ),
                parameters=[GROUP_ID, *PAGE],
            )
        },
        "/api/v1/webhooks/{webhook_id}": {
            "get": _operation(
                "getWebhook",
                "One webhook record",
                "webhooks",
                _responses(ok["webhook"], "401 404 503"),
                parameters=[WEBHOOK_ID],
            ),
            "patch": _operation(
                "updateWebhook",
                "Change a webhook record (the template takes only a new label)",
                "webhooks",
                _responses(ok["webhook"], "400 401 404 409 422 503"),
                parameters=[WEBHOOK_ID],
                body="WebhookUpdate",
                body_required=False,
            ),
            "delete": _operation(
                "deleteWebhook",
                "Delete a webhook record (never the template)",
                "webhooks",
                _responses(ok["deleted"], "401 404 409 503"),
                parameters=[WEBHOOK_ID],
            ),
        },
        "/api/v1/webhooks/{webhook_id}/clone": {
            "post": _operation(
                "cloneWebhook",
                "Clone a record (or the template) into a new webhook record",
                "webhooks",
                _responses(
                    {"201": _json(_ref("Webhook"), "The new record.")}, "400 401 404 422 503"
                ),
                parameters=[WEBHOOK_ID],
                body="WebhookClone",
            )
        },
        "/api/v1/mappings": {
            "get": _operation(
                "listMappings",
                "The newest version of every mapping document",
                "mappings",
                _responses(
                    {"200": _json(_ref("MappingList"), "A page of mappings, by name.")},
                    "400 401 503",
                ),
                parameters=PAGE,
            )
        },
        "/api/v1/mappings/{name}": {
            "get": _operation(
                "getMapping",
                "A mapping document, its newest version unless `version` is given",
                "mappings",
                _responses(
                    {"200": _json(_ref("Mapping"), "The mapping version.")}, "400 401 404 503"
                ),
                parameters=[
                    MAPPING_NAME,
                    _query(
                        "version",
                        {"type": "integer", "minimum": 1, "maximum": schemas.MAX_INT32},
                        "A version to show.",
                    ),
                ],
            ),
            "put": _operation(
                "putMapping",
                "Create or change a mapping document (a new version each change)",
                "mappings",
                _responses(
                    {
                        "200": _json(_ref("Mapping"), "Changed or unchanged: the newest version."),
                        "201": _json(_ref("Mapping"), "Created: its first version."),
                    },
                    "400 401 409 422 503",
                ),
                parameters=[MAPPING_NAME],
                body="MappingDocumentBody",
            ),
        },
        "/api/v1/mappings/{name}/versions": {
            "get": _operation(
                "listMappingVersions",
                "Every version of a mapping document, newest first",
                "mappings",
                _responses(
                    {"200": _json(_ref("MappingList"), "A page of versions.")}, "400 401 404 503"
                ),
                parameters=[MAPPING_NAME, *PAGE],
            )
        },
        "/api/v1/mappings/{name}/preview": {
            "post": _operation(
                "previewMapping",
                "The upserts a mapping (or a candidate document) would make; nothing is written",
                "mappings",
                _responses(
                    {"200": _json(_ref("PreviewAnswer"), "What would be upserted.")},
                    "400 401 404 422 503",
                ),
                parameters=[MAPPING_NAME],
                body="Preview",
                body_required=False,
            )
        },
        "/api/v1/events": {
            "get": _operation(
                "listEvents",
                "The event log, newest first",
                "events",
                _responses(
                    {"200": _json(_ref("EventList"), "A page of events.")}, "400 401 422 503"
                ),
                parameters=[*EVENT_FILTERS, *PAGE],
            )
        },
        "/api/v1/events/{event_id}": {
            "get": _operation(
                "getEvent",
                "One event with its payload, its delivery's headers and its history",
                "events",
                _responses({"200": _json(_ref("EventDetail"), "The event.")}, "401 404 503"),
                parameters=[EVENT_ID],
            )
        },
        "/api/v1/events/{event_id}/replay": {
            "post": _operation(
                "replayEvent",
                "Process one event again (it stays ignored while its group does not register "
                "its type)",
                "events",
                _responses(ok["event"], "401 404 409 503"),
                parameters=[EVENT_ID],
            )
        },
        "/api/v1/events/replay": {
            "post": _operation(
                "replayEvents",
                "Process every event matching the filters again (never duplicates)",
                "events",
                _responses(
                    {
                        "200": _json(
                            _closed(
                                {
                                    "replayed": {"type": "integer", "minimum": 0},
                                    "ignored": {
                                        "type": "integer",
                                        "minimum": 0,
                                        "description": "How many of them stay `ignored`: their "
                                        "group does not register their type (yet).",
                                    },
                                    "matched": {"type": "integer", "minimum": 0},
                                    "dry_run": {"type": "boolean"},
                                }
                            ),
                            "How many events were taken again; each is queued, or ignored as "
                            "on receipt when its group does not register its type.",
                        )
                    },
                    "400 401 422 503",
                ),
                body="EventFilter",
                body_required=False,
            )
        },
        "/api/v1/records/{object}/{external_id}": {
            "get": _operation(
                "getRecord",
                "A record in the embedded local store",
                "records",
                _responses({"200": _json(_ref("Record"), "The record.")}, "401 404 503"),
                parameters=[
                    _path("object", "The record's object, such as `Account`."),
                    _path("external_id", "Its external id."),
                ],
            )
        },
        "/api/v1/targets/{name}/credentials": {
            "get": _operation(
                "getTargetCredentials",
                "Which credentials are stored for a remote target (hints only, never values)",
                "targets",
                _responses(
                    {"200": _json(_ref("TargetCredentialsView"), "The stored variables.")},
                    "401 404 503",
                ),
                parameters=[TARGET_NAME],
            ),
            "put": _operation(
                "putTargetCredentials",
                "Store a remote target's credentials, encrypted; they win over the environment",
                "targets",
                _responses(
                    {"200": _json(_ref("TargetCredentialsView"), "The stored variables.")},
                    "400 401 422 503",
                ),
                parameters=[TARGET_NAME],
                body="TargetCredentials",
            ),
            "delete": _operation(
                "deleteTargetCredentials",
                "Forget a remote target's stored credentials (the environment's apply again)",
                "targets",
                _responses(ok["deleted"], "401 404 503"),
                parameters=[TARGET_NAME],
            ),
        },
        "/api/v1/targets": {
            "get": _operation(
                "listTargets",
                "The targets in use, each with the API usage it last reported",
                "targets",
                _responses(
                    {"200": _json(_ref("TargetList"), "A page of targets, the default first.")},
                    "400 401 503",
                ),
                parameters=PAGE,
            )
        },
    }


def _other_paths() -> dict[str, dict[str, Any]]:
    receive = _operation(
        "receive",
        "Receive a delivery from a provider",
        "receive",
        _responses(
            {"200": _json(_ref("Receipt"), "Stored durably: the counts of its events.")},
            "400 404 413 503",
        )
        | {
            "401": _json(
                _ref("Error"),
                "The signature, timestamp or API key is wrong or missing; the expected "
                "signature is never shown.",
            )
        },
        parameters=[_path("token", "The group's callback token.")],
        public=True,
    )
    receive["description"] = (
        "The body is kept byte for byte and verified as the group's connector signs; its "
        "content type must be JSON or one the connector profile lists. Signature, timestamp "
        "and API key headers depend on the connector."
    )
    receive["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": ANY}},
    }
    return {
        "/hooks/{token}": {
            "post": receive,
            "put": {**receive, "operationId": "receiveByPut"},
        },
        "/healthz": {
            "get": _operation(
                "healthz",
                "The process is alive",
                "operations",
                {"200": _json(_closed({"status": {"const": "ok"}}), "Alive.")},
                public=True,
            )
        },
        "/readyz": {
            "get": _operation(
                "readyz",
                "The database is reachable",
                "operations",
                _responses(
                    {
                        "200": _json(
                            _closed({"status": {"const": "ready"}, "database": {"const": "ok"}}),
                            "Ready.",
                        )
                    },
                    "503",
                ),
                public=True,
            )
        },
        "/metrics": {
            "get": _operation(
                "metrics",
                "Prometheus metrics",
                "operations",
                {
                    "200": {
                        "description": "The Prometheus text exposition format; while the"
                        " database cannot be read, the counters and `gateway_database_up 0`"
                        " in place of the gauges.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                public=True,
            )
        },
    }


@functools.cache
def _build(public_url: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    profile = _package_schema("gateway.connectors", "ConnectorProfile", components)
    mapping_document = _package_schema("gateway.mapping", "MappingDocument", components)
    components.update(
        {
            # Request bodies: the schemas the API validates with.
            "ConnectorProfile": profile,
            "MappingDocument": mapping_document,
            "MappingDocumentBody": _mapping_body(mapping_document),
            "GroupCreate": schemas.GROUP_CREATE,
            "GroupUpdate": schemas.GROUP_UPDATE,
            "RotateSecret": schemas.ROTATE_SECRET,
            "WebhookClone": schemas.WEBHOOK_CLONE,
            "WebhookUpdate": schemas.WEBHOOK_UPDATE,
            "Preview": schemas.PREVIEW,
            "EventFilter": schemas.EVENT_FILTER,
            "TargetCredentials": schemas.TARGET_CREDENTIALS,
            # Responses.
            "Error": ERROR,
            "Connector": _connector(profile),
            "ConnectorList": _list_of("Connector"),
            "Group": GROUP,
            "GroupList": _list_of("Group"),
            "Webhook": WEBHOOK,
            "WebhookList": _list_of("Webhook"),
            "Mapping": _mapping(mapping_document),
            "MappingList": _list_of("Mapping"),
            "EventSummary": _closed(EVENT_SUMMARY_FIELDS),
            "EventList": _list_of("EventSummary"),
            "EventDetail": EVENT_DETAIL,
            "Record": RECORD,
            "PlannedUpsert": UPSERT,
            "PreviewResult": PREVIEW_RESULT,
            "PreviewAnswer": PREVIEW_ANSWER,
            "Target": TARGET,
            "TargetList": _list_of("Target"),
            "TargetCredentialsView": TARGET_CREDENTIALS_VIEW,
            "Receipt": RECEIPT,
        }
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Webhook gateway API",
            "version": "1",
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": public_url or "/"}],
        "security": [{"bearer": []}],
        "tags": [
            {"name": name}
            for name in (
                "connectors",
                "groups",
                "webhooks",
                "mappings",
                "events",
                "records",
                "targets",
                "receive",
                "operations",
                "meta",
            )
        ],
        "paths": {**_admin_paths(), **_other_paths()},
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token, `GATEWAY_ADMIN_TOKEN`.",
                }
            },
            "schemas": components,
            "responses": _error_components(),
        },
    }
