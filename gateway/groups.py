"""Webhook groups and their webhook records: the admin's configuration.

A group is one connector + function with its callback token, secret and registered events.
Creating one makes its blank template record, which admins clone into one record per event
(or per set of events that share a mapping).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import case, delete, select, tuple_, update
from sqlalchemy.orm import Session, aliased

from gateway import views
from gateway.connectors import EVERY_EVENT, subscribes
from gateway.errors import Conflict, Detail, NotFound, ValidationFailed
from gateway.mapping import expression_problems
from gateway.models import Event, EventStatus, Group, OAuthClient, Webhook
from gateway.secrets import hint
from gateway.services import Gateway
from gateway.verify import needs_secret, secret_problem

TEMPLATE_LABEL = "Template"
M = TypeVar("M", Group, Webhook)


def new_id() -> str:
    return uuid.uuid4().hex


def new_token() -> str:
    """A callback token: 192 random bits, URL-safe, the only thing that identifies a group."""
    return secrets.token_urlsafe(24)


def now() -> datetime:
    return datetime.now(UTC)


# --- groups -------------------------------------------------------------------------------


def create_group(gw: Gateway, body: Mapping[str, Any]) -> Group:
    try:
        profile = gw.connectors.get(body["connector"])
    except NotFound as exc:
        raise ValidationFailed(exc.message, details=[Detail("connector", exc.message)]) from exc
    function = _function(profile, body["function"])
    events = _registered_events(profile, function, body["events"])
    secret = body.get("secret")
    _check_secret(profile, secret)
    stamp = now()
    group = Group(
        id=new_id(),
        name=body["name"],
        connector=profile.name,
        connector_version=profile.version,
        function=function,
        external_id=body.get("external_id"),
        description=body.get("description"),
        contact=body.get("contact"),
        events=events,
        token=new_token(),
        active=body.get("active", True),
        paused=body.get("paused", False),
        secret_ciphertext=gw.box.encrypt(secret) if secret else None,
        secret_hint=hint(secret),
        target=body.get("target"),
        require_bearer=body.get("require_bearer", False),
        api_key=_api_key(profile, body.get("api_key")),
        created_at=stamp,
        updated_at=stamp,
    )
    _check_authorization_header(group)
    template = Webhook(
        id=new_id(),
        group_id=group.id,
        label=TEMPLATE_LABEL,
        is_template=True,
        active=False,
        events=[],
        created_at=stamp,
        updated_at=stamp,
    )
    with gw.db.session() as session:
        session.add(group)
        session.flush()
        session.add(template)
    return group


def get_group(gw: Gateway, group_id: str) -> Group:
    with gw.db.read_session() as session:
        return _group(session, group_id)


def list_groups(gw: Gateway, limit: int, after: str | None) -> list[tuple[Group, str | None]]:
    """Up to ``limit`` groups by id past ``after``, each with its template record's id, all
    read in one query."""
    template = aliased(Webhook)
    query = (
        select(Group, template.id)
        .outerjoin(template, (template.group_id == Group.id) & template.is_template)
        .order_by(Group.id)
        .limit(limit)
    )
    if after:
        query = query.where(Group.id > after)
    with gw.db.read_session() as session:
        return [(group, template_id) for group, template_id in session.execute(query)]


def update_group(gw: Gateway, group_id: str, body: Mapping[str, Any]) -> Group:
    with gw.db.session() as session:
        group = _locked_group(session, group_id)
        profile = gw.connectors.get(group.connector)
        if "events" in body:
            events = _registered_events(profile, group.function, body["events"])
            _check_records_keep_their_events(session, group, events)
            group.events = events
        if "secret" in body:
            _check_secret(profile, body["secret"])
            _set_secret(gw, group, body["secret"])
        if "api_key" in body:
            group.api_key = _api_key(profile, body["api_key"])
        fields = ("name", "external_id", "description", "contact", "active", "target")
        for field in (*fields, "require_bearer"):
            if field in body:
                setattr(group, field, body[field])
        _check_authorization_header(group)
        if "paused" in body:
            _set_paused(gw, session, group, body["paused"])
        group.updated_at = now()
    return group


def _set_paused(gw: Gateway, session: Session, group: Group, paused: bool) -> None:
    """Pause the group: its queued events are held (those a worker holds finish their attempt);
    or resume it: its held events are queued again.

    Released events are due at once on the database's clock (one waiting for a retry keeps its
    later time), which workers take in the order received, after events that were already due:
    a long pause does not pass for a backed-up queue. The group is locked
    (:func:`_locked_group`) and deliveries are stored only while it is as they were verified
    against (:mod:`gateway.storage.inbox`), so none is stored pending after a pause nor held
    after a resumption.
    """
    if paused == group.paused:
        return
    group.paused = paused
    events = update(Event).where(Event.group_id == group.id)
    if paused:
        held = events.where(Event.status == EventStatus.PENDING).values(status=EventStatus.HELD)
        session.execute(held.execution_options(synchronize_session=False))
        return
    now = gw.db.now(session)
    due = case((Event.next_attempt_at > now, Event.next_attempt_at), else_=now)
    released = events.where(Event.status == EventStatus.HELD).values(
        status=EventStatus.PENDING, next_attempt_at=due
    )
    session.execute(released.execution_options(synchronize_session=False))


def _check_records_keep_their_events(session: Session, group: Group, events: list[str]) -> None:
    """Refuse to drop a type a webhook record still takes: that record would silently go dead.

    The admin edits the records first, so routing never differs from what the records say. A
    record taking ``*`` takes whatever the group registers, so it never loses its events.
    """
    if set(events) >= set(group.events):
        return
    records = session.scalars(
        select(Webhook)
        .where(Webhook.group_id == group.id, Webhook.is_template.is_(False))
        .order_by(Webhook.created_at, Webhook.id)
    )
    problems = []
    for record in records:
        still_taken = [
            event
            for event in record.events
            if event != EVERY_EVENT and not subscribes(events, event)
        ]
        if still_taken:
            types = ", ".join(repr(event) for event in still_taken)
            problems.append(
                Detail(
                    "events", f"webhook record {record.label!r} ({record.id}) still takes {types}"
                )
            )
    if problems:
        raise ValidationFailed(
            "events would drop types that webhook records still take; edit those records first",
            details=problems,
        )


def delete_group(gw: Gateway, group_id: str) -> None:
    """Delete the group and its records; its held events are released, to fail as the group's
    other queued events do, rather than wait for a resumption that cannot come."""
    with gw.db.session() as session:
        _set_paused(gw, session, _locked_group(session, group_id), False)
        session.execute(delete(Webhook).where(Webhook.group_id == group_id))
        session.execute(delete(OAuthClient).where(OAuthClient.group_id == group_id))
        session.execute(delete(Group).where(Group.id == group_id))


def rotate_url(gw: Gateway, group_id: str) -> Group:
    with gw.db.session() as session:
        group = _locked_group(session, group_id)
        group.token = new_token()
        group.updated_at = now()
    return group


def rotate_secret(gw: Gateway, group_id: str, secret: str, previous_valid_for_s: int) -> Group:
    """Switch to ``secret``; the old one is still accepted for ``previous_valid_for_s``.

    Providers keep queued deliveries signed with the old secret for a while (Xemelgo says so),
    so a hard switch would reject genuine retries.
    """
    with gw.db.session() as session:
        group = _locked_group(session, group_id)
        _check_secret(gw.connectors.get(group.connector), secret)
        _set_secret(gw, group, secret, keep_previous_for_s=previous_valid_for_s)
        group.updated_at = now()
    return group


def find_by_token(gw: Gateway, token: str) -> Group:
    """The active group behind a callback token; unknown, rotated-out or disabled is NotFound."""
    if not token or len(token) > 64 or "\x00" in token:  # no such token: PostgreSQL can't hold it
        raise NotFound("no webhook group at this URL")
    with gw.db.read_session() as session:
        group = session.scalars(select(Group).where(Group.token == token)).first()
    if group is None or not group.active:
        raise NotFound("no webhook group at this URL")
    return group


def accepted_secrets(gw: Gateway, group: Group, at: datetime) -> list[str]:
    """The current secret, then the previous one while its rotation window lasts."""
    accepted = []
    if group.secret_ciphertext:
        accepted.append(gw.box.decrypt(group.secret_ciphertext))
    expires = group.previous_secret_expires_at
    if group.previous_secret_ciphertext and expires and _aware(expires) > at:
        accepted.append(gw.box.decrypt(group.previous_secret_ciphertext))
    return accepted


def is_unverified(gw: Gateway, group: Group) -> bool:
    """Whether anyone who has the callback URL can post to it: the connector's scheme checks
    nothing without a secret, or the group's secret is the profile's "no verification" one,
    and the group asks for no OAuth access token either."""
    if group.require_bearer:
        return False
    spec = gw.connectors.get(group.connector).verification
    if not needs_secret(spec):
        return True
    current = accepted_secrets(gw, group, now())[:1]
    return "unverified_secret" in spec and current == [spec["unverified_secret"]]


def view(gw: Gateway, group: Group, template_webhook_id: str | None = None) -> views.Group:
    """The group as the API shows it; its template record's id is read unless given."""
    if template_webhook_id is None:
        with gw.db.read_session() as session:
            template_webhook_id = session.scalars(
                select(Webhook.id).where(Webhook.group_id == group.id, Webhook.is_template)
            ).first()
    return views.Group.of(group, template_webhook_id, gw.callback_url(group.token))


