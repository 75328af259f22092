"""Targets the worker upserts into: per group (``target``) or globally (``GATEWAY_TARGET``)."""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.errors import TargetError
from gateway.target_names import TARGET_NAMES, is_target_name
from gateway.targets.base import Target
from gateway.targets.credentials import CredentialStore, environment_for
from gateway.targets.local import LocalTarget


class TargetRegistry:
    """Opens targets by name: ``local``, ``salesforce[:<profile>]`` or ``http[:<profile>]``.

    Remote targets live as long as the process, so their login session, access token and
    API-usage readings are reused; the local store is opened on the worker's own database
    session.
    """

    def __init__(self, settings: Settings, credentials: CredentialStore) -> None:
        self._settings = settings
        self._credentials = credentials
        #: Each opened remote target with the stored credentials' time it was built from.
        self._remote: dict[str, tuple[Target, datetime | None]] = {}
        self._lock = threading.Lock()

    def default_name(self) -> str:
        return self._settings.target

    def open(self, name: str | None, session: Session) -> Target:
        name = name or self.default_name()
        if name == "local":
            return LocalTarget(session)
        return self.remote(name)

    def is_local(self, name: str | None) -> bool:
        return (name or self.default_name()) == "local"

    def remote(self, name: str) -> Target:
        """The remote target ``name``, rebuilt when its stored credentials have changed."""
        if not is_target_name(name) or name == "local":
            raise TargetError(f"unknown target {name!r}; use {TARGET_NAMES}")
        stored = self._credentials.get(name)
        version = stored.updated_at if stored else None
        with self._lock:
            opened = self._remote.get(name)
            if opened is None or opened[1] != version:
                env = environment_for(name, self._settings.env, stored)
                self._remote[name] = opened = (_build(name, env), version)
            return opened[0]


def _build(name: str, env: dict[str, str]) -> Target:
    """A remote target from its settings; the modules of the clients are loaded on first use."""
    kind, _, profile = name.partition(":")
    if kind == "http":
        from gateway.targets.http import HttpSettings, HttpTarget

        return HttpTarget(HttpSettings.from_env(env, profile or None))
    from gateway.targets.salesforce import SalesforceSettings, SalesforceTarget

    return SalesforceTarget(SalesforceSettings.from_env(env, profile or None))
