"""What the API answers, as typed models: each made once from its rows, and the same models
describe the answers in the OpenAPI document (``gateway.api.openapi``).

A view's fields are listed in the order its JSON shows them; every field is always present,
null when it has no value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from gateway import models
from gateway.models import Delivery, DeliveryOutcome, Event, EventResult, EventStatus, iso

if TYPE_CHECKING:
    from gateway.deliveries import DeliveryInfo

#: A moment as the API shows it: UTC, ISO 8601 with a Z (``gateway.models.iso``).
Time = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
#: An id the database counts up (events, deliveries), as text so that no client rounds it.
NumericId = Annotated[str, Field(pattern="^[0-9]+$")]
Count = Annotated[int, Field(ge=0)]
#: Any JSON value.
Json = Annotated[Any, Field(description="Any JSON value.")]
JsonObject = dict[str, Json]

FILTER_DESCRIPTION = (
    "JMESPath; the record takes an event of its types only when this is true. It sees the"
    " payload's own top-level keys, and `payload` and `event` as mapping expressions do (a key"
    " of the payload named `payload` or `event` wins), and may call the mapping functions."
    " Unknown functions and wrong argument counts are refused with 422, path `filter`."
)


class View(BaseModel):
    """A response body: exactly these fields, read-only once made. A field with a default is
    optional: the body has it only when it was given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def body(self) -> dict[str, Any]:
        """The view as JSON values, ready for ``jsonify``."""
        return self.model_dump(mode="json", exclude_unset=True)


# --- errors ----------------------------------------------------------------------------------


class ErrorDetail(View):
    """One problem of a request: where it is, and what is wrong there."""

    path: str
    message: str


class ErrorFields(View):
    """What went wrong: a snake_case code, a message, and for validation errors each problem."""

    code: Annotated[str, Field(pattern="^[a-z0-9_]+$")]
    message: Annotated[str, Field(min_length=1)]
    details: list[ErrorDetail] = Field(default_factory=list)


class Error(View):
    """Every error answer of the gateway."""

    error: ErrorFields


# --- groups and webhook records --------------------------------------------------------------


class ApiKeyLocation(View):
    """A header or a query parameter, and the prefix before the key in it."""

    header: str | None = None
    query: str | None = None
    prefix: str | None = None


class Group(View):
    """A webhook group: one connector and function, its callback URL and its template record."""

    id: str
    name: str
    connector: str
    function: str
    external_id: str | None
    description: str | None
    contact: str | None = Field(
        description="Who to ask at the sender about its deliveries (the vendor's tech contact)."
    )
    events: list[str]
    callback_url: Annotated[str, WithJsonSchema({"type": "string", "format": "uri"})]
    template_webhook_id: str | None
    active: bool
    paused: bool = Field(
        description="Its events wait as `held` until it is resumed; deliveries are still accepted."
    )
    secret_hint: str | None = Field(
        description="The secret's last four characters at most; never the secret."
    )
    previous_secret_expires_at: Time | None
    target: str | None
    require_bearer: bool = Field(
        description="Deliveries must carry an access token of one of the group's OAuth clients,"
        " besides the signature where the group has a secret."
    )
    api_key: ApiKeyLocation | None = Field(
        description="Where an API-key connector finds this group's key; null: where the"
        " connector profile says."
    )
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, group: models.Group, template_webhook_id: str | None, callback_url: str) -> Self:
        return cls(
            id=group.id,
            name=group.name,
            connector=group.connector,
            function=group.function,
            external_id=group.external_id,
            description=group.description,
            contact=group.contact,
            events=group.events,
            callback_url=callback_url,
            template_webhook_id=template_webhook_id,
            active=group.active,
            paused=group.paused,
            secret_hint=group.secret_hint,
            previous_secret_expires_at=iso(group.previous_secret_expires_at),
            target=group.target,
            require_bearer=group.require_bearer,
            api_key=ApiKeyLocation(**group.api_key) if group.api_key else None,
            created_at=stamp(group.created_at),
            updated_at=stamp(group.updated_at),
        )


class OAuthClient(View):
    """Client credentials of a group's sender, its secret never shown again."""

    client_id: str
    group_id: str
    name: str | None
    secret_hint: str | None
    created_at: Time
    rotated_at: Time | None

    @classmethod
    def of(cls, client: models.OAuthClient) -> Self:
        return cls(
            client_id=client.client_id,
            group_id=client.group_id,
            name=client.name,
            secret_hint=client.secret_hint,
            created_at=stamp(client.created_at),
            rotated_at=iso(client.rotated_at),
        )


