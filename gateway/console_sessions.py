"""Console sign-ins held in the database, so that signing out ends one at once.

The session cookie is signed, and would otherwise be good until its lifetime ran out whatever
the admin did: a copy taken before sign-out would keep working. Each sign-in is a row, keyed by
a digest of the random id the cookie carries; sign-out deletes it, and every web process on
every host refuses the cookie from then on.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from gateway.models import ConsoleSession
from gateway.storage import Storage

#: How long a sign-in lasts; admins sign in again after a working day.
SESSION_LIFETIME = timedelta(hours=12)


def _key(session_id: str) -> str:
    """What the table keeps of an id: one read from the table cannot be replayed as a cookie."""
    return hashlib.sha256(session_id.encode()).hexdigest()


class ConsoleSessionStore:
    """Sign-ins that are open: started at sign-in, ended at sign-out or when they expire."""

    def __init__(self, db: Storage, lifetime: timedelta = SESSION_LIFETIME) -> None:
        self.db = db
        self.lifetime = lifetime

    def start(self) -> str:
        """A new open sign-in; its id, for the cookie. Expired ones are cleared meanwhile."""
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.db.session() as session:
            session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
            session.add(
                ConsoleSession(id=_key(session_id), created_at=now, expires_at=now + self.lifetime)
            )
        return session_id

    def is_open(self, session_id: str) -> bool:
        query = select(ConsoleSession.id).where(
            ConsoleSession.id == _key(session_id),
            ConsoleSession.expires_at > datetime.now(UTC),
        )
        with self.db.read_session() as session:
            return session.scalar(query) is not None

    def end(self, session_id: str) -> None:
        with self.db.session() as session:
            session.execute(delete(ConsoleSession).where(ConsoleSession.id == _key(session_id)))
