"""Alert rules as plain values: the kinds, their parameters and defaults, and what a check finds.

No database and no Flask here: ``checks`` evaluates a rule against the database and
``incidents`` turns what it finds into incidents.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class RuleKind(enum.StrEnum):
    """What a rule watches."""

    EVENT_DEAD = "event_dead"  #: events went dead (retries used up)
    TARGET_FAILING = "target_failing"  #: a target has failed every call for a while
    TARGET_USAGE = "target_usage"  #: a target reports API usage above a share of its limit
    REFUSED_DELIVERIES = "refused_deliveries"  #: a group's refused deliveries pass a count
    QUEUE_LAG = "queue_lag"  #: the oldest due pending event has waited too long
    GROUP_SILENT = "group_silent"  #: a group that had traffic every hour went silent


def _seconds(default: int, description: str) -> dict[str, Any]:
    return {
        "type": "integer",
        "minimum": 0,
        "maximum": 30 * 86400,
        "default": default,
        "description": description,
    }


GROUP_ID = {
    "type": ["string", "null"],
    "maxLength": 32,
    "pattern": "^[^\\x00]*$",
    "description": "Only this group's; null or absent: every group's.",
}
TARGET = {
    "type": ["string", "null"],
    "maxLength": 100,
    "pattern": "^[^\\x00]*$",
    "description": "Only this target; null or absent: every target.",
}

#: What every kind takes: how long an incident gathers before its opening message (a storm is
#: one message), and how long the rule must stay clear before the incident resolves.
COMMON_PARAMS: dict[str, dict[str, Any]] = {
    "digest_s": _seconds(60, "How long an incident gathers before its opening message."),
    "cooldown_s": _seconds(300, "How long the rule must not hold before the incident resolves."),
}

#: Each kind's own parameters, as JSON Schema properties with their defaults.
KIND_PARAMS: dict[RuleKind, dict[str, dict[str, Any]]] = {
    RuleKind.EVENT_DEAD: {
        "window_s": _seconds(3600, "Events that went dead this recently count."),
        "group_id": GROUP_ID,
    },
    RuleKind.TARGET_FAILING: {
        "minutes": {"type": "integer", "minimum": 1, "maximum": 10080, "default": 5},
        "target": TARGET,
    },
    RuleKind.TARGET_USAGE: {
        "percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100, "default": 90},
        "target": TARGET,
    },
    RuleKind.REFUSED_DELIVERIES: {
        "count": {"type": "integer", "minimum": 1, "maximum": 10**9, "default": 10},
        "window_s": _seconds(900, "Refused deliveries this recent count."),
        "group_id": GROUP_ID,
    },
    RuleKind.QUEUE_LAG: {
        "seconds": _seconds(300, "How long the oldest due pending event may wait."),
    },
    RuleKind.GROUP_SILENT: {
        "silent_s": _seconds(3600, "How long without an event counts as silent."),
        "history_hours": {"type": "integer", "minimum": 1, "maximum": 168, "default": 24},
        "group_id": GROUP_ID,
    },
}


def params_schema(kind: RuleKind) -> dict[str, Any]:
    """The JSON Schema of a kind's ``params``."""
    return {
        "type": "object",
        "properties": {**COMMON_PARAMS, **KIND_PARAMS[kind]},
        "additionalProperties": False,
    }


def effective_params(kind: RuleKind, given: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a rule runs with: the ones given, defaults for the rest."""
    properties = {**COMMON_PARAMS, **KIND_PARAMS[kind]}
    return {name: given.get(name, spec.get("default")) for name, spec in properties.items()}


@dataclass(frozen=True)
class Finding:
    """The rule holds for one subject: how many things it found, and in words."""

    count: int
    summary: str


#: What a check answers: findings by subject ("" when the rule is about the gateway as a
#: whole), or None when it has nothing to go on (its data is not kept).
Findings = dict[str, Finding] | None


def plural(count: int, noun: str) -> str:
    """``1 event``, ``10,000 events``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def duration(seconds: float) -> str:
    """A span as a person says it: ``45 s``, ``5 min``, ``2 h 10 min``."""
    whole = int(seconds)
    if whole < 120:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def aware(value: datetime) -> datetime:
    """A stored time as an aware UTC one (SQLite gives them back naive)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
