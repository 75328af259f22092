"""The interface every target (the local record store, Salesforce) implements.

The worker hands a target a list of upserts collected from a whole batch of events, in the
order the mappings produced them (parents before children), and gets one result per upsert back.
Batching, retries of expired sessions and per-record error classification live in the target;
deciding what an event's status becomes lives in the worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from gateway.errors import GatewayError, TransientTargetError


@dataclass(frozen=True)
class ParentLink:
    """A child's pointer at its parent by the parent's external id."""

    #: Relationship field on the child, e.g. ``Order__r``.
    relationship: str
    #: The parent's external id field, e.g. ``XTND_Order_Number__c``.
    external_id_field: str
    #: The parent's external id value.
    external_id: str


@dataclass(frozen=True)
class UpsertRequest:
    """One record to create or update by external id."""

    object: str
    external_id_field: str
    external_id: str
    fields: dict[str, Any]
    parent: ParentLink | None = None
    #: The event that asked for this upsert (for the local store's ``source_event_id``).
    source_event_id: str | None = None

    def body(self) -> dict[str, Any]:
        """Fields as sent to the target, with the parent link in relationship form."""
        data = {k: v for k, v in self.fields.items() if k != self.external_id_field}
        if self.parent is not None:
            data[self.parent.relationship] = {
                self.parent.external_id_field: self.parent.external_id
            }
        return data

    def record(self) -> dict[str, Any]:
        """The whole record as a target receives it: the external id first, then :meth:`body`."""
        return {self.external_id_field: self.external_id, **self.body()}


@dataclass(frozen=True)
class UpsertResult:
    """What the target did with one upsert."""

    ok: bool
    #: True when a new record was made, False when an existing one was updated.
    created: bool = False
    #: The target's own id of the record, when it has one (a Salesforce record id).
    record_id: str | None = None
    #: Why it failed, in words the admin can act on.
    error: str | None = None
    #: True when a retry may succeed (limits, timeouts, 5xx), False when the admin must fix.
    transient: bool = False
    #: For a transient failure, the soonest a retry can pass, when the target knows one.
    retry_after_s: float = 0.0
    #: Not sent, as its parent was refused earlier in the batch: it follows its parent's fate.
    parent_failed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_error(cls, exc: GatewayError) -> UpsertResult:
        """The result of an upsert whose whole batch or call failed with ``exc``."""
        if isinstance(exc, TransientTargetError):
            return cls(ok=False, error=exc.message, transient=True, retry_after_s=exc.retry_after_s)
        return cls(ok=False, error=exc.message)


class Target(Protocol):
    """Upserts records by external id into a CRM or store."""

    #: The name admins use to pick this target (``local``, ``salesforce``).
    name: str

    def upsert(self, requests: Sequence[UpsertRequest]) -> list[UpsertResult]:
        """Apply ``requests`` in order; one result per request, same order.

        A failure before anything was applied that may pass later (the target unreachable,
        over its API limit) raises :class:`gateway.errors.TransientTargetError` instead of
        returning results; once some records are applied, such a failure is the result of each
        record it kept from being applied, so the applied ones are not sent again.
        """
        ...


def json_ready(value: Any) -> Any:
    """Dates, datetimes and decimals as remote targets read them; ``json.dumps`` refuses them.

    Naive datetimes are taken as UTC. Decimals become JSON numbers by way of float, so they
    are exact to 15 significant digits.
    """
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
