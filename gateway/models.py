"""The database schema, as typed SQLAlchemy models.

Deliveries and events are append-mostly and hot; they carry integer keys and no foreign keys so
the receive path inserts them in bulk. Configuration (groups, webhook records, mappings) is small
and keyed by opaque ids.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Integer keys that autoincrement on both SQLite (rowid) and PostgreSQL (bigint identity).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class _SQLiteDateTime(sqlite.DATETIME):
    """SQLite's DATETIME text, written by ``isoformat``: the same characters, for less work.

    SQLAlchemy fills a seven-field ``%`` template for every value, the costliest conversion on
    the receive path (four per delivery). Text order is time order only while every writer
    uses one format, so this keeps SQLAlchemy's to the character (``YYYY-MM-DD HH:MM:SS.ffffff``,
    the wall clock of the value as given).
    """

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        general = super().bind_processor(dialect)

        def process(value: Any) -> Any:
            if type(value) is datetime:
                return value.isoformat(" ", "microseconds")[:26]
            return general(value) if general else value

        return process


def iso(value: datetime | None) -> str | None:
    """A stored time as the API shows it: UTC with a Z, naive SQLite values included."""
    if value is None:
        return None
    return aware(value).isoformat().replace("+00:00", "Z")


def aware(value: datetime) -> datetime:
    """A stored time with its zone: naive SQLite values are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


#: Timestamps: aware on PostgreSQL; on SQLite, UTC text (the gateway writes UTC only).
Timestamp = DateTime(timezone=True).with_variant(
    _SQLiteDateTime(timezone=True),  # type: ignore[no-untyped-call]
    "sqlite",
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class EventStatus(enum.StrEnum):
    """Where an event stands in its journey."""

    PENDING = "pending"  #: waiting for a worker
    PROCESSING = "processing"  #: claimed by a worker
    DELIVERED = "delivered"  #: every routed upsert succeeded
    FAILED = "failed"  #: a permanent error the admin must fix; replay after fixing
    DEAD = "dead"  #: transient errors until the retry limit
    IGNORED = "ignored"  #: the group did not register this event type
    UNROUTED = "unrouted"  #: no active webhook record takes it
    DUPLICATE = "duplicate"  #: the provider sent it again; never processed twice
    STALE = "stale"  #: older than what last wrote its records
    HELD = "held"  #: its group is paused; queued again, in order, when the group is resumed


#: Finished events that need nothing more from anyone: they pile up until retention purges them.
SETTLED = (
    EventStatus.DELIVERED,
    EventStatus.IGNORED,
    EventStatus.DUPLICATE,
    EventStatus.UNROUTED,
    EventStatus.STALE,
)
NEEDS_ACTION = (EventStatus.FAILED, EventStatus.DEAD)
#: Events still on their way or waiting for an admin: few at any time, unless something is wrong
#: (or a group is paused).
UNSETTLED = (EventStatus.PENDING, EventStatus.PROCESSING, EventStatus.HELD, *NEEDS_ACTION)


class Base(DeclarativeBase):
    #: Every model maps one Table, which the Core batch statements in ``bulk`` take.
    __table__: ClassVar[Table]

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012
        datetime: Timestamp,
        dict[str, Any]: JSON,
        list[str]: JSON,
        Any: JSON,
    }


class ConnectorProfile(Base):
    """A connector profile an admin registered (shipped ones live in the package)."""

    __tablename__ = "connector_profiles"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    #: The newest version's document, which deliveries are verified and read with.
    document: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ConnectorProfileVersion(Base):
    """One immutable version of a custom connector profile: its history."""

    __tablename__ = "connector_profile_versions"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]]
    #: The top-level keys that differ from the version before (all of them for the first).
    changes: Mapped[list[str]]
    created_at: Mapped[datetime]


class Group(Base):
    """One connector + function with its callback token, secret and registered events."""

    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    connector: Mapped[str] = mapped_column(String(63))
    #: The custom connector profile's version its deliveries are verified with, raised with
    #: each new version so that a delivery verified against an older one is checked again;
    #: None for a shipped profile.
    connector_version: Mapped[int | None]
    function: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    #: Who to ask at the sender about its deliveries (the vendor's technical contact).
    contact: Mapped[str | None] = mapped_column(String(500))
    events: Mapped[list[str]]
    token: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Deliveries are still verified, stored and acknowledged, but their events wait as
    #: ``held`` until the group is resumed: unlike an inactive group, nothing is lost.
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    secret_hint: Mapped[str | None] = mapped_column(String(16))
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    target: Mapped[str | None] = mapped_column(String(100))
    #: Deliveries must carry an access token of one of the group's OAuth clients.
    require_bearer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Where an API-key connector finds the key for this group (``header`` or ``query``, and
    #: ``prefix``), when not where its profile says; None keeps the profile's.
    api_key: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OAuthClient(Base):
    """Client credentials a group's sender exchanges for access tokens at ``/oauth/token``.

    The secret is random and long, so a SHA-256 of it is as good as a slow hash and lets every
    token request be checked in one step; it is shown once, when it is made.
    """

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    secret_hint: Mapped[str | None] = mapped_column(String(16))
    #: Tokens carry the generation they were issued in; rotating the secret counts it up, so
    #: the tokens fetched with the old secret stop working with it.
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]


