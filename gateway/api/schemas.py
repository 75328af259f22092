"""JSON Schemas of the admin API's request bodies, shared by validation and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from gateway.validation import Schema

NAME = {"type": "string", "minLength": 1, "maxLength": 200}
EVENTS = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 200}}
SECRET = {"type": ["string", "null"], "minLength": 1, "maxLength": 1024}
FILTER = {"type": ["string", "null"], "maxLength": 4000}
MAPPING_REF = {
    "description": "A mapping by name (newest version), or {name, version} to pin one.",
    "oneOf": [
        {"type": "null"},
        {"type": "string", "minLength": 1, "maxLength": 200},
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "version": {"type": ["integer", "null"], "minimum": 1},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
    ],
}
TARGET = {"type": ["string", "null"], "pattern": "^(local|salesforce(:[A-Za-z0-9_]+)?)$"}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


GROUP_CREATE = _object(
    {
        "name": NAME,
        "connector": {"type": "string", "minLength": 1, "maxLength": 63},
        "function": {"type": "string", "minLength": 1, "maxLength": 100},
        "external_id": {"type": ["string", "null"], "maxLength": 255},
        "secret": SECRET,
        "events": EVENTS,
        "active": {"type": "boolean"},
        "target": TARGET,
    },
    ("name", "connector", "function", "events"),
)
GROUP_UPDATE = _object(
    {
        "name": NAME,
        "external_id": {"type": ["string", "null"], "maxLength": 255},
        "secret": SECRET,
        "events": EVENTS,
        "active": {"type": "boolean"},
        "target": TARGET,
    }
)
ROTATE_SECRET = _object(
    {
        "secret": {"type": "string", "minLength": 1, "maxLength": 1024},
        "previous_valid_for_s": {"type": "integer", "minimum": 0, "maximum": 90 * 86400},
    },
    ("secret",),
)
WEBHOOK_CLONE = _object(
    {
        "label": NAME,
        "events": EVENTS,
        "active": {"type": "boolean"},
        "filter": FILTER,
        "mapping": MAPPING_REF,
    },
    ("label", "events"),
)
WEBHOOK_UPDATE = _object(
    {
        "label": NAME,
        "events": EVENTS,
        "active": {"type": "boolean"},
        "filter": FILTER,
        "mapping": MAPPING_REF,
    }
)
PREVIEW = {
    "type": "object",
    "properties": {
        "event_id": {"type": ["string", "integer"]},
        "event_type": {"type": "string", "minLength": 1},
        "payload": {},
        "document": {"type": "object"},
        "last": {"type": "integer", "minimum": 1, "maximum": 200},
    },
    "additionalProperties": False,
}
EVENT_FILTER = _object(
    {
        "group_id": {"type": "string"},
        "type": {"type": "string"},
        "status": {"type": "string"},
        "since": {"type": "string"},
        "until": {"type": "string"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100000},
    }
)

group_create = Schema(GROUP_CREATE)
group_update = Schema(GROUP_UPDATE)
rotate_secret = Schema(ROTATE_SECRET)
webhook_clone = Schema(WEBHOOK_CLONE)
webhook_update = Schema(WEBHOOK_UPDATE)
preview = Schema(PREVIEW)
event_filter = Schema(EVENT_FILTER)
