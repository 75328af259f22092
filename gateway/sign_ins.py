"""How many console sign-ins one client address may try before it has to wait.

Each attempt is counted before the token is checked, in one statement that every web process
on every host shares through the database, so that no number of concurrent requests gets an
address more than its allowance. A successful sign-in clears the address's count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Executable, case, delete, select

from gateway.errors import TooManySignIns
from gateway.models import SignInAttempts
from gateway.storage import Storage

#: Expired rows removed with each attempt at most: more than an attempt adds (one), so the
#: table holds little beyond the addresses tried within the last window, and no attempt pays
#: for clearing up after a burst from many addresses all at once.
PURGE_BATCH = 100


def utc_now() -> datetime:
    return datetime.now(UTC)


class SignInThrottle:
    """At most ``limit`` sign-in attempts per address in a window of ``window_s`` seconds
    that opens at the first of them, unless one succeeds."""

    def __init__(
        self,
        db: Storage,
        limit: int,
        window_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.limit = limit
        self.window = timedelta(seconds=window_s)
        self.clock = clock
        self._insert = db.insert

    def attempt(self, address: str) -> int:
        """Count a sign-in attempt from ``address``; its number within the address's window.

        Raises TooManySignIns, saying when to try again, once the allowance is used up: the
        caller must then not check the token at all.
        """
        now = self.clock()
        with self.db.session() as session:
            session.execute(self._purge(now))
            number, started = session.execute(self._counted(address, now)).one()
        if number > self.limit:
            reopens = _aware(started) + self.window
            wait = max(1, math.ceil((reopens - now).total_seconds()))
            raise TooManySignIns(
                f"Too many failed sign-ins from your address ({self.limit} within"
                f" {in_words(self.window.total_seconds())}): try again in {in_words(wait)}.",
                retry_after_s=wait,
            )
        return int(number)

    def succeeded(self, address: str) -> None:
        """Give ``address`` its whole allowance back: it knows the token."""
        with self.db.session() as session:
            session.execute(delete(SignInAttempts).where(SignInAttempts.address == address))

    def _counted(self, address: str, now: datetime) -> Executable:
        """One more attempt for ``address``, opening a new window where the last one expired."""
        attempts = SignInAttempts.__table__.c
        expired = attempts.window_started_at <= now - self.window
        first = self._insert(SignInAttempts).values(
            address=address, attempts=1, window_started_at=now
        )
        return first.on_conflict_do_update(
            index_elements=[attempts.address],
            set_={
                "attempts": case((expired, 1), else_=attempts.attempts + 1),
                "window_started_at": case(
                    (expired, first.excluded.window_started_at), else_=attempts.window_started_at
                ),
            },
        ).returning(attempts.attempts, attempts.window_started_at)

    def _purge(self, now: datetime) -> Executable:
        """Delete a batch of rows whose window has passed (skipping any another process holds)."""
        attempts = SignInAttempts.__table__.c
        expired = (
            select(attempts.address)
            .where(attempts.window_started_at <= now - self.window)
            .limit(PURGE_BATCH)
            .with_for_update(skip_locked=True)
        )
        return delete(SignInAttempts).where(SignInAttempts.address.in_(expired))


def in_words(seconds: float) -> str:
    """A wait as an admin reads it: whole minutes from two minutes on, else seconds."""
    whole = math.ceil(seconds)
    if whole >= 120:
        return f"{math.ceil(whole / 60)} minutes"
    return "1 second" if whole == 1 else f"{whole} seconds"


def _aware(value: datetime) -> datetime:
    """SQLite gives back the UTC it was given without its zone."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
