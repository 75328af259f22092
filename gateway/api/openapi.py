"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /api/v1/openapi.json``.

Generated, not written: the paths are the app's routes, each operation is what its view
declares with :func:`operation` (the summary is the view's docstring), answers are described
by the typed views of ``gateway.views`` that make them, and request bodies by the very schemas
that validate them (``gateway.api.schemas``, the connector profile and mapping document schemas
shipped as package data). A route that declares nothing fails the document, so none is left out.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from gateway import views
from gateway.api import schemas
from gateway.models import DeliveryOutcome, EventStatus
from gateway.paging import DEFAULT_LIMIT, MAX_LIMIT

OPENAPI_PATH = "/api/v1/openapi.json"
#: The routes the document describes: the admin API and the operational endpoints.
DESCRIBED_PREFIXES = ("/api/v1/", "/healthz", "/readyz", "/metrics")

DESCRIPTION = """\
A self-hosted inbound webhook gateway: providers POST to a group's callback URL, the gateway
verifies, stores and answers, then routes each event through mappings to a target.

Every call under `/api/v1` needs `Authorization: Bearer {GATEWAY_ADMIN_TOKEN}`; without it
every path there answers 401, known or not, but this document and its reference page
(`/api/v1/docs`), which hold no secret. The receive endpoint (`/hooks/{token}`) and the
operational endpoints (`/healthz`, `/readyz`, `/metrics`) take no admin token; `/metrics`
takes `GATEWAY_METRICS_TOKEN` when it is set.

Every error answers `{"error": {"code", "message", "details"?}}`; validation errors (422) list
each problem in `details` as `{"path", "message"}`. Lists answer `{"items", "next_cursor"}`
and take `limit` (1 to 500, default 50) and `cursor`: pass `next_cursor` unchanged to get the
next page, until it is null. A cursor is bound to the list that gave it out; any other answers
400 `invalid_cursor`, and a bad `limit` 400 `invalid_limit`, each with `details`. A query
parameter that takes one value answers 400 `repeated_parameter` when given twice, `details`
naming it; one that takes several (the event log's `status`) counts every value given.
Secrets are write-only: responses show at most a masked `secret_hint`.
"""

TAGS = (
    "connectors",
    "groups",
    "webhooks",
    "mappings",
    "events",
    "deliveries",
    "records",
    "targets",
    "receive",
    "operations",
    "meta",
)

#: An answer: a typed view, the name of a component schema, None for no body, or a whole
#: OpenAPI response object.
Answer = type[BaseModel] | str | Mapping[str, Any] | None
View = TypeVar("View", bound=Callable[..., Any])


class Undeclared(LookupError):
    """A route serves an operation that no view declares with :func:`operation`."""


# --- declarations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """What the document says of one view, besides its route and docstring."""

    tag: str
    #: The answer by success status.
    ok: Mapping[int, Answer]
    #: The error statuses it may answer besides those every operation of its kind may (401 for
    #: the admin API, 400 for a path parameter holding U+0000, 413 for a body).
    errors: tuple[int, ...] = ()
    #: A list: the answer is a page of these, and the operation takes ``limit`` and ``cursor``.
    page: Answer = None
    body: str | None = None
    body_required: bool = True
    query: tuple[Mapping[str, Any], ...] = ()
    #: Descriptions of path parameters where the shared ones (``PATH_PARAMETERS``) do not fit.
    path: Mapping[str, str] = field(default_factory=dict)
    #: Taken without the admin token.
    public: bool = False
    #: Where it is served outside Flask's routes: the path template and its methods.
    served_at: tuple[str, tuple[str, ...]] | None = None


#: Every declared view with its operation.
_DECLARED: dict[Callable[..., Any], Operation] = {}


def operation(
    tag: str,
    ok: Answer = None,
    *,
    status: int = 200,
    more: Mapping[int, Answer] | None = None,
    errors: str = "",
    page: Answer = None,
    body: str | None = None,
    body_required: bool = True,
    query: Sequence[Mapping[str, Any]] = (),
    path: Mapping[str, str] | None = None,
    public: bool = False,
    served_at: tuple[str, Iterable[str]] | None = None,
) -> Callable[[View], View]:
    """Declare a view's operation for the document: its tag, its answer (``ok`` at ``status``,
    ``more`` by other statuses, or a page of ``page``), the error statuses it adds
    (``"404 409"``), its request body (a component name), query parameters and path parameter
    descriptions."""
    answers = {} if page is not None else {status: ok}
    answers.update(more or {})
    declared = Operation(
        tag=tag,
        ok=answers,
        errors=tuple(int(code) for code in errors.split()),
        page=page,
        body=body,
        body_required=body_required,
        query=tuple(query),
        path=dict(path or {}),
        public=public,
        served_at=None if served_at is None else (served_at[0], tuple(served_at[1])),
    )

    def declare(view: View) -> View:
        _DECLARED[view] = declared
        return view

    return declare


def query_parameter(name: str, schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": dict(schema),
    }


def time_window(since: str, until: str, happened: str) -> tuple[dict[str, Any], ...]:
    """The two parameters of a time window: from ``since`` on, up to ``until`` left out."""
    moment = {"type": "string", "format": "date-time"}
    return (
        query_parameter(since, moment, f"{happened} at or after this ISO 8601 time."),
        query_parameter(until, moment, f"{happened} before this time."),
    )


PAGE = (
    query_parameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "Items per page.",
    ),
    query_parameter(
        "cursor",
        {"type": "string"},
        "The `next_cursor` of the previous page of this same list, unchanged.",
    ),
)
EVENT_FILTERS = (
    query_parameter("group_id", {"type": "string"}, "Only this group's events."),
    query_parameter("type", {"type": "string"}, "Only events of this type."),
    {
        **query_parameter(
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
    *time_window("since", "until", "Received"),
    query_parameter(
        "contains",
        {"type": "string"},
        "Only events whose payload holds this text (ignoring case), in a key or a value.",
    ),
)
RECORD_FILTERS = (
    query_parameter(
        "field",
        {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"},
        "With `value`: only records whose field of this name has that value.",
    ),
    query_parameter(
        "value",
        {"type": "string"},
        "With `field`: the value, compared as text (`42` matches the number 42).",
    ),
    *time_window("updated_since", "updated_until", "Last written"),
    query_parameter(
        "contains",
        {"type": "string"},
        "Only records whose external id or fields hold this text, ignoring case.",
    ),
)
DELIVERY_FILTERS = (
    query_parameter("group_id", {"type": "string"}, "Only this group's deliveries."),
    query_parameter(
        "outcome",
        {"type": "string", "enum": [outcome.value for outcome in DeliveryOutcome]},
        "Only accepted, or only refused, deliveries.",
    ),
    query_parameter(
        "status",
        {"type": "integer", "minimum": 100, "maximum": 599},
        "Only deliveries answered this HTTP status.",
    ),
    *EVENT_FILTERS[3:],
)
#: Path parameters by name, as most routes mean them; a declaration may say otherwise.
PATH_PARAMETERS = {
    "group_id": "The group's id.",
    "webhook_id": "The webhook record's id.",
    "event_id": "The event's id.",
    "delivery_id": "The delivery's id.",
    "obj": "The record's object, such as `Account`.",
    "external_id": "The record's external id.",
    "token": "The group's callback token.",
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
    "OAuthClientCreate": {"name": "Xemelgo production"},
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

ERROR_RESPONSES = {
    400: (
        "BadRequest",
        "The request is malformed: a body that is not a JSON object, or a bad query parameter"
        " (`invalid_limit`, `invalid_cursor`, `repeated_parameter`: `details` names it).",
    ),
    401: ("Unauthorized", "No valid `Authorization: Bearer` admin token."),
    404: (
        "NotFound",
        "No such resource; the message names its kind and quotes its id: `no event '42'`.",
    ),
    409: ("Conflict", "The request conflicts with the resource's current state."),
    413: (
        "PayloadTooLarge",
        "The body is larger than `GATEWAY_MAX_BODY_BYTES` (a delivery) or four times that (an"
        " admin request).",
    ),
    422: ("ValidationFailed", "The body or a filter is not valid; `details` says where."),
    502: (
        "ChannelFailed",
        "`channel_failed`: the alert channel refused the message or was out"
        " of reach; the message says what it answered.",
    ),
    503: ("Unavailable", "The database is unavailable; retry after `Retry-After` seconds."),
}


# --- the document ----------------------------------------------------------------------------


def document(app: Flask) -> dict[str, Any]:
    """The whole document for ``app``'s routes; the server is the gateway's public URL."""
    built = app.extensions.get("openapi")
    if built is None:
        built = app.extensions["openapi"] = _build(app)
    return copy.deepcopy(built)


def _build(app: Flask) -> dict[str, Any]:
    public_url: str = app.extensions["gateway"].settings.public_url.rstrip("/")
    components = _request_components()
    paths: dict[str, dict[str, Any]] = {}
    for path, method, view in _routes(app):
        declared = _declaration(view, method, path)
        item = paths.setdefault(path, {})
        item[method.lower()] = _operation(view, method, path, declared, components)
    components.update(_view_components())
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
        "tags": [{"name": name} for name in TAGS],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token, `GATEWAY_ADMIN_TOKEN`.",
                }
            },
            "schemas": dict(sorted(components.items())),
            "responses": _error_components(),
        },
    }


