"""What every database the gateway runs on offers its services, and the SQLAlchemy code they
share: sessions, outage translation and JSON columns.

A service asks a :class:`Storage` for what it needs done; only the two implementations,
:mod:`gateway.storage.sqlite` and :mod:`gateway.storage.postgresql`, know which database they
speak to and how to make the most of it.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, Select, Table, create_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import Insert

from gateway.errors import StoreUnavailable
from gateway.models import EventResult
from gateway.storage import leases, results
from gateway.storage.driver import DriverStatement, RowsInsert
from gateway.storage.leases import Claim, Lease
from gateway.storage.results import BatchWrites, RecordKey


class JsonText(str):
    """JSON already in text form, for a JSON column: stored as it is, not encoded again."""


def serialize_json(value: Any) -> str:
    """The engines' JSON serializer: what JSON columns store for ``value``."""
    return value if isinstance(value, JsonText) else json.dumps(value)


def create_storage_engine(url: str, **options: Any) -> Engine:
    """An engine of either database, with what both need besides ``options``."""
    return create_engine(
        url,
        json_serializer=serialize_json,
        # A database error's text goes into logs and tracebacks: without this it lists the
        # statement's values, which are payloads, record fields and callback tokens.
        hide_parameters=True,
        **options,
    )


class Storage(ABC):
    """The gateway's database: sessions for the services, and the operations whose SQL or
    locking differs from one database to the other."""

    #: Whether this is the embedded database: for tests, and for messages naming it.
    is_sqlite: ClassVar[bool]
    #: Whether the inbox numbers a batch's deliveries itself (it holds the only write lock),
    #: rather than reading back the ids the database gave them.
    numbers_deliveries: ClassVar[bool]

    #: The engine of write sessions.
    engine: Engine
    #: The engine of read sessions; the write engine where readers need no engine of their own.
    read_engine: Engine
    #: The inbox's engine (:meth:`driver_transaction`).
    inbox_engine: Engine

    def __init__(self, url: str) -> None:
        self.url: URL = make_url(url)

    def _open_sessions(self) -> None:
        """Session factories over the engines; called once the engines exist."""
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    # --- sessions ------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A write session committed on success; database outages become StoreUnavailable."""
        with translate_outage(), self._sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reads only; never takes SQLite's write lock."""
        with translate_outage(), self._read_sessions() as session:
            yield session

    @contextlib.contextmanager
    def driver_transaction(self) -> Iterator[Any]:
        """A write transaction on the driver's own connection, and a cursor in it; durable
        when the block ends without an error.

        For statements compiled ahead (:mod:`gateway.storage.driver`) on the receive path,
        where SQLAlchemy's transaction and execution layers cost more than the statements.
        Driver errors come out as they are; the connection goes back to the pool either way,
        unless it cannot even roll back.
        """
        with self.inbox_engine.connect() as conn:
            dbapi_connection: Any = conn.connection.dbapi_connection
            cursor = dbapi_connection.cursor()
            try:
                with self._write_turn(dbapi_connection):
                    try:
                        yield cursor
                        dbapi_connection.commit()
                    except BaseException:
                        _roll_back_or_drop(conn, dbapi_connection)
                        raise
            finally:
                cursor.close()
        self._after_transaction()

    def _write_turn(self, dbapi_connection: Any) -> contextlib.AbstractContextManager[None]:
        """Around a driver transaction, from its start to its commit being durable: the
        driver begins one by itself and its commit is durable unless an implementation says
        otherwise here."""
        return contextlib.nullcontext()

    def _after_transaction(self) -> None:  # noqa: B027 (a hook most databases need not fill)
        """After a driver transaction, its connection back in the pool."""

    #: A query of the database's clock, one value that :meth:`clock_reading` makes a time of.
    clock_query: ClassVar[Select[tuple[Any]]]

    def now(self, session: Session) -> datetime:
        """The database's clock, in UTC: the one every lease and due time is read on, as
        workers and web processes on several hosts share it and not their own."""
        return self.clock_reading(session.execute(self.clock_query).scalar_one())

    def clock_reading(self, value: Any) -> datetime:
        """The time in UTC of what :attr:`clock_query` read."""
        return value  # type: ignore[no-any-return]

    # --- events: leases ------------------------------------------------------------------

    def claim(self, lease: Lease) -> Claim:
        """Lease due events to a worker (:func:`gateway.storage.leases.claim`)."""
        with self.session() as session:
            return leases.claim(session, lease, self.now(session))

    def still_leased(self, session: Session, worker_id: str, attempts: dict[int, int]) -> set[int]:
        """Of the events ``worker_id`` leased, by id with their attempts when leased, those it
        still leases, locked to the commit (:func:`gateway.storage.leases.still_leased`)."""
        return leases.still_leased(session, worker_id, attempts)

    # --- records and results -------------------------------------------------------------

    @abstractmethod
    def write_batch(self, batch: BatchWrites) -> None:
        """Run a batch's writes so that two workers never apply upserts to one record at once,
        nor an older event's after a newer one's: each database locks in its own way."""

    def applied_upserts(self, replayed_after: dict[int, int]) -> list[EventResult]:
        """The upserts events applied in attempts after the given ones (event id: attempt)."""
        with self.read_session() as session:
            return results.applied_upserts(session, replayed_after)

    def write_marks(self, session: Session, keys: Sequence[RecordKey]) -> dict[RecordKey, Any]:
        """The ordering value that last wrote each of these records."""
        return results.write_marks(session, keys)

    def write_results(
        self,
        session: Session,
        history: Sequence[dict[str, Any]],
        changes: Sequence[dict[str, Any]],
        marks: dict[RecordKey, tuple[Any, int]],
        usage: dict[str, tuple[int, int]],
        now: datetime,
    ) -> None:
        """An attempt's history rows, its events' new states (by id), the write marks of the
        records it wrote (ordering value, event id) and the targets' API usage (used, limit)
        as of ``now``."""
        results.write_results(session, history, changes, marks)
        results.save_usage(session, usage, now)

    # --- SQL that differs ----------------------------------------------------------------

    def many_rows_insert(self, statement: Insert, columns: Sequence[str]) -> RowsInsert:
        """How the inbox inserts a batch's rows into one table in :meth:`driver_transaction`:
        by default an executemany of ``statement`` compiled ahead."""
        return DriverStatement(statement, columns, self.inbox_engine.dialect)

    @abstractmethod
    def insert(self, table: Table | type[Any]) -> sqlite.Insert | postgresql.Insert:
        """An INSERT of the database's dialect, which has ``on_conflict_do_nothing`` and
        ``on_conflict_do_update``."""

    @abstractmethod
    def utc_minute(self, column: Any) -> Any:
        """The UTC minute of a time column as ``YYYY-MM-DD HH:MM`` text, computed by the
        database so that it can count by the minute."""

    @abstractmethod
    def sha256_hex(self, column: Any) -> Any:
        """The SHA-256 of a binary column as lower-case hex, computed by the database: a list
        of bodies shows their digests without reading the bodies out."""

    @abstractmethod
    def line_up(self, session: Session, namespace: int, name: str) -> None:
        """Make the transactions that call this with the same ``namespace`` and ``name`` take
        turns until they commit."""

    # --- housekeeping --------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether there is a database to read yet: a check that must not create one."""
        return True

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        with translate_outage(), self.read_engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def check_writable(self, room: int) -> None:
        """Raise StoreUnavailable, saying why, unless a write of ``room`` bytes could be
        committed now: cheap enough to be asked every few seconds (/readyz)."""
        self.ping()

    def dispose(self) -> None:
        for engine in {self.engine, self.read_engine, self.inbox_engine}:
            engine.dispose()


