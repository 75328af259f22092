"""Notification channels: what each kind is configured with, and how it sends a message.

A generic webhook gets the message as JSON signed with the Standard Webhooks scheme (its
receiver verifies it as the gateway verifies its own senders); a Slack-compatible incoming
webhook gets its text; email goes over SMTP with STARTTLS. Each kind has one secret (the
signing key, the Slack URL, which is a credential itself, the SMTP password), stored encrypted.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import requests

from gateway.errors import GatewayError
from gateway.verify import sign

#: How long a channel may take to answer; the worker that sends waits that long at most.
SEND_TIMEOUT_S = 10.0
HTTP_URL = {"type": "string", "maxLength": 2000, "pattern": "^https?://[^\\s\\x00]+$"}
ADDRESS = {
    "type": "string",
    "minLength": 3,
    "maxLength": 320,
    "pattern": "^[^\\s@\\x00]+@[^\\s@]+$",
}
SIGNING = {"scheme": "standard-webhooks"}


class ChannelFailed(GatewayError):
    """The channel did not take the message."""

    status = 502
    code = "channel_failed"


@dataclass(frozen=True)
class Message:
    """What an alert says, the same on every channel."""

    #: The same for every try of one notice, so that a receiver can drop a repeat.
    id: str
    #: ``incident.opened``, ``incident.resolved`` or ``test``.
    type: str
    title: str
    text: str
    incident: dict[str, Any] | None = None

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "text": self.text,
            "incident": self.incident,
        }


Send = Callable[[dict[str, Any], str | None, Message], None]


@dataclass(frozen=True)
class ChannelKind:
    """One kind of channel: its settings (JSON Schema properties), its secret, how it sends."""

    send: Send
    secret_field: str
    secret_schema: dict[str, Any]
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    required: tuple[str, ...] = ()


def _post(url: str, **kwargs: Any) -> None:
    try:
        response = requests.post(url, timeout=SEND_TIMEOUT_S, allow_redirects=False, **kwargs)
    except requests.RequestException as exc:
        raise ChannelFailed(f"the channel could not be reached: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise ChannelFailed(f"the channel answered {response.status_code}: {response.text[:200]}")


def send_webhook(settings: dict[str, Any], secret: str | None, message: Message) -> None:
    body = json.dumps(message.document()).encode()
    headers = sign(SIGNING, secret or "", body, message_id=message.id)
    _post(settings["url"], data=body, headers={**headers, "Content-Type": "application/json"})


def send_slack(settings: dict[str, Any], secret: str | None, message: Message) -> None:
    _post(secret or "", json={"text": f"*{message.title}*\n{message.text}"})


def send_email(settings: dict[str, Any], secret: str | None, message: Message) -> None:
    email = EmailMessage()
    email["Subject"] = message.title
    email["From"] = settings["from"]
    email["To"] = ", ".join(settings["to"])
    email["Message-ID"] = f"<{message.id}@gateway>"
    email.set_content(message.text)
    try:
        with smtplib.SMTP(settings["host"], settings["port"], timeout=SEND_TIMEOUT_S) as smtp:
            smtp.starttls(context=ssl.create_default_context())
            if settings.get("username"):
                smtp.login(settings["username"], secret or "")
            smtp.send_message(email)
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelFailed(f"the SMTP server did not take the message: {exc}") from exc


def _secret(description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": 2000, "writeOnly": True,
            "description": description}  # fmt: skip


CHANNEL_KINDS: dict[str, ChannelKind] = {
    "webhook": ChannelKind(
        send=send_webhook,
        secret_field="secret",
        secret_schema={
            **_secret("The Standard Webhooks signing key: base64, optionally after whsec_."),
            "pattern": "^(whsec_)?[A-Za-z0-9+/]+={0,2}$",
        },
        settings={"url": HTTP_URL},
        required=("url", "secret"),
    ),
    "slack": ChannelKind(
        send=send_slack,
        secret_field="url",
        secret_schema={**_secret("The incoming webhook's URL, a credential itself."), **HTTP_URL},
        required=("url",),
    ),
    "email": ChannelKind(
        send=send_email,
        secret_field="password",
        secret_schema=_secret("The SMTP password, when the server asks for one."),
        settings={
            "host": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^\\s]+$"},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 587},
            "username": {"type": ["string", "null"], "maxLength": 320},
            "from": ADDRESS,
            "to": {"type": "array", "items": ADDRESS, "minItems": 1, "maxItems": 50},
        },
        required=("host", "from", "to"),
    ),
}


def channel_settings(
    kind: ChannelKind, given: dict[str, Any], *, defaults: bool = True
) -> dict[str, Any]:
    """The settings among ``given``, and with ``defaults`` the defaults of those it lacks."""
    return {
        name: given.get(name, spec.get("default"))
        for name, spec in kind.settings.items()
        if name in given or (defaults and "default" in spec)
    }
