"""Mapping documents and their versions; compiled once per version and cached."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.errors import Conflict, NotFound
from gateway.mapping import CompiledMapping, compile_mapping, validate_document
from gateway.models import MappingVersion
from gateway.storage import Storage

#: The first key of the advisory locks that line up edits of one mapping (by name).
MAPPING_EDITS = 1


@dataclass(frozen=True)
class VersionSource:
    """Where a version came from: a file (its path and the SHA-256 of its bytes), or an edit."""

    kind: str  #: ``file``, ``api`` or ``console``
    path: str | None = None
    sha256: str | None = None


API = VersionSource("api")
CONSOLE = VersionSource("console")


@dataclass(frozen=True)
class FileLoad:
    """What loading a file did: the newest version afterwards, and why it is that one."""

    row: MappingVersion
    #: ``new version``, ``unchanged``, or ``skipped``: a newer edit that the file would undo.
    outcome: str


def checksum(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class MappingStore:
    """Every change is a new immutable version; events record which version mapped them."""

    def __init__(self, database: Storage) -> None:
        self._db = database
        self._compiled: dict[tuple[str, int], CompiledMapping] = {}
        self._lock = threading.Lock()

    def put(
        self,
        name: str,
        document: Any,
        based_on: int | None = None,
        *,
        source: VersionSource,
    ) -> tuple[MappingVersion, bool]:
        """Store ``document`` as the newest version of ``name`` unless it is unchanged.

        Returns the version and whether a new one was made. With ``based_on`` (the version the
        change was made to), a mapping changed meanwhile is a Conflict, not a lost edit.
        """
        if isinstance(document, dict) and "name" not in document:
            document = {"name": name, **document}
        validate_document(document, name=name)
        digest = checksum(document)
        with self._db.session() as session:
            self._line_up_edits(session, name)
            latest = self._latest(session, name)
            if latest is not None and latest.checksum == digest:
                return latest, False
            return self._add(session, name, document, digest, latest, based_on, source), True

    def load_file(
        self, document: dict[str, Any], source: VersionSource, force: bool = False
    ) -> FileLoad:
        """Store a file's document as the newest version, unless that would undo an edit.

        A file whose document was already loaded from it makes no version: restarting with the
        same files changes nothing. A changed file does not replace a newest version made in
        the API or the console (or of unknown origin) unless ``force``d.
        """
        name = document["name"]
        validate_document(document, name=name)
        digest = checksum(document)
        with self._db.session() as session:
            self._line_up_edits(session, name)
            latest = self._latest(session, name)
            if latest is not None:
                if latest.checksum == digest or self._loaded_before(session, name, source, digest):
                    return FileLoad(latest, "unchanged")
                if latest.source != "file" and not force:
                    return FileLoad(latest, "skipped")
            row = self._add(session, name, document, digest, latest, None, source)
            return FileLoad(row, "new version")

    @staticmethod
    def _loaded_before(session: Session, name: str, source: VersionSource, digest: str) -> bool:
        """Whether the last version loaded from this file holds this document."""
        query = (
            select(MappingVersion.checksum)
            .where(MappingVersion.name == name, MappingVersion.source_path == source.path)
            .order_by(MappingVersion.version.desc())
            .limit(1)
        )
        return session.scalar(query) == digest

    @staticmethod
    def _add(
        session: Session,
        name: str,
        document: Any,
        digest: str,
        latest: MappingVersion | None,
        based_on: int | None,
        source: VersionSource,
    ) -> MappingVersion:
        """A new version after ``latest``, unless it was made to another (``based_on``)."""
        current = latest.version if latest else None
        if based_on is not None and based_on != current:
            raise Conflict(
                f"mapping {name!r} is at version {current or 'none'}, not {based_on}:"
                " read it again and make the change to that version",
                code="version_conflict",
            )
        row = MappingVersion(
            name=name,
            version=(latest.version + 1) if latest else 1,
            document=document,
            checksum=digest,
            created_at=datetime.now(UTC),
            source=source.kind,
            source_path=source.path,
            source_sha256=source.sha256,
        )
        session.add(row)
        return row

    def get(self, name: str, version: int | None = None) -> MappingVersion:
        with self._db.read_session() as session:
            if version is None:
                row = self._latest(session, name)
            else:
                row = session.get(MappingVersion, (name, version))
        if row is None:
            kind = "mapping" if version is None else f"version {version} of mapping"
            raise NotFound.of(kind, name)
        return row

    def latest(self, limit: int | None = None, after: str | None = None) -> list[MappingVersion]:
        """The newest version of every mapping, by name; or up to ``limit`` past ``after``."""
        newest = (
            select(MappingVersion.name, func.max(MappingVersion.version).label("version"))
            .group_by(MappingVersion.name)
            .subquery()
        )
        query = (
            select(MappingVersion)
            .join(
                newest,
                (MappingVersion.name == newest.c.name)
                & (MappingVersion.version == newest.c.version),
            )
            .order_by(MappingVersion.name)
            .limit(limit)
        )
        if after is not None:
            query = query.where(MappingVersion.name > after)
        with self._db.read_session() as session:
            return list(session.scalars(query))

    def versions(
        self, name: str, limit: int | None = None, before: int | None = None
    ) -> list[MappingVersion]:
        """Newest first; or up to ``limit`` of the versions below ``before``."""
        query = (
            select(MappingVersion)
            .where(MappingVersion.name == name)
            .order_by(MappingVersion.version.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(MappingVersion.version < before)
        with self._db.read_session() as session:
            rows = list(session.scalars(query))
            if not rows and self._latest(session, name) is None:
                raise NotFound.of("mapping", name)
        return rows

    def compiled(self, name: str, version: int | None = None) -> CompiledMapping:
        """The compiled mapping; compiling happens once per version per process."""
        if version is not None and (name, version) in self._compiled:
            return self._compiled[(name, version)]
        row = self.get(name, version)
        key = (row.name, row.version)
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = compile_mapping(row.document, row.version)
            return self._compiled[key]

    def _line_up_edits(self, session: Session, name: str) -> None:
        """Make edits of one mapping take turns until they commit, as SQLite's writers do.

        Two edits made at once would otherwise both read the same newest version: both
        numbering theirs after it (one failing on the primary key), or both creating the
        mapping.
        """
        self._db.line_up(session, MAPPING_EDITS, name)

    @staticmethod
    def _latest(session: Session, name: str) -> MappingVersion | None:
        query = (
            select(MappingVersion)
            .where(MappingVersion.name == name)
            .order_by(MappingVersion.version.desc())
            .limit(1)
        )
        return session.scalars(query).first()
