"""The gateway's moving parts wired together once, for the web app, the worker and the CLI."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Select, select

from gateway.access_tokens import token_key
from gateway.config import Settings
from gateway.console_sessions import ConsoleSessionStore
from gateway.errors import ConfigurationError, StoreUnavailable
from gateway.mapping_store import MappingStore
from gateway.models import Group, TargetCredentials
from gateway.paging import Paging
from gateway.registry import ConnectorRegistry
from gateway.secrets import UNRECORDED, SecretBox
from gateway.sign_ins import SignInThrottle
from gateway.storage import Storage, open_storage
from gateway.storage.inbox import Inbox
from gateway.targets.credentials import CredentialStore

if TYPE_CHECKING:
    from gateway.alerts import Alerts
    from gateway.metrics import StatusCounts
    from gateway.targets import TargetRegistry
    from gateway.targets.limits import CallLimiter


class Gateway:
    """Settings, database, secret box, inbox, connector registry, mapping store and the
    console's sign-in throttle and open sign-ins."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.ensure_instance_secrets()
        self.db = open_storage(self.settings.database_url)
        secret_key = self.settings.secret_key
        assert secret_key is not None
        self._secret_key = secret_key
        self.box = SecretBox(secret_key)
        self.inbox = Inbox(self.db, self.settings.inbox_max_batch, self.settings.commit_timeout_s)
        self.connectors = ConnectorRegistry(self.db)
        self.mappings = MappingStore(self.db)
        self.credentials = CredentialStore(self.db, self.box)
        self.sign_ins = SignInThrottle(
            self.db, self.settings.sign_in_attempts, self.settings.sign_in_window_s
        )
        self.console_sessions = ConsoleSessionStore(self.db)
        #: Failed ``/oauth/token`` requests by client address, counted as sign-ins are.
        self.token_requests = SignInThrottle(
            self.db, self.settings.oauth_token_attempts, self.settings.sign_in_window_s
        )
        #: The key access tokens are signed with.
        self.token_key = token_key(secret_key)

    @classmethod
    def start(cls, settings: Settings) -> Gateway:
        """The Gateway of a process that starts serving or working: refused (ConfigurationError)
        with a secret key that cannot open the secrets already stored."""
        gw = cls(settings)
        try:
            gw.check_secret_key()
        except ConfigurationError:
            gw.close()
            raise
        return gw

    @cached_property
    def status_counts(self) -> StatusCounts:
        """Events by status, for /metrics and the console; this process's own, as it caches."""
        from gateway.metrics import StatusCounts

        return StatusCounts()

    @cached_property
    def targets(self) -> TargetRegistry:
        from gateway.targets import TargetRegistry

        return TargetRegistry(self.settings, self.credentials)

    @cached_property
    def limiter(self) -> CallLimiter:
        """The calls-per-second and daily budgets toward targets (``GATEWAY_TARGET_LIMITS``)."""
        from gateway.targets.limits import CallLimiter

        return CallLimiter(self.db, dict(self.settings.target_limits))

    @cached_property
    def alerts(self) -> Alerts:
        """The alert rules this process evaluates, at most every few seconds."""
        from gateway.alerts import Alerts

        return Alerts(self)

    def paging(self, scope: str) -> Paging:
        """The pages of the list ``scope``, its cursors signed with the secret key."""
        return Paging(self._secret_key, scope)

    def callback_url(self, token: str) -> str:
        return f"{self.settings.public_url}/hooks/{token}"

    def check_secret_key(self) -> None:
        """Refuse to start with a key that cannot open the secrets already stored.

        With another key (a host given none generates its own) every delivery to a group with a
        secret would be answered 503, and secrets set meanwhile encrypted with a key no other
        host has. A database that cannot be read now is left to say so itself, where it is used.
        """
        problem = self.secret_key_problem()
        if problem:
            raise ConfigurationError(
                f"{problem}: set GATEWAY_SECRET_KEY to the key they were stored with, the one"
                " every other process of this database uses. Started with this one, the gateway"
                " would answer 503 to every signed delivery and encrypt new secrets with the"
                " wrong key."
            )

    def secret_key_problem(self) -> str | None:
        """What is wrong with the secret key, when it cannot open the secrets stored; None
        when it can, or nothing is stored (or readable) yet."""
        needed = (self.box.foreign_key(ciphertext) for ciphertext in _stored_secrets(self.db))
        expected = {key for key in needed if key is not None}
        if not expected:
            return None
        recorded = sorted(key for key in expected if key != UNRECORDED)
        stored_with = (
            f"the key whose fingerprint is {recorded[0]}"
            if recorded
            else "another key (its fingerprint was not recorded by the release that stored them)"
        )
        return (
            f"the database holds secrets encrypted with {stored_with}, but the key read from"
            f" {self.settings.secret_key_source} has the fingerprint {self.box.fingerprint}"
        )

    def close(self) -> None:
        self.db.dispose()


def _stored_secrets(db: Storage) -> list[str]:
    """One stored ciphertext of each kind, or none while there is no database to read yet."""
    if not db.exists():
        return []  # nothing stored yet, and no file to create only to find that out
    queries: list[Select[str | None]] = [
        select(Group.secret_ciphertext).where(Group.secret_ciphertext.is_not(None)),
        select(Group.previous_secret_ciphertext).where(
            Group.previous_secret_ciphertext.is_not(None)
        ),
        select(TargetCredentials.ciphertext),
    ]
    try:
        with db.read_session() as session:
            return [found for query in queries if (found := session.scalar(query.limit(1)))]
    except StoreUnavailable:  # unreachable, or not migrated yet: nothing it holds can be read
        return []
