"""JSON Schemas of the admin API's request bodies, shared by validation and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from gateway.target_names import TARGET_NAME
from gateway.targets.credentials import HTTP_VARIABLES, SALESFORCE_VARIABLES
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
    "description": "Event types; `*` is every event of the function, including ones added to"
    " the connector profile later.",
}
DESCRIPTION = {"type": ["string", "null"], "maxLength": 4000, "pattern": NO_NUL}
CONTACT = {
    "type": ["string", "null"],
    "maxLength": 500,
    "pattern": NO_NUL,
    "description": "Who to ask at the sender about its deliveries (the vendor's tech contact).",
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
REQUIRE_BEARER = {
    "type": "boolean",
    "description": "Deliveries must carry `Authorization: Bearer <access token>` from"
    " `POST /oauth/token` for one of the group's OAuth clients; the signature is still checked"
    " where the group has a secret (both must pass).",
}
#: An HTTP header's name (RFC 9110 token characters).
HEADER_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 100,
    "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
}
API_KEY = {
    "description": "For API-key connectors (generic): where this group's sender puts the key, a"
    " `header` or a `query` parameter, and the `prefix` before it (`Bearer `); null: where the"
    " connector profile says (generic: the `x-api-key` header).",
    "oneOf": [
        {"type": "null"},
        {
            "type": "object",
            "properties": {
                "header": HEADER_NAME,
                "query": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": NOT_BLANK},
                "prefix": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": NO_NUL},
            },
            "oneOf": [{"required": ["header"]}, {"required": ["query"]}],
            "additionalProperties": False,
        },
    ],
}
PAUSED = {
    "type": "boolean",
    "description": "Paused: deliveries are still verified, stored and answered 200, but their"
    " events wait as `held` until the group is resumed (`paused: false`), then are processed in"
    " the order received. Unlike `active: false`, under which the callback URL answers 404,"
    " nothing is lost.",
}


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
        "description": DESCRIPTION,
        "contact": CONTACT,
        "secret": SECRET,
        "events": EVENTS,
        "active": {"type": "boolean"},
        "paused": PAUSED,
        "target": TARGET,
        "require_bearer": REQUIRE_BEARER,
        "api_key": API_KEY,
    },
    ("name", "connector", "function", "events"),
)
GROUP_UPDATE = _object(
    {
        "name": NAME,
        "external_id": EXTERNAL_ID,
        "description": DESCRIPTION,
        "contact": CONTACT,
        "secret": SECRET,
        "events": {
            **EVENTS,
            "description": "The registered event types (`*`: every event of the function,"
            " including ones added later). A type that a webhook record still takes"
            " cannot be dropped (422 naming each such record); edit the records first.",
        },
        "active": {"type": "boolean"},
        "paused": PAUSED,
        "target": TARGET,
        "require_bearer": REQUIRE_BEARER,
        "api_key": API_KEY,
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
SEND = {
    "enum": ["upserts", "event"],
    "description": "What goes to the group's target: the records the mapping makes (`upserts`,"
    " the default), or the event itself as one record of object `event` whose external id is"
    " the event's id (`event`: no mapping needed; forwards events to an HTTP target as"
    " received).",
}
WEBHOOK_CLONE = _object(
    {
        "label": NAME,
        "events": EVENTS,
        "active": {"type": "boolean"},
        "filter": FILTER,
        "mapping": MAPPING_REF,
        "send": SEND,
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
        "send": SEND,
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
    "description": "The variables to store for this target, each a string: SALESFORCE_* for a"
    " Salesforce target, HTTP_* for an HTTP target.",
    "type": "object",
    "minProperties": 1,
    "propertyNames": {"enum": [*SALESFORCE_VARIABLES, *HTTP_VARIABLES]},
    "additionalProperties": {
        "type": "string",
        "minLength": 1,
        "maxLength": 4000,
        "writeOnly": True,
    },
}

OAUTH_CLIENT_CREATE = _object({"name": {**NAME, "description": "What the client is for."}})

group_create = Schema(GROUP_CREATE)
group_update = Schema(GROUP_UPDATE)
rotate_secret = Schema(ROTATE_SECRET)
webhook_clone = Schema(WEBHOOK_CLONE)
webhook_update = Schema(WEBHOOK_UPDATE)
preview = Schema(PREVIEW)
event_filter = Schema(EVENT_FILTER)
target_credentials = Schema(TARGET_CREDENTIALS)
oauth_client_create = Schema(OAUTH_CLIENT_CREATE)
