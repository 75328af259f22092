"""JSON Schemas of the admin API's request bodies, shared by validation and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from gateway.target_names import TARGET_NAME
from gateway.targets.credentials import SALESFORCE_VARIABLES
from gateway.validation import Schema

#: PostgreSQL text cannot hold U+0000, so no name, id or filter the API stores or looks up may.
NO_NUL = "^[^\\x00]*$"
#: The largest value of a PostgreSQL integer column (mapping versions).
MAX_INT32 = 2**31 - 1

#: NO_NUL, and something to show: a name of blanks only reads as no name at all.
NOT_BLANK = "^[^\\x00]*[^\\x00\\s][^\\x00]*$"
NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NOT_BLANK}
EVENTS = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NOT_BLANK},
}
SECRET_DESCRIPTION = (
    "Write-only. A secret the connector could never verify a delivery with is refused with 422,"
    " path `secret`: one outside the profile's length limits (Xemelgo: 20 to 256 characters), or"
    " for Standard Webhooks one that is not base64 of at least one byte after an optional whsec_."
)
SECRET = {
    "type": ["string", "null"],
    "minLength": 1,
    "maxLength": 1024,
    "writeOnly": True,
    "description": SECRET_DESCRIPTION,
}
FILTER_DESCRIPTION = (
    "JMESPath; the record takes an event of its types only when this is true. It sees the"
    " payload's own top-level keys, and `payload` and `event` as mapping expressions do (a key"
    " of the payload named `payload` or `event` wins), and may call the mapping functions."
    " Unknown functions and wrong argument counts are refused with 422, path `filter`."
)
FILTER = {"type": ["string", "null"], "maxLength": 4000, "description": FILTER_DESCRIPTION}
EXTERNAL_ID = {"type": ["string", "null"], "maxLength": 255, "pattern": NO_NUL}
MAPPING_REF = {
    "description": "A mapping by name (newest version), {name, version} to pin one, or a whole"
    " mapping document: saved first as PUT /mappings/{its name} would save it, then used by"
    " name (newest version).",
    "oneOf": [
        {"type": "null"},
        NAME,
        {
            "type": "object",
            "properties": {
                "name": NAME,
                "version": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_INT32},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        {"type": "object", "required": ["upserts"], "description": "A mapping document."},
    ],
}
TARGET = {
    "type": ["string", "null"],
    "maxLength": 100,
    "pattern": f"^({TARGET_NAME.pattern})$",
}
FILTER_TEXT = {"type": "string", "pattern": NO_NUL}


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
        "connector": {"type": "string", "minLength": 1, "maxLength": 63, "pattern": NO_NUL},
        "function": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": NO_NUL},
        "external_id": EXTERNAL_ID,
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
        "external_id": EXTERNAL_ID,
        "secret": SECRET,
        "events": {
            **EVENTS,
            "description": "The registered event types. A type that a webhook record still takes"
            " cannot be dropped (422 naming each such record); edit the records first.",
        },
        "active": {"type": "boolean"},
        "target": TARGET,
    }
)
ROTATE_SECRET = _object(
    {
        "secret": {**SECRET, "type": "string"},  # a rotation always brings one
        "previous_valid_for_s": {
            "description": "How long the secret this one replaces is still accepted (0, or"
            " omitted: not at all). A secret replaced before it stops being accepted now.",
            "type": "integer",
            "minimum": 0,
            "maximum": 90 * 86400,
        },
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
    "description": "What to preview, one of: a stored event (`event_id`); a payload as if"
    " received now (`event_type` and `payload`, and `group_id` to receive it as that group's,"
    " else the event has no group, connector or function: null); neither, the last `last`"
    " events the mapping's webhook records take. Both an event and a payload is 400"
    " `ambiguous_sample`. `document` previews a candidate instead of the saved mapping.",
    "type": "object",
    "properties": {
        "event_id": {"type": ["string", "integer"]},
        "event_type": {"type": "string", "minLength": 1},
        "payload": {},
        "group_id": {
            "type": "string",
            "pattern": NO_NUL,
            "description": "With a payload: preview it as if this group had received it.",
        },
        "document": {"type": "object"},
        "last": {"type": "integer", "minimum": 1, "maximum": 200},
    },
    "additionalProperties": False,
}
EVENT_FILTER = _object(
    {
        "group_id": FILTER_TEXT,
        "type": FILTER_TEXT,
        "status": {
            "description": "Events in any of these statuses: comma-separated, or a list.",
            "oneOf": [FILTER_TEXT, {"type": "array", "items": FILTER_TEXT}],
        },
        "since": FILTER_TEXT,
        "until": FILTER_TEXT,
        "contains": {
            "description": "Events whose payload holds this text, ignoring case.",
            **FILTER_TEXT,
        },
        "limit": {"type": "integer", "minimum": 1, "maximum": 100000},
        "all": {
            "type": "boolean",
            "description": "Needed to replay without any filter (else 400"
            " `replay_needs_filter`). Events `delivered`, `ignored`, `duplicate` or `stale`"
            " are replayed only when `status` names them; duplicates never are.",
        },
        "dry_run": {
            "type": "boolean",
            "description": "Only count the events that match (`matched`); replay none.",
        },
    }
)

TARGET_CREDENTIALS = {
    "description": "The SALESFORCE_* variables to store for this target, each a string.",
    "type": "object",
    "minProperties": 1,
    "propertyNames": {"enum": list(SALESFORCE_VARIABLES)},
    "additionalProperties": {
        "type": "string",
        "minLength": 1,
        "maxLength": 4000,
        "writeOnly": True,
    },
}

group_create = Schema(GROUP_CREATE)
group_update = Schema(GROUP_UPDATE)
rotate_secret = Schema(ROTATE_SECRET)
webhook_clone = Schema(WEBHOOK_CLONE)
webhook_update = Schema(WEBHOOK_UPDATE)
preview = Schema(PREVIEW)
event_filter = Schema(EVENT_FILTER)
target_credentials = Schema(TARGET_CREDENTIALS)