class OAuthClientSecret(View):
    """A client's id and its new secret, shown this once: the sender's token request uses both."""

    client_id: str
    client_secret: str


class MappingPin(View):
    """A mapping by name and version; a null version means its newest."""

    name: str
    version: Annotated[int, Field(ge=1)] | None

    @classmethod
    def of(cls, name: str | None, version: int | None) -> Self | None:
        return cls(name=name, version=version) if name else None


class Webhook(View):
    """A webhook record of a group: the events it takes, its filter and its mapping."""

    id: str
    group_id: str
    label: str
    events: list[str]
    active: bool
    filter: str | None = Field(description=FILTER_DESCRIPTION)
    mapping: MappingPin | None
    send: Literal["upserts", "event"] = Field(
        description="`upserts`: the mapping's records go to the target; `event`: the event"
        " itself, as one record of object `event`."
    )
    is_template: bool
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, webhook: models.Webhook) -> Self:
        return cls(
            id=webhook.id,
            group_id=webhook.group_id,
            label=webhook.label,
            events=webhook.events,
            active=webhook.active,
            filter=webhook.filter,
            mapping=MappingPin.of(webhook.mapping_name, webhook.mapping_version),
            send="event" if webhook.send == "event" else "upserts",
            is_template=webhook.is_template,
            created_at=stamp(webhook.created_at),
            updated_at=stamp(webhook.updated_at),
        )


# --- events and records ----------------------------------------------------------------------


class EventSummary(View):
    """An event of the log, as lists show it."""

    id: NumericId
    group_id: str
    delivery_id: NumericId
    type: str
    status: EventStatus
    received_at: Time
    dedupe_key: str
    attempts: Count
    last_error: str | None
    next_attempt_at: Time | None
    processed_at: Time | None

    @classmethod
    def of(cls, event: Event) -> Self:
        return cls(**_summary_fields(event))


def _summary_fields(event: Event) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "group_id": event.group_id,
        "delivery_id": str(event.delivery_id),
        "type": event.type,
        "status": event.status,
        "received_at": stamp(event.received_at),
        "dedupe_key": event.dedupe_key,
        "attempts": event.attempts,
        "last_error": event.last_error,
        "next_attempt_at": iso(event.next_attempt_at),
        "processed_at": iso(event.processed_at),
    }


class DeliveryOfEvent(View):
    """The delivery an event came in, without its body."""

    id: NumericId
    received_at: Time
    remote_addr: str | None
    method: str
    content_type: str | None
    headers: dict[str, str] = Field(
        description="As received, lower-cased, with credentials removed."
    )
    size: Count

    @classmethod
    def of(cls, delivery: Delivery) -> Self:
        return cls(
            id=str(delivery.id),
            received_at=stamp(delivery.received_at),
            remote_addr=delivery.remote_addr,
            method=delivery.method,
            content_type=delivery.content_type,
            headers=delivery.headers,
            size=len(delivery.body or b""),
        )


class DeliverySummary(View):
    """A delivery as received, accepted or refused, as lists show it."""

    id: NumericId
    group_id: str
    outcome: DeliveryOutcome
    status: int = Field(description="The HTTP status it was answered.")
    error_code: str | None = Field(description="Why it was refused; null when accepted.")
    message: str | None = Field(description="The refusal's message, as the sender read it.")
    verified: bool = Field(
        description="Whether it passed verification (its signature, or a group that asks for"
        " none): only then is its body kept."
    )
    received_at: Time
    size: Count | None = Field(description="The body's size; null when it was never read.")
    sha256: str | None = Field(description="The body's SHA-256 in hex; null when never read.")
    body_stored: bool = Field(description="Whether `GET /deliveries/{id}/body` has it.")
    reprocessed_at: Time | None = Field(
        description="When a refused delivery was re-processed into events (it is accepted since)."
    )

    @classmethod
    def of(cls, delivery: DeliveryInfo) -> Self:
        return cls(**_delivery_summary_fields(delivery))


def _delivery_summary_fields(delivery: DeliveryInfo) -> dict[str, Any]:
    return {
        "id": str(delivery.id),
        "group_id": delivery.group_id,
        "outcome": delivery.outcome,
        "status": delivery.status,
        "error_code": delivery.error_code,
        "message": delivery.message,
        "verified": delivery.verified,
        "received_at": stamp(delivery.received_at),
        "size": delivery.size,
        "sha256": delivery.sha256,
        "body_stored": delivery.body_stored,
        "reprocessed_at": iso(delivery.reprocessed_at),
    }