def _routes(app: Flask) -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """Every described route as (path template, method, view): Flask's, and those served in
    front of it."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if rule.rule.startswith(DESCRIBED_PREFIXES):
            for method in sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"}):
                yield _template(rule.rule), method, app.view_functions[rule.endpoint]
    for view, declared in _DECLARED.items():
        if declared.served_at is not None:
            path, methods = declared.served_at
            for method in methods:
                yield path, method, view


def _template(rule: str) -> str:
    """A werkzeug rule as an OpenAPI path: ``<path:external_id>`` is ``{external_id}``."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _declaration(view: Callable[..., Any], method: str, path: str) -> Operation:
    try:
        return _DECLARED[view]
    except KeyError:
        raise Undeclared(
            f"{method} {path} ({view.__module__}.{view.__qualname__}) declares no operation:"
            " decorate the view with gateway.api.openapi.operation"
        ) from None


def _operation(
    view: Callable[..., Any],
    method: str,
    path: str,
    declared: Operation,
    components: dict[str, Any],
) -> dict[str, Any]:
    summary, _, description = (inspect.getdoc(view) or "").partition("\n\n")
    if not summary:
        raise Undeclared(f"{method} {path}: its view needs a docstring, the operation's summary")
    operation: dict[str, Any] = {
        "operationId": _operation_id(view, method, declared),
        "summary": " ".join(summary.split()).rstrip("."),
        "tags": [declared.tag],
    }
    if description:
        operation["description"] = " ".join(description.split())
    parameters: list[Mapping[str, Any]] = [
        _path_parameter(name, declared) for name in re.findall(r"\{(\w+)\}", path)
    ]
    parameters += declared.query
    if declared.page is not None:
        parameters += PAGE
    if parameters:
        operation["parameters"] = parameters
    if declared.body is not None:
        media: dict[str, Any] = {"schema": _ref(declared.body)}
        if declared.body in EXAMPLES:
            media["example"] = EXAMPLES[declared.body]
        operation["requestBody"] = {
            "required": declared.body_required,
            "content": {"application/json": media},
        }
    operation["responses"] = _responses(declared, path, components)
    if declared.public:
        operation["security"] = []
    return operation