def _group(session: Session, group_id: str) -> Group:
    return _get(session, Group, group_id, "webhook group")


def _locked_group(session: Session, group_id: str) -> Group:
    """The group, locked until the commit (on PostgreSQL; SQLite has one writer at a time).

    Every change to a group or its records locks the group first: a change that read a row
    deleted since would otherwise fail to write it (500), a record cloned into a group being
    deleted would break its foreign key, and a record could take events a concurrent change
    of the group drops. Waiting on a delete, the lock finds no group: 404.
    """
    return _get(session, Group, group_id, "webhook group", lock=True)


def _get(session: Session, model: type[M], key: str, what: str, *, lock: bool = False) -> M:
    row = session.get(model, key, with_for_update=lock)
    if row is None:
        raise NotFound.of(what, key)
    return row


def _function(profile: Any, name: str) -> str:
    try:
        profile.function(name)
    except KeyError:
        names = [f["name"] for f in profile.document["functions"]]
        raise ValidationFailed(
            f"connector {profile.name!r} has no function {name!r}",
            details=[Detail("function", f"choose one of {', '.join(names)}")],
        ) from None
    return name


def _registered_events(profile: Any, function: str, events: list[str]) -> list[str]:
    unknown = profile.unknown_events(function, events)
    if unknown:
        raise ValidationFailed(
            f"unknown events for {profile.name}/{function}: {', '.join(unknown)}",
            details=[Detail("events", f"{name!r} is not in the catalog") for name in unknown],
        )
    return list(dict.fromkeys(events))


