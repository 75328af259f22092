"""A connector's sample delivery signed as a group's sender signs it: what ``gateway send``
posts, and what the console's "send a test event" puts through the receive path, to try a
setup end to end before the provider sends anything."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.connectors import EVERY_EVENT, Profile, sample_delivery, sample_events
from gateway.errors import Detail, ValidationFailed
from gateway.groups import accepted_secrets, now
from gateway.models import Group
from gateway.services import Gateway
from gateway.verify import sign


def sample_for(
    profile: Profile, registered: Sequence[str], event_type: str | None
) -> tuple[bytes, dict[str, str]]:
    """The connector's sample delivery for ``event_type``, or for the first registered event
    that has one."""
    have = sample_events(profile)
    if EVERY_EVENT in registered:
        registered = have
    samples = f"samples: {', '.join(have) or 'none'}"
    if event_type is None:
        event_type = next((e for e in registered if e in have), None)
        if event_type is None:
            raise ValidationFailed(
                f"none of the group's events has a {profile.name} sample ({samples})",
                details=[Detail("event", samples)],
            )
    if event_type not in have:
        raise ValidationFailed(
            f"connector {profile.name!r} has no sample for event {event_type!r} ({samples})",
            details=[Detail("event", samples)],
        )
    return sample_delivery(profile, event_type)


def sign_as_sender(gw: Gateway, group: Group, body: bytes, headers: dict[str, str]) -> None:
    """Add the signature headers the group's sender would, with the group's current secret."""
    secrets = accepted_secrets(gw, group, now())
    profile = gw.connectors.get(group.connector)
    headers.update(sign(profile.verification, secrets[0] if secrets else "", body))


def signed_sample(
    gw: Gateway, group: Group, event_type: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """A sample delivery for the group, signed, ready to post to its callback URL."""
    body, headers = sample_for(gw.connectors.get(group.connector), group.events, event_type)
    sign_as_sender(gw, group, body, headers)
    return body, headers