def _operation_id(view: Callable[..., Any], method: str, declared: Operation) -> str:
    """The view's name in camelCase; a view served for several methods adds ``By<Method>``
    to each but the first it names."""
    head, *rest = view.__name__.strip("_").split("_")
    name = head + "".join(word.capitalize() for word in rest)
    if declared.served_at is None or method == declared.served_at[1][0]:
        return name
    return f"{name}By{method.capitalize()}"


def _path_parameter(name: str, declared: Operation) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": declared.path.get(name) or PATH_PARAMETERS.get(name, f"The {name}."),
        "schema": {"type": "string", "minLength": 1},
    }


def _responses(declared: Operation, path: str, components: dict[str, Any]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status, answer in declared.ok.items():
        answers[str(status)] = _answer(answer, components)
    if declared.page is not None:
        answers["200"] = _answer(_page_component(declared.page, components), components)
    errors = set(declared.errors)
    if not declared.public:
        errors.add(401)
        if "{" in path or declared.page is not None:
            errors.add(400)  # a parameter holding U+0000, a bad limit or cursor
    if declared.body is not None:
        errors |= {400, 413}  # a body that is not a JSON object, or one too large
    for status in errors:
        answers[str(status)] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
    return dict(sorted(answers.items()))


def _answer(answer: Answer, components: dict[str, Any]) -> dict[str, Any]:
    if answer is None:
        return {"description": "No content."}
    if isinstance(answer, Mapping):
        return dict(answer)
    if isinstance(answer, str):
        description = components.get(answer, {}).get("description") or answer
        return _json(_ref(answer), _first_sentence(description))
    return _json(_ref(answer.__name__), _first_sentence(inspect.getdoc(answer) or answer.__name__))


def _page_component(item: Answer, components: dict[str, Any]) -> str:
    """The name of the list component of ``item``: ``{"items", "next_cursor"}``."""
    name = item if isinstance(item, str) else getattr(item, "__name__", "")
    components[f"{name}List"] = {
        "description": f"A page of {name} items.",
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": _ref(name)},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page.",
            },
        },
        "required": ["items", "next_cursor"],
        "additionalProperties": False,
    }
    return f"{name}List"


