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
REMOTE_TARGET = re.compile(r"^salesforce(:[A-Za-z0-9_]{1,80})?$")


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
    _, _, profile = target.partition(":")
    for name, value in stored.values.items():
        key = (
            f"SALESFORCE_{profile.upper()}_{name.removeprefix('SALESFORCE_')}" if profile else name
        )
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
    if not REMOTE_TARGET.match(target):
        problems.append(Detail("target", "credentials are kept for salesforce[:profile] only"))
    for name, value in values.items():
        if name not in SALESFORCE_VARIABLES:
            problems.append(Detail(name, f"not one of {', '.join(SALESFORCE_VARIABLES)}"))
        elif not isinstance(value, str) or not value or "\x00" in value:
            problems.append(Detail(name, "must be a non-empty string"))
    if not values:
        problems.append(Detail("$", "give at least one variable"))
    if problems:
        raise ValidationFailed("the credentials are not valid", details=problems)


def _now() -> datetime:
    return datetime.now(UTC)
