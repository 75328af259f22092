"""A group's OAuth clients, the access tokens they obtain, and the check of a delivery's token.

The gateway is the authorization server of its own callback URLs (RFC 6749 client-credentials
grant): an admin makes a client for a group, its sender exchanges the client's id and secret
at ``POST /oauth/token`` for a short-lived token, and sends it with each delivery.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import delete, select

from gateway import access_tokens
from gateway.access_tokens import ClientCredentials, Grant, TokenRequestError
from gateway.errors import NotFound, TooManySignIns
from gateway.groups import get_group, new_id
from gateway.models import Group, OAuthClient
from gateway.secrets import hint
from gateway.services import Gateway

#: Prefixed to the client address whose failed token requests the sign-in throttle counts,
#: so that they never share a count with console sign-ins.
THROTTLE_PREFIX = "oauth:"
#: The longest client id there is (``new_id``'s).
MAX_CLIENT_ID = 32


def create_client(gw: Gateway, group_id: str, name: str | None) -> tuple[OAuthClient, str]:
    """A new client of the group, and its secret: the only time anyone sees it."""
    secret = access_tokens.new_client_secret()
    client = OAuthClient(
        client_id=new_id(),
        group_id=group_id,
        name=name,
        secret_sha256=access_tokens.secret_digest(secret),
        secret_hint=hint(secret),
        generation=1,
        created_at=datetime.now(UTC),
    )
    with gw.db.session() as session:
        if session.get(Group, group_id, with_for_update=True) is None:
            raise NotFound.of("webhook group", group_id)
        session.add(client)
    return client, secret


def list_clients(gw: Gateway, group_id: str, limit: int, after: str | None) -> list[OAuthClient]:
    query = (
        select(OAuthClient)
        .where(OAuthClient.group_id == group_id)
        .order_by(OAuthClient.client_id)
        .limit(limit)
    )
    if after:
        query = query.where(OAuthClient.client_id > after)
    get_group(gw, group_id)
    with gw.db.read_session() as session:
        return list(session.scalars(query))


def revoke_client(gw: Gateway, group_id: str, client_id: str) -> None:
    """Forget the client: its tokens are refused from the next delivery on."""
    with gw.db.session() as session:
        removed = session.execute(
            delete(OAuthClient).where(
                OAuthClient.group_id == group_id, OAuthClient.client_id == client_id
            )
        )
        if not removed.rowcount:  # type: ignore[attr-defined]
            raise NotFound.of("OAuth client", client_id)


def rotate_client_secret(gw: Gateway, group_id: str, client_id: str) -> tuple[OAuthClient, str]:
    """A new secret for the client; the old one and every token it obtained stop working."""
    secret = access_tokens.new_client_secret()
    with gw.db.session() as session:
        client = session.get(OAuthClient, client_id, with_for_update=True)
        if client is None or client.group_id != group_id:
            raise NotFound.of("OAuth client", client_id)
        client.secret_sha256 = access_tokens.secret_digest(secret)
        client.secret_hint = hint(secret)
        client.generation += 1
        client.rotated_at = datetime.now(UTC)
    return client, secret


def issue_token(gw: Gateway, address: str, credentials: ClientCredentials) -> str:
    """An access token for a client that proved its secret; counted against ``address``.

    Every request counts against its address before the secret is checked, and a success
    clears the count, as for console sign-ins.
    """
    throttled = THROTTLE_PREFIX + address
    try:
        gw.token_requests.attempt(throttled)
    except TooManySignIns as exc:
        raise TokenRequestError(
            "temporarily_unavailable",
            f"too many failed token requests from this address; retry in {exc.retry_after_s} s",
            status=429,
        ) from exc
    client = _client(gw, credentials.client_id)
    if client is None or not access_tokens.secret_matches(
        credentials.client_secret, client.secret_sha256
    ):
        raise TokenRequestError("invalid_client", "unknown client or wrong secret", status=401)
    gw.token_requests.succeeded(throttled)
    grant = Grant(client.client_id, client.group_id, client.generation)
    return access_tokens.issue(gw.token_key, grant, int(time.time()), gw.settings.oauth_token_ttl_s)


def _client(gw: Gateway, client_id: str) -> OAuthClient | None:
    if len(client_id) > MAX_CLIENT_ID or "\x00" in client_id:  # no such id: nothing to look up
        return None
    with gw.db.read_session() as session:
        return session.get(OAuthClient, client_id)


def check_bearer(gw: Gateway, group: Group, headers: Mapping[str, str]) -> None:
    """Refuse (VerificationFailed) a delivery without a live token of one of group's clients."""
    token = access_tokens.bearer_token(headers.get("authorization"))
    grant = access_tokens.read(gw.token_key, token, group.id)
    with gw.db.read_session() as session:
        generation = session.scalar(
            select(OAuthClient.generation).where(
                OAuthClient.client_id == grant.client_id, OAuthClient.group_id == group.id
            )
        )
    if generation != grant.generation:
        raise access_tokens.invalid_token()
