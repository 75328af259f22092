"""The gateway's moving parts wired together once, for the web app, the worker and the CLI."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from gateway.config import Settings
from gateway.db import Database
from gateway.inbox import Inbox
from gateway.mapping_store import MappingStore
from gateway.paging import Paging
from gateway.registry import ConnectorRegistry
from gateway.secrets import SecretBox
from gateway.sign_ins import SignInThrottle
from gateway.targets.credentials import CredentialStore

if TYPE_CHECKING:
    from gateway.alerts import Alerts
    from gateway.metrics import StatusCounts
    from gateway.targets import TargetRegistry


class Gateway:
    """Settings, database, secret box, inbox, connector registry, mapping store and the
    console's sign-in throttle."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.ensure_instance_secrets()
        self.db = Database(self.settings.database_url)
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
    def alerts(self) -> Alerts:
        """The alert rules this process evaluates, at most every few seconds."""
        from gateway.alerts import Alerts

        return Alerts(self)

    def paging(self, scope: str) -> Paging:
        """The pages of the list ``scope``, its cursors signed with the secret key."""
        return Paging(self._secret_key, scope)

    def callback_url(self, token: str) -> str:
        return f"{self.settings.public_url}/hooks/{token}"

    def close(self) -> None:
        self.db.dispose()