class DeliveryDetail(DeliverySummary):
    """One delivery with what it came with besides its body."""

    method: str
    remote_addr: str | None
    content_type: str | None
    headers: dict[str, str] = Field(
        description="As received, lower-cased, with credentials removed."
    )

    @classmethod
    def of(cls, delivery: DeliveryInfo) -> Self:
        return cls(
            **_delivery_summary_fields(delivery),
            method=delivery.method,
            remote_addr=delivery.remote_addr,
            content_type=delivery.content_type,
            headers=delivery.headers,
        )


class HistoryRow(View):
    """One step of an event's processing: a routing outcome, or one upsert's attempt."""

    attempt: int = Field(
        description="The attempt's number; it keeps counting up across replays, while the"
        " event's `attempts` counts the current retry budget."
    )
    at: Time
    status: str
    webhook_id: str | None
    mapping: MappingPin | None
    upsert_key: str | None
    target: str | None
    object: str | None
    external_id_field: str | None = Field(
        description="The field of `object` that holds `external_id`, when `fields` is known."
    )
    external_id: str | None
    outcome: str | None = Field(
        description="Per upsert: `created`, `updated`, `failed`, `retry`, `stale`, `skipped`,"
        " or `parent_failed` (not sent, as its parent was refused earlier in the batch; it is"
        " retried, or failed, with its parent); the message says why. Null on a row for the"
        " whole event."
    )
    record_id: str | None
    message: str | None
    fields: JsonObject | None = Field(
        description="The record as this upsert sent it to the target: the external id under"
        " `external_id_field`, a parent as its relationship field holding the parent's external"
        " id. A planned upsert that was not sent (`stale`, `skipped`) shows what it would have"
        " sent. Not stored: the mapping version named, which never changes, is evaluated on the"
        " stored event again. Null on a row that names no record the mapping planned, and when"
        " it cannot be worked out (`fields_note` says why)."
    )
    fields_note: str | None = Field(
        description="Why `fields` is null on a row that names a planned record: the mapping"
        " version is no longer stored, the group was deleted (its connector and function are"
        " unknown), or the version no longer maps the event as it did."
    )

    @classmethod
    def of(cls, row: EventResult, sent: Mapping[str, Any]) -> Self:
        """``sent``: what the row's upsert sent (``gateway.history``)."""
        return cls(
            attempt=row.attempt,
            at=stamp(row.at),
            status=row.status,
            webhook_id=row.webhook_id,
            mapping=MappingPin.of(row.mapping_name, row.mapping_version),
            upsert_key=row.upsert_key,
            target=row.target,
            object=row.object,
            external_id_field=sent["external_id_field"],
            external_id=row.external_id,
            outcome=row.outcome,
            record_id=row.record_id,
            message=row.message,
            fields=sent["fields"],
            fields_note=sent["fields_note"],
        )


class EventDetail(EventSummary):
    """One event with its payload, its delivery and its processing history."""

    payload: Json
    headers: dict[str, str] | None = Field(
        description="The delivery's headers, as under `delivery`."
    )
    occurred_at: Time | None
    delivery: DeliveryOfEvent | None
    history: list[HistoryRow]

    @classmethod
    def of_parts(
        cls,
        event: Event,
        delivery: Delivery | None,
        history: Sequence[EventResult],
        sent: Sequence[Mapping[str, Any]],
    ) -> Self:
        """``sent``: per history row, what its upsert sent (``gateway.history``)."""
        return cls(
            **_summary_fields(event),
            payload=event.payload,
            headers=delivery.headers if delivery is not None else None,
            occurred_at=iso(event.occurred_at),
            delivery=DeliveryOfEvent.of(delivery) if delivery is not None else None,
            history=[HistoryRow.of(row, part) for row, part in zip(history, sent, strict=True)],
        )


class Replayed(View):
    """How many events were taken again; each is queued, or ignored as on receipt when its group
    does not register its type."""

    replayed: Count
    ignored: Count = Field(
        description="How many of them stay `ignored`: their group does not register their type"
        " (yet)."
    )
    matched: Count = Field(
        description="How many events the filters matched: all of them taken again, unless a"
        " worker claimed some since, or the replay was a dry run."
    )
    dry_run: bool = Field(description="True when nothing was replayed, only counted.")
    held: Count = Field(
        description="How many of them wait as `held`: their group is paused, and they are"
        " processed once it is resumed."
    )


