"""OAuth 2.0 access tokens for callback URLs, and the client credentials that obtain them.

Pure: no Flask, no database. A token is a JWT (HS256) signed with a key derived from
``GATEWAY_SECRET_KEY``: any web process checks its signature, expiry and group without a
write per token issued. It names its client and the client's secret generation, so the
receive path still asks whether that client exists and has not been rotated since: revoking
a client or rotating its secret stops its tokens at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.errors import VerificationFailed

ALGORITHM = "HS256"
ISSUER = "webhook-gateway"
#: What an access token's audience says: the callback URL's group it is good for.
AUDIENCE_PREFIX = "group:"
#: Claims a token must carry, PyJWT checking those it knows (exp, iat, aud, iss).
REQUIRED_CLAIMS = ("exp", "iat", "aud", "iss", "sub", "gen")
#: Seconds of clock difference between web processes that an expiry is given.
LEEWAY_S = 5


def token_key(secret_key: str) -> bytes:
    """The signing key of access tokens, derived so that it is no other use's key."""
    kdf = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"gateway-oauth-access-tokens")
    return kdf.derive(secret_key.encode())


def new_client_secret() -> str:
    """A client secret: 256 random bits, URL-safe (nothing to escape in a form or in Basic)."""
    return secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    """What is stored of a client secret. Random 256-bit secrets need no slow hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, digest: str) -> bool:
    return hmac.compare_digest(secret_digest(secret).encode(), digest.encode())


@dataclass(frozen=True)
class Grant:
    """Who an access token was issued to."""

    client_id: str
    group_id: str
    generation: int


def issue(key: bytes, grant: Grant, now: int, ttl_s: int) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE_PREFIX + grant.group_id,
        "sub": grant.client_id,
        "gen": grant.generation,
        "iat": now,
        "exp": now + ttl_s,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def read(key: bytes, token: str, group_id: str) -> Grant:
    """The grant of a token good for ``group_id`` now; VerificationFailed otherwise.

    The reason is told to the sender (expired, or invalid), never which check failed beyond.
    """
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE_PREFIX + group_id,
            issuer=ISSUER,
            leeway=LEEWAY_S,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise VerificationFailed(
            "the access token has expired; fetch a new one", code="bearer_token_expired"
        ) from exc
    except jwt.InvalidTokenError as exc:
        raise invalid_token() from exc
    client_id, generation = claims["sub"], claims["gen"]
    if not isinstance(client_id, str) or type(generation) is not int:
        raise invalid_token()
    return Grant(client_id=client_id, group_id=group_id, generation=generation)


def invalid_token() -> VerificationFailed:
    return VerificationFailed(
        "the access token is not valid for this callback URL", code="bearer_token_invalid"
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 section 2.1)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise VerificationFailed(
            "this callback URL needs 'Authorization: Bearer <access token>'",
            code="bearer_token_missing",
        )
    return token.strip()


def challenge(code: str) -> dict[str, str]:
    """The ``WWW-Authenticate`` header of a delivery refused for its token (RFC 6750 3.1):
    an OAuth client library reads ``invalid_token`` as "fetch a new token"."""
    if not code.startswith("bearer_token_"):
        return {}
    if code == "bearer_token_missing":
        return {"WWW-Authenticate": 'Bearer realm="callback"'}
    return {"WWW-Authenticate": 'Bearer realm="callback", error="invalid_token"'}


class TokenRequestError(Exception):
    """A token request refused as RFC 6749 section 5.2 says: its ``error`` code and status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str


def client_credentials(
    authorization: str | None, form: Mapping[str, list[str]]
) -> ClientCredentials:
    """The client of a client-credentials token request (RFC 6749 sections 2.3.1 and 4.4).

    HTTP Basic, with the id and secret form-encoded inside it, or ``client_id`` and
    ``client_secret`` fields; one way only. Every parameter may be given once at most.
    """
    for name, values in form.items():
        if len(values) > 1:
            raise TokenRequestError("invalid_request", f"{name} is given more than once")
    grant_type = _field(form, "grant_type")
    if grant_type is None:
        raise TokenRequestError("invalid_request", "grant_type is missing")
    if grant_type != "client_credentials":
        raise TokenRequestError(
            "unsupported_grant_type", "only the client_credentials grant is supported"
        )
    in_form = _field(form, "client_id"), _field(form, "client_secret")
    if authorization:
        if any(value is not None for value in in_form):
            raise TokenRequestError(
                "invalid_request", "authenticate the client one way: HTTP Basic or form fields"
            )
        return _basic(authorization)
    client_id, client_secret = in_form
    if not client_id or not client_secret:
        raise TokenRequestError(
            "invalid_client",
            "client authentication is missing: HTTP Basic, or client_id and client_secret",
            status=401,
        )
    return ClientCredentials(client_id, client_secret)


def _field(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _basic(authorization: str) -> ClientCredentials:
    scheme, _, encoded = authorization.strip().partition(" ")
    unreadable = TokenRequestError(
        "invalid_client", "the Authorization header is not HTTP Basic client credentials", 401
    )
    if scheme.lower() != "basic":
        raise unreadable
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise unreadable from exc
    client_id, colon, client_secret = decoded.partition(":")
    if not colon or not client_id or not client_secret:
        raise unreadable
    return ClientCredentials(
        urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(client_secret)
    )