class Webhook(Base):
    """A webhook record: which events of a group go through which mapping."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    is_template: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    events: Mapped[list[str]]
    filter: Mapped[str | None] = mapped_column(Text)
    mapping_name: Mapped[str | None] = mapped_column(String(200))
    #: None follows the newest version of the mapping; a number pins it.
    mapping_version: Mapped[int | None]
    #: ``upserts``: the mapping's records go to the target; ``event``: the event itself does,
    #: as one record (an HTTP target forwarding events as received).
    send: Mapped[str] = mapped_column(
        String(8), default="upserts", server_default=text("'upserts'")
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MappingVersion(Base):
    """One immutable version of a mapping document."""

    __tablename__ = "mapping_versions"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]]
    checksum: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    #: Where it came from: ``file``, ``api`` or ``console``; None for versions saved before
    #: sources were recorded.
    source: Mapped[str | None] = mapped_column(String(16))
    #: For a file: the file's absolute path, and the SHA-256 of its bytes as loaded.
    source_path: Mapped[str | None] = mapped_column(Text)
    source_sha256: Mapped[str | None] = mapped_column(String(64))


class DeliveryOutcome(enum.StrEnum):
    """What a delivery was answered."""

    ACCEPTED = "accepted"  #: stored with its events (200), or re-processed into them since
    REFUSED = "refused"  #: answered 400 or 401, and kept as a trace


#: Refused rows only: an index the receive path's accepted inserts never write.
_REFUSED = text("outcome = 'refused'")


class Delivery(Base):
    """One HTTP request to a known group, exactly as it came in: accepted, or refused.

    The receive path writes accepted rows with the columns it always wrote: the others default
    to what an accepted delivery has, and ``size`` and ``sha256`` are worked out from the body
    when read (``gateway.deliveries``). Refused rows carry them all, and a body only when the
    delivery was verified (its signature, or its group asks for none).
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        # The list by group, newest first.
        Index("ix_deliveries_group", "group_id", "id"),
        # Refusals by group and time: the bound on unverified ones, and the alert on them.
        Index(
            "ix_deliveries_refused",
            "group_id",
            "received_at",
            sqlite_where=_REFUSED,
            postgresql_where=_REFUSED,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(index=True)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    content_type: Mapped[str | None] = mapped_column(String(200))
    headers: Mapped[dict[str, Any]]
    #: None when not kept: a refusal of a request nobody could be shown to have sent.
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    outcome: Mapped[str] = mapped_column(String(16), server_default=text("'accepted'"))
    #: The HTTP status answered.
    status: Mapped[int] = mapped_column(Integer, server_default=text("200"))
    #: Whether the request passed the group's verification (a group that asks for none passes).
    verified: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    error_code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    #: The body's length and SHA-256 as received; None on accepted rows (read from the body).
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    #: When a refused delivery was re-processed into events (it is accepted since).
    reprocessed_at: Mapped[datetime | None]


class Event(Base):
    """One event carried by a delivery, and its processing state."""

    __tablename__ = "events"
    __table_args__ = (
        # Dedupe across processes and hosts: one original per (group, key); duplicates are
        # recorded beside it but outside the constraint.
        Index(
            "uq_events_group_dedupe",
            "group_id",
            "dedupe_key",
            unique=True,
            sqlite_where=text("status <> 'duplicate'"),
            postgresql_where=text("status <> 'duplicate'"),
        ),
        Index("ix_events_queue", "status", "next_attempt_at"),
        # The event log, newest first, by each of its filters; see ``events.list_events``.
        Index("ix_events_group_received", "group_id", "id"),
        Index("ix_events_type", "type", "id"),
        Index("ix_events_status", "status", "id"),
        Index("ix_events_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[int] = mapped_column(BigInteger, index=True)
    type: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(300))
    payload: Mapped[Any]
    received_at: Mapped[datetime]
    occurred_at: Mapped[datetime | None]
    #: Attempts since the event was received or last replayed: the retry budget
    #: (``GATEWAY_MAX_ATTEMPTS``) counts these, so a replay starts it afresh.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Attempts made before the last replay. The history numbers an attempt
    #: ``attempts_before_replay + attempts``, so its numbers keep counting up across replays.
    #: A server default: the receive path's inserts leave it out.
    attempts_before_replay: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claim_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None]


class EventResult(Base):
    """What one processing attempt did for one webhook record's upsert."""

    __tablename__ = "event_results"
    __table_args__ = (
        # The alert on failing targets: each target's last success and its failures since.
        Index("ix_event_results_target_outcome_at", "target", "outcome", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(BigInteger, index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    webhook_id: Mapped[str | None] = mapped_column(String(32))
    mapping_name: Mapped[str | None] = mapped_column(String(200))
    mapping_version: Mapped[int | None]
    upsert_key: Mapped[str | None] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(100))
    object: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str | None] = mapped_column(String(16))
    record_id: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)


class Record(Base):
    """A record in the embedded local store, keyed by object and external id."""

    __tablename__ = "records"

    object: Mapped[str] = mapped_column(String(100), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    external_id_field: Mapped[str] = mapped_column(String(100))
    fields: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    source_event_id: Mapped[int | None] = mapped_column(BigInteger)


class WriteMark(Base):
    """The ordering value of the event that last wrote a target record (stale-write guard)."""

    __tablename__ = "write_marks"

    target: Mapped[str] = mapped_column(String(100), primary_key=True)
    object: Mapped[str] = mapped_column(String(100), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    order_value: Mapped[Any]
    event_id: Mapped[int] = mapped_column(BigInteger)


class TargetUsage(Base):
    """A remote target's API usage as it last reported it (Salesforce's Sforce-Limit-Info).

    Workers write it and any web process reads it, so admins see it wherever they look.
    """

    __tablename__ = "target_usage"

    target: Mapped[str] = mapped_column(String(100), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger)
    limit: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class TargetCredentials(Base):
    """Credentials of a remote target set through the admin API, encrypted at rest.

    They override the ``SALESFORCE_*`` environment for that target, so each org a gateway feeds
    can be configured without restarting anything.
    """

    __tablename__ = "target_credentials"

    target: Mapped[str] = mapped_column(String(100), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class TargetCalls(Base):
    """Calls made to a target in one window (a UTC second or day), for its limits.

    In the database rather than in memory, so that every worker on every host spends from the
    same budget; each target has one row per window, its ``period`` the window now counted.
    """

    __tablename__ = "target_calls"

    target: Mapped[str] = mapped_column(String(100), primary_key=True)
    window: Mapped[str] = mapped_column(String(8), primary_key=True)
    period: Mapped[str] = mapped_column(String(32))
    calls: Mapped[int] = mapped_column(BigInteger)


class SignInAttempts(Base):
    """Console sign-ins tried from one client address since its window opened, none of them
    successful (a success deletes the row).

    In the database rather than in memory, so that every web process on every host counts
    the same attempts.
    """

    __tablename__ = "sign_in_attempts"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    #: When the first of these attempts came; expired rows are purged by this.
    window_started_at: Mapped[datetime] = mapped_column(index=True)


class ConsoleSession(Base):
    """A console sign-in that has not ended: sign-out deletes it, so a copy of its cookie is
    refused at once by every web process."""

    __tablename__ = "console_sessions"

    #: The SHA-256 of the random id the session cookie carries.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]
    #: When it ends by itself; expired rows are purged by this.
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AlertChannel(Base):
    """Where alerts go: a signed webhook, a Slack-compatible incoming webhook, or email."""

    __tablename__ = "alert_channels"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    #: What is not secret: a webhook's URL, an SMTP server and its addresses.
    settings: Mapped[dict[str, Any]]
    #: The kind's one secret (a signing key, a Slack URL, an SMTP password), encrypted.
    secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    secret_hint: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AlertRule(Base):
    """A condition that needs a person, and the channels told when it holds."""

    __tablename__ = "alert_rules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    #: The kind's parameters as the admin gave them; defaults fill in the rest when read.
    params: Mapped[dict[str, Any]]
    #: The channels told; empty: every active channel.
    channel_ids: Mapped[list[str]]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AlertIncident(Base):
    """One stretch of time a rule held for one subject (a target, a group, or the gateway).

    Its state lives here, not in any worker, so that every worker on every host agrees on it.
    """

    __tablename__ = "alert_incidents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: Rule id and subject while open, None once resolved: unique, so that of the workers that
    #: find the same problem at once exactly one opens the incident.
    open_key: Mapped[str | None] = mapped_column(String(340), unique=True)
    rule_id: Mapped[str] = mapped_column(String(32), index=True)
    rule_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(16))
    #: How many things the rule found when last evaluated (dead events, failed calls...).
    count: Mapped[int] = mapped_column(BigInteger)
    summary: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    #: When the rule was first found not to hold any more; it resolves after its cooldown.
    clear_since: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    #: Whether its opening was announced, so that its resolution is announced too.
    announced: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The notice still to send ("opened" or "resolved"), None when there is none.
    notify: Mapped[str | None] = mapped_column(String(16))


class AlertNotice(Base):
    """One message about one incident to one channel.

    The row is the claim to send it: unique per incident, channel and kind, so that it is sent
    once however many workers try at once.
    """

    __tablename__ = "alert_notices"
    __table_args__ = (
        Index("uq_alert_notices_incident", "incident_id", "channel_id", "kind", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(BigInteger)
    channel_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    #: sending, sent, or failed (tried again while attempts are left).
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    claimed_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
