"""A connector's sample delivery signed as a group's sender signs it: what ``gateway send``
posts, and what the console's "send a test event" puts through the receive path, to try a
setup end to end before the provider sends anything."""

from __future__ import annotations

import time
from collections.abc import Sequence

from gateway.access_tokens import Grant, issue
from gateway.connectors import EVERY_EVENT, Profile, sample_delivery, sample_events
from gateway.errors import Conflict, Detail, ValidationFailed
from gateway.groups import accepted_secrets, now
from gateway.models import Group
from gateway.oauth_clients import list_clients
from gateway.services import Gateway
from gateway.verify import sign, with_api_key

#: How long the access token of a sample delivery is good for: long enough to post it.
SAMPLE_TOKEN_TTL_S = 60


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
    """Add the headers the group's sender would: the signature with the group's current
    secret, where the group says its key goes, and an access token where it requires one."""
    secrets = accepted_secrets(gw, group, now())
    spec = with_api_key(gw.connectors.get(group.connector).verification, group.api_key)
    headers.update(sign(spec, secrets[0] if secrets else "", body))
    if group.require_bearer:
        headers["Authorization"] = f"Bearer {_access_token(gw, group)}"


def _access_token(gw: Gateway, group: Group) -> str:
    """A short-lived token of one of the group's clients, as its token endpoint would give it:
    this process holds the key tokens are signed with, not the clients' secrets."""
    clients = list_clients(gw, group.id, 1, None)
    if not clients:
        raise Conflict(
            f"group {group.id} requires an OAuth access token and has no client to give one to:"
            f" create one (POST /api/v1/groups/{group.id}/oauth-clients)",
            code="no_oauth_client",
        )
    grant = Grant(clients[0].client_id, group.id, clients[0].generation)
    return issue(gw.token_key, grant, int(time.time()), SAMPLE_TOKEN_TTL_S)


def signed_sample(
    gw: Gateway, group: Group, event_type: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """A sample delivery for the group, signed, ready to post to its callback URL."""
    body, headers = sample_for(gw.connectors.get(group.connector), group.events, event_type)
    sign_as_sender(gw, group, body, headers)
    return body, headers