class Record(View):
    """A record in the embedded local store."""

    object: str
    external_id: str
    external_id_field: str
    fields: JsonObject
    created_at: Time
    updated_at: Time
    source_event_id: NumericId | None

    @classmethod
    def of(cls, record: models.Record) -> Self:
        return cls(
            object=record.object,
            external_id=record.external_id,
            external_id_field=record.external_id_field,
            fields=record.fields,
            created_at=stamp(record.created_at),
            updated_at=stamp(record.updated_at),
            source_event_id=str(record.source_event_id) if record.source_event_id else None,
        )


class RecordObject(View):
    """An object of the embedded local store."""

    object: str
    count: Count = Field(description="How many records of this object the store holds.")

    @classmethod
    def of(cls, obj: str, count: int) -> Self:
        return cls(object=obj, count=count)


# --- receiving and operations ----------------------------------------------------------------


class Receipt(View):
    """Stored durably: the counts of the delivery's events."""

    accepted: Count
    duplicates: Count
    ignored: Count
    delivery_id: NumericId


class Alive(View):
    """The process is alive."""

    status: Annotated[str, WithJsonSchema({"type": "string", "enum": ["ok"]})]


class Ready(View):
    """A delivery could be stored now."""

    status: Annotated[str, WithJsonSchema({"type": "string", "enum": ["ready"]})]
    database: Annotated[str, WithJsonSchema({"type": "string", "enum": ["ok"]})]


def stamp(value: datetime) -> str:
    """A time a row always has, as the API shows it (``gateway.models.iso``)."""
    return iso(value) or ""


# --- targets ---------------------------------------------------------------------------------


class ApiUsage(View):
    """The API usage a target last reported (Salesforce's daily limit)."""

    used: int
    limit: int
    remaining: Count
    reported_at: Time | None


class TargetLimitsView(View):
    """A target's configured limits, the calls counted today, and why its events wait."""

    calls_per_second: int | None
    calls_per_day: int | None
    calls_today: Count
    remaining_today: Count | None
    waiting: str | None = Field(
        description="Why events to this target wait now (a limit reached), or null."
    )
    waiting_until: Time | None


class Target(View):
    """A target in use: the default, or one a group names, or one with limits."""

    name: str
    default: bool
    api_usage: ApiUsage | None
    limits: TargetLimitsView | None


class TargetCredentialsView(View):
    """Which credentials are stored for a remote target: hints only, never values."""

    target: str
    variables: dict[str, str | None] = Field(
        description="Each stored variable with a hint of its value, never the value."
    )
    updated_at: Time


# --- mapping previews ------------------------------------------------------------------------


class Parent(View):
    """The parent record an upsert links to, by its external id."""

    relationship: str
    external_id_field: str
    external_id: str


class LastWritten(View):
    """What last wrote the record."""

    order_value: Json = Field(description="The `order_by` value that last wrote the record.")
    event_id: NumericId


class PlannedUpsert(View):
    """An upsert the mapping would make."""

    key: str
    object: str
    external_id_field: str
    external_id: str
    fields: JsonObject
    parent: Parent | None
    order_value: Json
    stale: bool | None = Field(
        description="For a stored event: true when processing would skip this upsert as older"
        " than what last wrote the record (`order_by`). Null for a bare payload, which has no"
        " group and so no target to look in."
    )
    last_written: LastWritten | None


class SkippedUpsert(View):
    """An upsert of the mapping that makes no record for this event."""

    key: str
    object: str
    reason: str = Field(
        description="Its `when` is not true, its parent was skipped, or its `for_each` yields no"
        " items."
    )


class PreviewResult(View):
    """What the mapping makes of one event."""

    event_id: str | None
    event_type: str
    upserts: list[PlannedUpsert]
    skipped: list[SkippedUpsert] = Field(
        description="The mapping's upserts that make no record for this event, and why."
    )
    error: str | None = Field(description="Why the mapping cannot plan this event, if it cannot.")
    changes: list[JsonObject] | None = Field(
        default=None, description="For a candidate document: what it would send differently."
    )
    current_error: str | None = Field(
        default=None, description="For a candidate document: why the saved mapping cannot plan it."
    )


class PreviewedMapping(View):
    """The mapping previewed: a saved version, or a candidate compared to the newest."""

    name: str
    version: int | None
    candidate: bool
    compared_to: int | None


class PreviewAnswer(View):
    """What would be upserted; one event or payload previewed also has its result at the top."""

    mapping: PreviewedMapping
    results: list[PreviewResult]
    event_id: str | None = None
    event_type: str | None = None
    upserts: list[PlannedUpsert] | None = None
    skipped: list[SkippedUpsert] | None = None
    error: str | None = None
    changes: list[JsonObject] | None = None
    current_error: str | None = None
