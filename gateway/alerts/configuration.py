"""Channels and rules as admins set them up: create, read, change, delete, and a test message.

Secrets are write-only: stored encrypted with the gateway's key, shown as a hint.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.alerts import schemas
from gateway.alerts.channels import CHANNEL_KINDS, Message, channel_settings
from gateway.alerts.rules import RuleKind, effective_params
from gateway.errors import Detail, NotFound, ValidationFailed
from gateway.models import AlertChannel, AlertRule, iso
from gateway.secrets import hint

if TYPE_CHECKING:
    from gateway.services import Gateway

M = TypeVar("M", AlertChannel, AlertRule)

# --- channels ----------------------------------------------------------------------------


def create_channel(gw: Gateway, body: Mapping[str, Any]) -> AlertChannel:
    kind = schemas.channel_kind.validate(body)["kind"]
    schemas.channel(kind, creating=True).validate(body)
    spec = CHANNEL_KINDS[kind]
    secret = body.get(spec.secret_field)
    stamp = datetime.now(UTC)
    channel = AlertChannel(
        id=uuid.uuid4().hex,
        name=body["name"],
        kind=kind,
        settings=channel_settings(spec, dict(body)),
        secret_ciphertext=gw.box.encrypt(secret) if secret else None,
        secret_hint=hint(secret),
        active=body.get("active", True),
        created_at=stamp,
        updated_at=stamp,
    )
    with gw.db.session() as session:
        session.add(channel)
    return channel


def update_channel(gw: Gateway, channel_id: str, body: Mapping[str, Any]) -> AlertChannel:
    with gw.db.session() as session:
        channel = _get(session, AlertChannel, channel_id, lock=True)
        spec = CHANNEL_KINDS[channel.kind]
        schemas.channel(channel.kind, creating=False).validate(body)
        channel.name = body.get("name", channel.name)
        channel.active = body.get("active", channel.active)
        changed = channel_settings(spec, dict(body), defaults=False)
        channel.settings = {**channel.settings, **changed}
        if spec.secret_field in body:
            secret = body[spec.secret_field]
            channel.secret_ciphertext = gw.box.encrypt(secret)
            channel.secret_hint = hint(secret)
        channel.updated_at = datetime.now(UTC)
    return channel


def get_channel(gw: Gateway, channel_id: str) -> AlertChannel:
    return _read(gw, AlertChannel, channel_id)


def list_channels(gw: Gateway, limit: int, after: str | None) -> list[AlertChannel]:
    return _page(gw, AlertChannel, limit, after)


def delete_channel(gw: Gateway, channel_id: str) -> None:
    _delete(gw, AlertChannel, channel_id)


def channel_view(channel: AlertChannel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "name": channel.name,
        "kind": channel.kind,
        "active": channel.active,
        **channel.settings,
        "secret_hint": channel.secret_hint,
        "created_at": iso(channel.created_at),
        "updated_at": iso(channel.updated_at),
    }


def send(gw: Gateway, channel: AlertChannel, message: Message) -> None:
    """Send ``message`` through ``channel``; ChannelFailed when it does not take it."""
    secret = gw.box.decrypt(channel.secret_ciphertext) if channel.secret_ciphertext else None
    CHANNEL_KINDS[channel.kind].send(channel.settings, secret, message)


def send_test(gw: Gateway, channel_id: str) -> None:
    """A message that says only that the channel works, so admins try it before relying on it."""
    channel = get_channel(gw, channel_id)
    message = Message(
        id=f"alert_test_{uuid.uuid4().hex}",
        type="test",
        title=f"Test message from the webhook gateway to {channel.name!r}",
        text="This channel works: the gateway's alerts will reach it.",
    )
    send(gw, channel, message)


# --- rules -------------------------------------------------------------------------------


def create_rule(gw: Gateway, body: Mapping[str, Any]) -> AlertRule:
    kind = RuleKind(schemas.rule_kind.validate(body)["kind"])
    schemas.rule(kind, creating=True).validate(body)
    stamp = datetime.now(UTC)
    rule = AlertRule(
        id=uuid.uuid4().hex,
        name=body["name"],
        kind=kind,
        params=dict(body.get("params", {})),
        channel_ids=list(body.get("channel_ids", [])),
        active=body.get("active", True),
        created_at=stamp,
        updated_at=stamp,
    )
    with gw.db.session() as session:
        _check_channels(session, rule.channel_ids)
        session.add(rule)
    return rule


def update_rule(gw: Gateway, rule_id: str, body: Mapping[str, Any]) -> AlertRule:
    """Change a rule; ``params`` given are merged into the ones it has (a null drops one)."""
    with gw.db.session() as session:
        rule = _get(session, AlertRule, rule_id, lock=True)
        schemas.rule(RuleKind(rule.kind), creating=False).validate(body)
        rule.name = body.get("name", rule.name)
        rule.active = body.get("active", rule.active)
        if "channel_ids" in body:
            _check_channels(session, body["channel_ids"])
            rule.channel_ids = list(body["channel_ids"])
        merged = {**rule.params, **body.get("params", {})}
        rule.params = {k: v for k, v in merged.items() if v is not None}
        rule.updated_at = datetime.now(UTC)
    return rule


def get_rule(gw: Gateway, rule_id: str) -> AlertRule:
    return _read(gw, AlertRule, rule_id)


def list_rules(gw: Gateway, limit: int, after: str | None) -> list[AlertRule]:
    return _page(gw, AlertRule, limit, after)


def delete_rule(gw: Gateway, rule_id: str) -> None:
    """Delete a rule; its open incidents resolve on the workers' next evaluation."""
    _delete(gw, AlertRule, rule_id)


def rule_view(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "kind": rule.kind,
        "active": rule.active,
        "channel_ids": rule.channel_ids,
        "params": effective_params(RuleKind(rule.kind), rule.params),
        "created_at": iso(rule.created_at),
        "updated_at": iso(rule.updated_at),
    }


def _check_channels(session: Session, channel_ids: list[str]) -> None:
    known = set(session.scalars(select(AlertChannel.id).where(AlertChannel.id.in_(channel_ids))))
    missing = [
        Detail(f"channel_ids[{n}]", f"no alert channel {channel_id!r}")
        for n, channel_id in enumerate(channel_ids)
        if channel_id not in known
    ]
    if missing:
        raise ValidationFailed("the rule names channels that do not exist", details=missing)


#: What error messages call each model.
NAMES = {AlertChannel: "alert channel", AlertRule: "alert rule"}


def _get(session: Session, model: type[M], key: str, *, lock: bool = False) -> M:
    query = select(model).where(model.id == key)
    found = session.scalars(query.with_for_update() if lock else query).first()
    if found is None:
        raise NotFound.of(NAMES[model], key)
    return found


def _read(gw: Gateway, model: type[M], key: str) -> M:
    with gw.db.read_session() as session:
        return _get(session, model, key)


def _page(gw: Gateway, model: type[M], limit: int, after: str | None) -> list[M]:
    query = select(model).order_by(model.id).limit(limit)
    if after:
        query = query.where(model.id > after)
    with gw.db.read_session() as session:
        return list(session.scalars(query))


def _delete(gw: Gateway, model: type[M], key: str) -> None:
    with gw.db.session() as session:
        session.delete(_get(session, model, key, lock=True))
