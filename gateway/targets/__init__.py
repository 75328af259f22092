"""Targets the worker upserts into: per group (``target``) or globally (``GATEWAY_TARGET``)."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.errors import TargetError
from gateway.targets.base import Target
from gateway.targets.local import LocalTarget


class TargetRegistry:
    """Opens targets by name: ``local``, ``salesforce`` or ``salesforce:<profile>``.

    Salesforce targets live as long as the process, so their login session and API-usage
    readings are reused; the local store is opened on the worker's own database session.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._remote: dict[str, Target] = {}
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
        kind, _, profile = name.partition(":")
        if kind != "salesforce":
            raise TargetError(f"unknown target {name!r}; use local or salesforce[:profile]")
        with self._lock:
            if name not in self._remote:
                from gateway.targets.salesforce import SalesforceSettings, SalesforceTarget

                settings = SalesforceSettings.from_env(self._settings.env, profile or None)
                self._remote[name] = SalesforceTarget(settings)
            return self._remote[name]

    def opened_remotes(self) -> dict[str, Target]:
        return dict(self._remote)