def _roll_back_or_drop(conn: Connection, dbapi_connection: Any) -> None:
    """Roll back a failed transaction; a connection that cannot even do that (the server is
    gone) is dropped, not handed back to the pool, whose own rollback would fail again and
    log it with a traceback. The transaction's own error is what its caller needs to see."""
    try:
        dbapi_connection.rollback()
    except Exception:
        conn.invalidate()


#: What the database says when a table is missing: SQLite's message, PostgreSQL's SQLSTATE.
_NO_SUCH_TABLE = "no such table"
_UNDEFINED_TABLE = "42P01"
NOT_MIGRATED = (
    "the database has no gateway schema, or an older one than this release needs: run"
    " `gateway db upgrade`"
)


@contextlib.contextmanager
def translate_outage() -> Iterator[None]:
    """Turn 'cannot reach or lock the database' into the domain's StoreUnavailable, and say so
    when the reason is a schema never migrated: senders retry a 503 until it is."""
    try:
        yield
    except DBAPIError as exc:
        original = exc.orig
        if _NO_SUCH_TABLE in str(original) or getattr(original, "sqlstate", None) == (
            _UNDEFINED_TABLE
        ):
            raise StoreUnavailable(NOT_MIGRATED, code="schema_not_migrated") from exc
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise StoreUnavailable() from exc
        raise