def _first_sentence(text: str) -> str:
    return " ".join(text.split("\n\n")[0].split())


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error_components() -> dict[str, Any]:
    components = {}
    for status, (name, description) in ERROR_RESPONSES.items():
        components[name] = _json(_ref("Error"), description)
        if status == 503:
            components[name]["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}
            }
    return components


# --- component schemas -----------------------------------------------------------------------


class _Untitled(GenerateJsonSchema):
    """Pydantic's schemas without the titles it derives from field names: names say it."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _view_components() -> dict[str, Any]:
    """Every typed view's schema, each nested view a component of its own."""
    models = {
        answer
        for declared in _DECLARED.values()
        for answer in (*declared.ok.values(), declared.page)
        if isinstance(answer, type)
    }
    models.add(views.Error)
    _, schema = models_json_schema(
        [(model, "serialization") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
        schema_generator=_Untitled,
    )
    return {name: _without_titles(definition) for name, definition in schema["$defs"].items()}


def _without_titles(definition: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in definition.items() if key != "title"}


def _request_components() -> dict[str, Any]:
    """The request bodies, as the API validates them, and the shapes derived from them."""
    components: dict[str, Any] = {}
    profile = _package_schema("gateway.connectors", "ConnectorProfile", components)
    mapping_document = _package_schema("gateway.mapping", "MappingDocument", components)
    components.update(
        {
            "ConnectorProfile": profile,
            "MappingDocument": mapping_document,
            "MappingDocumentBody": _mapping_body(mapping_document),
            "GroupCreate": schemas.GROUP_CREATE,
            "GroupUpdate": schemas.GROUP_UPDATE,
            "RotateSecret": schemas.ROTATE_SECRET,
            "OAuthClientCreate": schemas.OAUTH_CLIENT_CREATE,
            "WebhookClone": schemas.WEBHOOK_CLONE,
            "WebhookUpdate": schemas.WEBHOOK_UPDATE,
            "Preview": schemas.PREVIEW,
            "EventFilter": schemas.EVENT_FILTER,
            "TargetCredentials": schemas.TARGET_CREDENTIALS,
            "AlertObject": {
                "description": "An alert channel, rule or incident (docs/alerts.md).",
                "type": "object",
            },
            "DeliveryBody": {
                "description": "What the sender posts, kept byte for byte: JSON, or a media"
                " type the connector profile lists."
            },
            # Answers that are a request body's document as the API shows it.
            "Connector": _connector(profile),
            "ConnectorWithHistory": _connector_with_history(_connector(profile)),
            "ConnectorProfileBody": _connector_body(profile),
            "Mapping": _mapping(mapping_document),
        }
    )
    return components


def _package_schema(package: str, prefix: str, components: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema shipped in ``package``, its ``$defs`` hoisted into the components.

    Inside an OpenAPI document ``#`` is the document's root, so the schema's own
    ``#/$defs/x`` references are rewritten to point at the hoisted ``{prefix}X`` components,
    named without dots or dashes, and its boolean subschemas are spelled as objects: client
    generators take neither.
    """
    raw = json.loads((resources.files(package) / "schema.json").read_text("utf-8"))
    for key in ("$schema", "$id", "title"):  # a title would name a client's class twice
        raw.pop(key, None)
    definitions = raw.pop("$defs", {})

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node = {**node, "$ref": "#/components/schemas/" + name(ref[len("#/$defs/") :])}
            return {
                key: _as_schemas(value) if key in SCHEMA_MAPS else value
                for key, value in ((key, rewrite(value)) for key, value in node.items())
            }
        if isinstance(node, list):
            return [rewrite(value) for value in node]
        return node

    def name(definition: str) -> str:
        return prefix + "".join(word.capitalize() for word in re.split(r"[-_.]", definition))

    for definition, schema in definitions.items():
        components[name(definition)] = rewrite(schema)
    return rewrite(raw)  # type: ignore[no-any-return]


#: The keywords whose value maps names to subschemas.
SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")


def _as_schemas(subschemas: Any) -> Any:
    """``true`` as the empty schema and ``false`` as the schema nothing matches."""
    if not isinstance(subschemas, dict):
        return subschemas
    return {
        key: ({} if value else {"not": {}}) if isinstance(value, bool) else value
        for key, value in subschemas.items()
    }


def _connector(profile: dict[str, Any]) -> dict[str, Any]:
    """A profile as the API shows it: its defaults spelled out and the events with samples."""
    return {
        **profile,
        "description": "A connector profile, its defaults spelled out.",
        "properties": {
            **profile["properties"],
            "samples": {"type": "array", "items": {}},
            "version": {
                "type": ["integer", "null"],
                "description": "A custom profile's version; null for a shipped one.",
            },
            "custom": {
                "type": "boolean",
                "description": "False for a profile shipped with the gateway (read-only).",
            },
        },
        "required": [
            *profile["required"],
            *("description", "content_types", "samples", "version", "custom"),
        ],
    }


#: One entry of a custom connector profile's history.
_CONNECTOR_VERSION = {
    "type": "object",
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "created_at": {"type": "string", "format": "date-time"},
        "changes": {
            "description": "The top-level keys this version changed (`created` for the first),"
            " such as `verification` or `functions`.",
            "type": "array",
            "items": {"type": "string"},
        },
    },
    "required": ["version", "created_at", "changes"],
    "additionalProperties": False,
}


def _connector_with_history(connector: dict[str, Any]) -> dict[str, Any]:
    return {
        **connector,
        "description": "A connector profile with its versions, newest first.",
        "properties": {
            **connector["properties"],
            "history": {"type": "array", "items": _CONNECTOR_VERSION},
        },
        "required": [*connector["required"], "history"],
    }


def _connector_body(profile: dict[str, Any]) -> dict[str, Any]:
    """A profile as PUT takes it: its name may be left to the URL, and a profile as GET shows
    it may be sent back (``version`` then guards against a change made meanwhile)."""
    read_back = {
        "version": {
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": schemas.MAX_INT32,
            "description": "The version this change was made to: 409 if the profile has a"
            " newer one.",
        },
        "samples": {"description": "Ignored: the events that have a sample delivery."},
        "custom": {"description": "Ignored."},
        "history": {"description": "Ignored."},
    }
    return {
        **profile,
        "properties": {**profile["properties"], **read_back},
        "required": [r for r in profile["required"] if r != "name"],
    }


def _mapping(document: dict[str, Any]) -> dict[str, Any]:
    """A mapping version as the API shows it: the document's own fields, then its version."""
    extra = {
        "version": {"type": "integer", "minimum": 1},
        "document": _ref("MappingDocument"),
        "created_at": {"type": "string", "format": "date-time"},
    }
    return {
        **document,
        "description": "A mapping version: the document's fields, its version, and the"
        " document again whole.",
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