def _check_secret(profile: Any, secret: str | None) -> None:
    limits = profile.document.get("secret") or {}
    if secret is None:
        return
    low, high = limits.get("min_length"), limits.get("max_length")
    unverified = profile.verification.get("unverified_secret")
    if secret == unverified or not needs_secret(profile.verification):
        return
    if (low and len(secret) < low) or (high and len(secret) > high):
        raise ValidationFailed(
            f"{profile.title} secrets are {low or 1} to {high or 'any number of'} characters",
            details=[Detail("secret", f"length {len(secret)} is outside {low}..{high}")],
        )
    problem = secret_problem(profile.verification, secret)
    if problem:
        raise ValidationFailed(
            f"this {profile.title} secret cannot verify any delivery",
            details=[Detail("secret", problem)],
        )


def _api_key(profile: Any, location: Mapping[str, str] | None) -> dict[str, str] | None:
    """Where the group's sender puts its API key; only for a connector that takes one."""
    if location is None:
        return None
    if profile.verification.get("scheme") != "api-key":
        raise ValidationFailed(
            f"connector {profile.name!r} does not verify deliveries with an API key",
            details=[Detail("api_key", "only API-key connectors (such as generic) take it")],
        )
    return dict(location)


def _check_authorization_header(group: Group) -> None:
    """Refuse a group whose API key and access token would both need the Authorization header."""
    key_header = (group.api_key or {}).get("header", "")
    if group.require_bearer and key_header.lower() == "authorization":
        raise ValidationFailed(
            "the API key and the OAuth access token cannot both be in the Authorization header",
            details=[Detail("api_key", "put the key in another header or a query parameter")],
        )


def _set_secret(
    gw: Gateway, group: Group, secret: str | None, keep_previous_for_s: int = 0
) -> None:
    """Switch to ``secret``, keeping the one it replaces for ``keep_previous_for_s`` at most.

    A secret kept from an earlier change is dropped either way: once rotated out twice, a
    secret must stop working, whatever window its own rotation gave it.
    """
    kept = group.secret_ciphertext if keep_previous_for_s > 0 else None
    group.previous_secret_ciphertext = kept
    group.previous_secret_expires_at = (
        now() + timedelta(seconds=keep_previous_for_s) if kept else None
    )
    group.secret_ciphertext = gw.box.encrypt(secret) if secret else None
    group.secret_hint = hint(secret)


# --- webhook records ---------------------------------------------------------------------


#: A group's records in their list order: the template first, then as they were made.
WEBHOOK_ORDER = (case((Webhook.is_template, 0), else_=1), Webhook.created_at, Webhook.id)


def webhook_key(webhook: Webhook) -> list[Any]:
    """A record's place in ``WEBHOOK_ORDER``, as JSON can hold it."""
    return [0 if webhook.is_template else 1, webhook.created_at.isoformat(), webhook.id]


