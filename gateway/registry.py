"""All connector profiles: the shipped ones and those admins registered through the API.

Custom profiles are versioned: each change is a new version kept with the keys it changed, and
the groups using the profile are stamped with the new version in the same transaction, so a
delivery verified against the version before is checked again when it commits
(:data:`gateway.storage.inbox.GROUP_STATE`): a change applies to deliveries received after it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.connectors import Profile, shipped_profiles, validate_profile
from gateway.errors import Conflict, Detail, NotFound, ValidationFailed
from gateway.models import ConnectorProfile, ConnectorProfileVersion, Group, Webhook
from gateway.storage import Storage

log = logging.getLogger(__name__)

#: Keys a profile shows (``GET``) that are not part of its document; an edit may send them back.
SHOWN_ONLY = ("samples", "version", "history", "custom")


class ConnectorRegistry:
    """Looks profiles up by name; custom ones are cached and reloaded when a name is missing
    or a group asks for another version than the cached one."""

    def __init__(self, database: Storage) -> None:
        self._db = database
        self._custom: dict[str, Profile] = {}
        self._lock = threading.Lock()

    def get(self, name: str, version: int | None = None) -> Profile:
        """The profile called ``name``; for a custom one, read again unless the cached one is at
        ``version`` when given (a profile deleted and made again starts over at 1)."""
        profile = shipped_profiles().get(name) or self._custom.get(name)
        stale = version is not None and profile is not None and profile.version != version
        if profile is None or stale:
            self._reload()
            profile = self._custom.get(name)
        if profile is None:
            raise NotFound.of("connector", name)
        return profile

    def all(self) -> list[Profile]:
        self._reload()
        return [*shipped_profiles().values(), *self._custom.values()]

    def register(self, document: Any) -> Profile:
        """Validate and store a new custom profile; shipped names cannot be taken."""
        profile = validate_profile(document)
        _refuse_shipped(profile.name, "is a shipped connector; choose another name")
        taken = Conflict(f"a connector named {profile.name!r} already exists")
        with self._db.session() as session:
            if session.get(ConnectorProfile, profile.name) is not None:
                raise taken
            _create(session, profile, taken)
        log.info("connector profile %r registered", profile.name)
        self._reload()
        return self.get(profile.name)

    def put(self, name: str, document: Any) -> tuple[Profile, bool]:
        """Store ``document`` as the newest version of the custom profile ``name`` (made when
        there is none); returns the profile and whether a new version was made.

        A ``version`` in the document names the one the edit was made to: a newer one by now
        is a Conflict, not a lost edit. A change that would take from a group the function or
        the events it registers is refused with the groups named.
        """
        _refuse_shipped(name, "is shipped with the gateway and read-only; register a copy")
        based_on, document = _edited_document(name, document)
        profile = validate_profile(document)
        with self._db.session() as session:
            row = session.get(ConnectorProfile, name, with_for_update=True)
            if row is None:
                if based_on is not None:
                    raise NotFound.of("connector", name)
                _create(session, profile, Conflict(f"connector {name!r} was registered meanwhile"))
                created = True
            else:
                if based_on is not None and based_on != row.version:
                    raise Conflict(
                        f"connector {name!r} is at version {row.version}, not {based_on};"
                        " reload it and edit again",
                        code="version_conflict",
                    )
                changes = changed_keys(row.document, profile.document)
                if not changes:
                    return _profile(row), False
                _check_groups_keep_working(session, profile)
                version = row.version + 1
                _add_version(session, profile, version, changes, row)
                session.execute(
                    update(Group).where(Group.connector == name).values(connector_version=version)
                )
                created = False
        if created:
            log.info("connector profile %r registered", name)
        else:
            log.info(
                "connector profile %r changed to version %d (%s); deliveries received from now"
                " on are verified and read with it",
                name,
                version,
                ", ".join(changes),
            )
        self._reload()
        return self.get(name), True

    def delete(self, name: str) -> None:
        """Delete a custom profile and its history; refused while a group uses it."""
        _refuse_shipped(name, "is shipped with the gateway and cannot be deleted")
        with self._db.session() as session:
            row = session.get(ConnectorProfile, name, with_for_update=True)
            if row is None:
                raise NotFound.of("connector", name)
            users = session.scalars(
                select(Group).where(Group.connector == name).order_by(Group.name, Group.id)
            ).all()
            if users:
                raise Conflict(
                    f"connector {name!r} is used by {len(users)} webhook group(s);"
                    " delete them or move them to another connector first",
                    code="connector_in_use",
                    details=[Detail("groups", f"{g.name!r} ({g.id})") for g in users],
                )
            session.execute(
                delete(ConnectorProfileVersion).where(ConnectorProfileVersion.name == name)
            )
            session.delete(row)
        log.info("connector profile %r deleted", name)
        with self._lock:
            self._custom.pop(name, None)

    def history(self, name: str) -> list[ConnectorProfileVersion]:
        """A custom profile's versions, newest first; empty for a shipped one."""
        if name in shipped_profiles():
            return []
        with self._db.read_session() as session:
            return list(
                session.scalars(
                    select(ConnectorProfileVersion)
                    .where(ConnectorProfileVersion.name == name)
                    .order_by(ConnectorProfileVersion.version.desc())
                )
            )

    def _reload(self) -> None:
        with self._db.read_session() as session:
            rows = session.scalars(select(ConnectorProfile)).all()
            loaded = {row.name: _profile(row) for row in rows}
        with self._lock:
            self._custom = loaded


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The top-level keys whose values differ, in name order."""
    return sorted(key for key in {*before, *after} if before.get(key) != after.get(key))


def _refuse_shipped(name: str, why: str) -> None:
    if name in shipped_profiles():
        raise Conflict(f"connector {name!r} {why}", code="connector_read_only")


def _edited_document(name: str, document: Any) -> tuple[int | None, Any]:
    """The document without what GET adds to it, and the version the edit was made to."""
    if not isinstance(document, dict):
        return None, document
    based_on = document.get("version")
    edited = {key: value for key, value in document.items() if key not in SHOWN_ONLY}
    edited.setdefault("name", name)
    if edited["name"] != name:
        raise ValidationFailed(
            "the document names another connector",
            details=[Detail("name", f"must be {name!r}, as in the URL")],
        )
    if based_on is not None and (not isinstance(based_on, int) or isinstance(based_on, bool)):
        raise ValidationFailed(
            "version must be the number of the version edited",
            details=[Detail("version", "must be an integer")],
        )
    return based_on, edited


def _check_groups_keep_working(session: Session, profile: Profile) -> None:
    """Refuse a version that takes from a group (or one of its webhook records) its function or
    events it registers: its deliveries would stop being taken, silently. The admin changes
    those groups first."""
    groups = session.scalars(
        select(Group).where(Group.connector == profile.name).order_by(Group.name, Group.id)
    ).all()
    records = session.scalars(
        select(Webhook)
        .where(Webhook.group_id.in_([group.id for group in groups]))
        .order_by(Webhook.created_at, Webhook.id)
    ).all()
    problems = []
    for group in groups:
        try:
            profile.function(group.function)
        except KeyError:
            problems.append(Detail("functions", f"group {group.name!r} uses {group.function!r}"))
            continue
        takers = [(f"group {group.name!r}", group.events)] + [
            (f"webhook record {r.label!r} of group {group.name!r}", r.events)
            for r in records
            if r.group_id == group.id
        ]
        for who, events in takers:
            unknown = profile.unknown_events(group.function, events)
            if unknown:
                names = ", ".join(repr(event) for event in unknown)
                where = f"functions.{group.function}.events"
                problems.append(Detail(where, f"{who} takes {names}"))
    if problems:
        raise Conflict(
            "this version would take from webhook groups what they use; change the groups first",
            code="connector_in_use",
            details=problems,
        )


def _create(session: Session, profile: Profile, taken: Conflict) -> None:
    """Store a new profile as its version 1; ``taken`` if another admin stored one first."""
    _add_version(session, profile, 1, ["created"])
    try:
        session.flush()
    except IntegrityError as exc:  # registered by another admin since the caller looked
        raise taken from exc


def _add_version(
    session: Session,
    profile: Profile,
    version: int,
    changes: list[str],
    row: ConnectorProfile | None = None,
) -> None:
    """Record ``version`` in the history and make it the current document."""
    stamp = datetime.now(UTC)
    session.add(
        ConnectorProfileVersion(
            name=profile.name,
            version=version,
            document=profile.document,
            changes=changes,
            created_at=stamp,
        )
    )
    if row is None:
        session.add(
            ConnectorProfile(
                name=profile.name,
                document=profile.document,
                version=version,
                created_at=stamp,
                updated_at=stamp,
            )
        )
    else:
        row.document, row.version, row.updated_at = profile.document, version, stamp


def _profile(row: ConnectorProfile) -> Profile:
    profile = validate_profile(row.document)
    return Profile(profile.name, profile.title, profile.document, version=row.version)
