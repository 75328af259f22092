"""JSON Schemas of the alert endpoints' request bodies, one per channel kind and rule kind.

A body is checked in two steps: its ``kind`` first (on creation), then everything against
that kind's schema, so that each problem is named with the field it concerns.
"""

from __future__ import annotations

import functools
from typing import Any

from gateway.alerts.channels import CHANNEL_KINDS
from gateway.alerts.rules import RuleKind, params_schema
from gateway.api.schemas import NAME, NO_NUL
from gateway.validation import Schema

ACTIVE = {"type": "boolean"}
CHANNEL_IDS = {
    "type": "array",
    "items": {"type": "string", "maxLength": 32, "pattern": NO_NUL},
    "uniqueItems": True,
    "maxItems": 100,
    "description": "The channels told; empty or absent: every active channel.",
}


def _kind_of(kinds: list[str]) -> Schema:
    return Schema(
        {
            "type": "object",
            "properties": {"name": NAME, "kind": {"enum": kinds}},
            "required": ["name", "kind"],
        }
    )


channel_kind = _kind_of(list(CHANNEL_KINDS))
rule_kind = _kind_of([k.value for k in RuleKind])


@functools.cache
def channel(kind: str, creating: bool) -> Schema:
    """A channel of ``kind``: its settings and secret, each required one when ``creating``."""
    spec = CHANNEL_KINDS[kind]
    properties: dict[str, Any] = {
        "name": NAME,
        "active": ACTIVE,
        **spec.settings,
        spec.secret_field: spec.secret_schema,
    }
    if creating:
        properties["kind"] = {"const": kind}
    return Schema(
        {
            "type": "object",
            "properties": properties,
            "required": ["name", *spec.required] if creating else [],
            "additionalProperties": False,
        }
    )


@functools.cache
def rule(kind: RuleKind, creating: bool) -> Schema:
    """A rule of ``kind``: its name, channels and the kind's parameters."""
    properties: dict[str, Any] = {
        "name": NAME,
        "active": ACTIVE,
        "channel_ids": CHANNEL_IDS,
        "params": params_schema(kind),
    }
    if creating:
        properties["kind"] = {"const": kind.value}
    return Schema(
        {
            "type": "object",
            "properties": properties,
            "required": ["name"] if creating else [],
            "additionalProperties": False,
        }
    )