def list_webhooks(
    gw: Gateway, group_id: str, limit: int | None = None, after: list[Any] | None = None
) -> list[Webhook]:
    """The group's records, or up to ``limit`` of them past the ``webhook_key`` ``after``."""
    query = (
        select(Webhook).where(Webhook.group_id == group_id).order_by(*WEBHOOK_ORDER).limit(limit)
    )
    if after:
        rank, created_at, webhook_id = after
        place = (rank, datetime.fromisoformat(created_at), webhook_id)
        query = query.where(tuple_(*WEBHOOK_ORDER) > place)
    with gw.db.read_session() as session:
        _group(session, group_id)
        return list(session.scalars(query))


def get_webhook(gw: Gateway, webhook_id: str) -> Webhook:
    with gw.db.read_session() as session:
        return _webhook(session, webhook_id)


def clone_webhook(gw: Gateway, source_id: str, body: Mapping[str, Any]) -> Webhook:
    with gw.db.session() as session:
        group, source = _locked_webhook(session, source_id)
        stamp = now()
        clone = Webhook(
            id=new_id(),
            group_id=group.id,
            label=source.label,
            is_template=False,
            active=source.active,
            events=list(source.events),
            filter=source.filter,
            mapping_name=source.mapping_name,
            mapping_version=source.mapping_version,
            send=source.send,
            created_at=stamp,
            updated_at=stamp,
        )
        _apply_webhook_changes(gw, group, clone, body)
        if "active" not in body:
            clone.active = True
        session.add(clone)
    return clone


def update_webhook(gw: Gateway, webhook_id: str, body: Mapping[str, Any]) -> Webhook:
    with gw.db.session() as session:
        group, webhook = _locked_webhook(session, webhook_id)
        if webhook.is_template and set(body) - {"label"}:
            raise Conflict("the template stays blank; clone it to make a webhook record")
        _apply_webhook_changes(gw, group, webhook, body)
        webhook.updated_at = now()
    return webhook


def delete_webhook(gw: Gateway, webhook_id: str) -> None:
    with gw.db.session() as session:
        _, webhook = _locked_webhook(session, webhook_id)
        if webhook.is_template:
            raise Conflict("the template cannot be deleted; it goes with its group")
        session.delete(webhook)


def _webhook(session: Session, webhook_id: str) -> Webhook:
    return _get(session, Webhook, webhook_id, "webhook record")


def _locked_webhook(session: Session, webhook_id: str) -> tuple[Group, Webhook]:
    """The record and its group, both locked, the group first as :func:`_locked_group` says
    (a group's delete locks the group, then its records: the other order could deadlock)."""
    group_id = session.scalar(select(Webhook.group_id).where(Webhook.id == webhook_id))
    group = session.get(Group, group_id, with_for_update=True) if group_id else None
    webhook = session.get(Webhook, webhook_id, with_for_update=True) if group else None
    if group is None or webhook is None:
        raise NotFound.of("webhook record", webhook_id)
    return group, webhook


#: What a webhook record sends its group's target: its mapping's upserts, or the event itself.
SENDS = ("upserts", "event")


def _apply_webhook_changes(
    gw: Gateway, group: Group, webhook: Webhook, body: Mapping[str, Any]
) -> None:
    problems: list[Detail] = []
    if "events" in body:
        outside = [
            e for e in body["events"] if e != EVERY_EVENT and not subscribes(group.events, e)
        ]
        problems += [
            Detail("events", f"{e!r} is not registered on group {group.name!r}") for e in outside
        ]
        profile = gw.connectors.get(group.connector)
        problems += [
            Detail("events", f"{e!r} is not in the catalog")
            for e in profile.unknown_events(group.function, body["events"])
            if e not in outside
        ]
        webhook.events = list(dict.fromkeys(body["events"]))
    if "filter" in body:
        problems += _filter_problems(body["filter"])
        webhook.filter = body["filter"] or None
    if "mapping" in body:
        name, version = _mapping_ref(body["mapping"])
        if name is not None:
            problems += _mapping_problems(gw, name, version)
        webhook.mapping_name, webhook.mapping_version = name, version
    if body.get("send", "upserts") not in SENDS:
        problems.append(Detail("send", f"must be one of {', '.join(SENDS)}"))
    if problems:
        raise ValidationFailed("the webhook record is not valid", details=problems)
    for field in ("label", "active", "send"):
        if field in body:
            setattr(webhook, field, body[field])


def _filter_problems(expression: str | None) -> list[Detail]:
    """The checks a mapping expression gets, since a filter runs with the same functions."""
    if not expression:
        return []
    return [Detail("filter", problem) for problem in expression_problems(expression)]


def _mapping_ref(ref: Any) -> tuple[str | None, int | None]:
    if ref is None or isinstance(ref, str):
        return ref, None
    return ref["name"], ref.get("version")


def _mapping_problems(gw: Gateway, name: str, version: int | None) -> list[Detail]:
    try:
        gw.mappings.get(name, version)
    except NotFound as exc:
        return [Detail("mapping", exc.message)]
    return []


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
