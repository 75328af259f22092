"""All connector profiles: the shipped ones and those admins registered through the API."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.connectors import Profile, shipped_profiles, validate_profile
from gateway.errors import Conflict, NotFound
from gateway.models import ConnectorProfile
from gateway.storage import Storage


class ConnectorRegistry:
    """Looks profiles up by name; custom ones are cached and reloaded when a name is missing."""

    def __init__(self, database: Storage) -> None:
        self._db = database
        self._custom: dict[str, Profile] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Profile:
        profile = shipped_profiles().get(name) or self._custom.get(name)
        if profile is None:
            self._reload()
            profile = self._custom.get(name)
        if profile is None:
            raise NotFound.of("connector", name)
        return profile

    def all(self) -> list[Profile]:
        self._reload()
        return [*shipped_profiles().values(), *self._custom.values()]

    def register(self, document: Any) -> Profile:
        """Validate and store a custom profile; shipped names cannot be taken."""
        profile = validate_profile(document)
        if profile.name in shipped_profiles():
            raise Conflict(f"{profile.name!r} is a shipped connector; choose another name")
        taken = Conflict(f"a connector named {profile.name!r} already exists")
        with self._db.session() as session:
            if session.get(ConnectorProfile, profile.name) is not None:
                raise taken
            session.add(
                ConnectorProfile(
                    name=profile.name, document=profile.document, created_at=datetime.now(UTC)
                )
            )
            try:
                session.flush()
            except IntegrityError as exc:  # registered by another admin since the look above
                raise taken from exc
        self._reload()
        return profile

    def _reload(self) -> None:
        with self._db.read_session() as session:
            rows = session.scalars(select(ConnectorProfile)).all()
            loaded = {row.name: validate_profile(row.document) for row in rows}
        with self._lock:
            self._custom = loaded
