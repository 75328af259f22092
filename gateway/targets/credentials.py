"""Remote targets' credentials kept in the database, encrypted with the gateway's key.

Admins set them through the admin API (``PUT /api/v1/targets/{name}/credentials``) instead of
the environment when several orgs are fed, or when credentials change without a restart. They
are write-only: what comes back is which variables are set, with a hint of each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.errors import Detail, NotFound, ValidationFailed
from gateway.models import TargetCredentials
from gateway.secrets import SecretBox, hint
from gateway.storage import Storage
from gateway.views import TargetCredentialsView, stamp

#: The variables a Salesforce target reads; stored ones win over the environment's.
SALESFORCE_VARIABLES = (
    "SALESFORCE_USERNAME",
    "SALESFORCE_PASSWORD",
    "SALESFORCE_SECURITY_TOKEN",
    "SALESFORCE_DOMAIN",
    "SALESFORCE_CONSUMER_KEY",
    "SALESFORCE_CONSUMER_SECRET",
    "SALESFORCE_PRIVATE_KEY_FILE",
    "SALESFORCE_INSTANCE_URL",
    "SALESFORCE_SESSION_ID",
    "SALESFORCE_API_VERSION",
    "SALESFORCE_CA_BUNDLE",
    "SALESFORCE_TIMEOUT_S",
)
#: The variables an HTTP target reads (:mod:`gateway.targets.http`); stored ones win too.
HTTP_VARIABLES = (
    "HTTP_URL",
    "HTTP_PATH",
    "HTTP_METHOD",
    "HTTP_HEADERS",
    "HTTP_AUTH",
    "HTTP_TOKEN",
    "HTTP_USERNAME",
    "HTTP_PASSWORD",
    "HTTP_TOKEN_URL",
    "HTTP_CLIENT_ID",
    "HTTP_CLIENT_SECRET",
    "HTTP_SCOPE",
    "HTTP_SIGNING_SECRET",
    "HTTP_CA_BUNDLE",
    "HTTP_TIMEOUT_S",
    "HTTP_CONCURRENCY",
)
#: Each remote kind of target with the variables stored for it.
VARIABLES = {"salesforce": SALESFORCE_VARIABLES, "http": HTTP_VARIABLES}
REMOTE_TARGET = re.compile(r"^(salesforce|http)(:[A-Za-z0-9_]{1,80})?$")


@dataclass(frozen=True)
class StoredCredentials:
    target: str
    values: dict[str, str]
    updated_at: datetime


class CredentialStore:
    """Reads and writes encrypted credentials by target name."""

    def __init__(self, database: Storage, box: SecretBox) -> None:
        self._db = database
        self._box = box

    def put(self, target: str, values: Mapping[str, Any]) -> StoredCredentials:
        """Replace ``target``'s credentials with ``values`` (validated first)."""
        _check(target, values)
        stored = StoredCredentials(target, {k: str(v) for k, v in values.items()}, _now())
        ciphertext = self._box.encrypt(json.dumps(stored.values))
        with self._db.session() as session:
            session.merge(
                TargetCredentials(
                    target=target, ciphertext=ciphertext, updated_at=stored.updated_at
                )
            )
        return stored

    def get(self, target: str) -> StoredCredentials | None:
        with self._db.read_session() as session:
            row = session.get(TargetCredentials, target)
        if row is None:
            return None
        values: dict[str, str] = json.loads(self._box.decrypt(row.ciphertext))
        return StoredCredentials(target, values, row.updated_at)

    def delete(self, target: str) -> None:
        with self._db.session() as session:
            row = session.get(TargetCredentials, target)
            if row is None:
                raise NotFound.of("stored credentials for target", target)
            session.delete(row)


def environment_for(
    target: str, env: Mapping[str, str], stored: StoredCredentials | None
) -> dict[str, str]:
    """``env`` with the stored credentials laid over it, under the target's profile prefix."""
    merged = dict(env)
    if stored is None:
        return merged
    kind, _, profile = target.partition(":")
    prefix = f"{kind.upper()}_"
    for name, value in stored.values.items():
        key = f"{prefix}{profile.upper()}_{name.removeprefix(prefix)}" if profile else name
        merged[key] = value
    return merged


def view(stored: StoredCredentials) -> TargetCredentialsView:
    """What the API shows: the variables set, each as a hint, never a value."""
    return TargetCredentialsView(
        target=stored.target,
        variables={name: hint(value) for name, value in sorted(stored.values.items())},
        updated_at=stamp(stored.updated_at),
    )


def _check(target: str, values: Mapping[str, Any]) -> None:
    problems = []
    matched = REMOTE_TARGET.match(target)
    if not matched:
        problems.append(
            Detail("target", "credentials are kept for salesforce[:profile] and http[:profile]")
        )
    allowed = VARIABLES[matched.group(1)] if matched else ()
    for name, value in values.items():
        if matched and name not in allowed:
            problems.append(Detail(name, f"not one of {', '.join(allowed)}"))
        elif not isinstance(value, str) or not value or "\x00" in value:
            problems.append(Detail(name, "must be a non-empty string"))
    if not values:
        problems.append(Detail("$", "give at least one variable"))
    if problems:
        raise ValidationFailed("the credentials are not valid", details=problems)


def _now() -> datetime:
    return datetime.now(UTC)
