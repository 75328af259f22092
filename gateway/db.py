"""Engines and sessions for SQLite (the embedded default) and PostgreSQL.

SQLite gets two engines on the same file: writers open their transaction with ``BEGIN
IMMEDIATE`` so they queue on the write lock instead of failing to upgrade a read lock, and
readers use plain deferred transactions that WAL lets run beside a writer. PostgreSQL needs no
such care, so both names point at the same engine there.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import ConfigurationError, StoreUnavailable
from gateway.greenlets import cooperative, off_the_hub

log = logging.getLogger(__name__)

#: How long a writer waits for SQLite's write lock before the database counts as unavailable.
BUSY_TIMEOUT_S = 30.0
#: How long a new PostgreSQL connection may take before the database counts as unavailable.
CONNECT_TIMEOUT_S = 5
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}",
    "PRAGMA foreign_keys=ON",
)
#: Every commit is on disk, even across power loss, before it returns.
SYNC_ON_COMMIT = "PRAGMA synchronous=FULL"
#: The inbox's connections: a commit returns once written, and the inbox syncs the WAL itself
#: after letting go of the write lock (:meth:`Database.driver_transaction`). Checkpoints still
#: sync the WAL before and the database after, so the file stays whole either way.
SYNC_BY_CALLER = "PRAGMA synchronous=NORMAL"
#: Nor do they checkpoint as part of a commit, under the write lock: the inbox starts one beside
#: its writer now and then (:meth:`Database.driver_transaction`).
NO_CHECKPOINT_ON_COMMIT = "PRAGMA wal_autocheckpoint=0"
#: The inbox's commits between two checkpoints it starts (per process): a commit of a batch
#: adds some 30 to 60 pages to the WAL, and SQLite's own checkpoints come every 1,000 pages,
#: which one web process reaches in about 20 commits and two in about 40 (20 each).
CHECKPOINT_EVERY = 32
#: SQLite's page cache for writers (KiB; its default is 2 MiB): the dedupe index takes random
#: inserts, and once it outgrows the cache every delivery reads some of its pages back.
WRITER_CACHE_KIB = 32768
#: A sync of the WAL that took less than this is made on the hub the next time: under gevent,
#: handing a call to a native thread and back costs about 0.15 ms of CPU (three wake-ups), more
#: than a quick disk keeps the process waiting, and its requests all wait on that sync anyway.
QUICK_SYNC_S = 0.001
#: Between two tries at SQLite's lock under gevent: short beside a commit, long beside a syscall.
COOPERATIVE_POLL_S = 0.0005


class JsonText(str):
    """JSON already in text form, for a JSON column: stored as it is, not encoded again."""


def serialize_json(value: Any) -> str:
    """The engines' JSON serializer: what JSON columns store for ``value``."""
    return value if isinstance(value, JsonText) else json.dumps(value)


class Database:
    """The gateway's database: a write engine, a read engine and session factories."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._lock_path: str | None = None
        self._records_lock_path: str | None = None
        self._wal_path: str | None = None
        self._commits = 0
        self._last_sync_s = 0.0
        self._checkpointing = threading.Lock()
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            self._lock_path = f"{self.url.database}-writers.lock"
            self._records_lock_path = f"{self.url.database}-records.lock"
            self._wal_path = f"{self.url.database}-wal"
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
            #: The inbox's own connections, which leave syncing the WAL to it.
            self.inbox_engine = (
                _sqlite_engine(url, immediate=True, synced_by_caller=True)
                if self._wal_path
                else self.engine
            )
        else:
            self.engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=10,
                max_overflow=20,
                pool_recycle=1800,
                json_serializer=serialize_json,
                hide_parameters=True,  # see _sqlite_engine
                # A host that drops packets would hold a connection attempt for minutes, past
                # every sender's timeout; the URL's own connect_timeout wins where it has one.
                connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
                if "connect_timeout" not in self.url.query
                else {},
            )
            self.read_engine = self.engine
            self.inbox_engine = self.engine
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

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
    def write_lock(self) -> Iterator[None]:
        """Line up writers of every process in the kernel before they ask SQLite for its lock.

        A writer that finds SQLite's lock taken sleeps and polls (1 ms, then longer and longer),
        so two processes taking turns waste most of each turn; a waiter on a file lock is woken
        the moment it is free. SQLite's own lock still decides: without this one (PostgreSQL,
        or a lock file that cannot be opened) writers are as safe, only slower.
        """
        with _file_lock(self._lock_path):
            yield

    @contextlib.contextmanager
    def records_lock(self) -> Iterator[None]:
        """On SQLite, line up workers of every process from a batch's stale-write check against
        remote targets to the commit of its results.

        Remote calls are made outside SQLite's write lock, so that deliveries never wait on a
        CRM; without this lock, two workers could both find a record unwritten and the older
        event's call could reach the CRM last. PostgreSQL locks each record instead.
        """
        with _file_lock(self._records_lock_path):
            yield

    @contextlib.contextmanager
    def driver_transaction(self) -> Iterator[Any]:
        """A write transaction on the driver's own connection, and a cursor in it; durable
        when the block ends without an error.

        For statements compiled ahead (:mod:`gateway.driver`) on the receive path, where
        SQLAlchemy's transaction and execution layers cost more than the statements. Driver
        errors come out as they are; the connection goes back to the pool either way.

        The writers' lock (:meth:`write_lock`), and with it SQLite's, is held from BEGIN to
        COMMIT only. On SQLite the WAL is synced after that, so the next writer, often another
        process, writes its batch while this one waits for the disk instead of after: the
        commit is visible to readers before it is durable, and nothing that waits on this
        block (a sender's 200) learns of it before it is both.
        """
        with self.inbox_engine.connect() as conn:
            dbapi_connection: Any = conn.connection.dbapi_connection
            cursor = dbapi_connection.cursor()
            try:
                with self.write_lock():
                    self._begin_immediate(dbapi_connection)
                    try:
                        yield cursor
                        dbapi_connection.commit()
                    except BaseException:
                        dbapi_connection.rollback()
                        raise
                # Still on a connection of ours: SQLite removes the WAL with the last one.
                self._sync_wal()
            finally:
                cursor.close()
        self._checkpoint_now_and_then()

    def _checkpoint_now_and_then(self) -> None:
        """Every CHECKPOINT_EVERY commits, copy the WAL into the database beside the writer.

        SQLite's own checkpoint runs inside the commit that crosses its threshold, holding the
        write lock for as long as five commits take, and every writer waits. A passive one run
        apart takes no write lock: writers of every process go on appending to the WAL.
        """
        if self._wal_path is None:
            return
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and not self._checkpointing.locked():
            threading.Thread(target=self._checkpoint, name="wal-checkpoint", daemon=True).start()

    def _checkpoint(self) -> None:
        """Copy the WAL into the database so that the next writer starts the WAL over.

        SQLite writes from the start of the WAL again only when a write transaction begins
        with every frame already copied; otherwise the file grows by every commit, for good,
        and a longer WAL costs every commit and every read more. Busy writers always append
        while a checkpoint runs, so the bulk is copied beside them, and what they appended
        meanwhile under the writers' lock: a few commits' pages, not the whole WAL. A failure
        leaves the WAL to the next checkpoint, and is logged.
        """
        try:
            with self._checkpointing, self.inbox_engine.connect() as conn:
                dbapi_connection: Any = conn.connection.dbapi_connection
                off_the_hub(dbapi_connection.execute, "PRAGMA wal_checkpoint(PASSIVE)")
                with self.write_lock():
                    off_the_hub(dbapi_connection.execute, "PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:
            log.warning("a checkpoint of the SQLite WAL failed", exc_info=True)

    def _sync_wal(self) -> None:
        """Put every commit written to the WAL so far on disk (SYNC_BY_CALLER).

        In the calling thread while the disk is quick (QUICK_SYNC_S); after a slow sync, in a
        native thread (:func:`gateway.greenlets.off_the_hub`), so that under gevent the
        process's other requests go on meanwhile, until a sync is quick again. A disk that
        stalls once stops the process's greenlets for that one sync only.
        """
        if self._wal_path is None:
            return
        fd = os.open(self._wal_path, os.O_RDONLY)
        try:
            if self._last_sync_s < QUICK_SYNC_S:
                self._last_sync_s = _timed_sync(fd)
            else:
                self._last_sync_s = off_the_hub(_timed_sync, fd)
        finally:
            os.close(fd)

    def _begin_immediate(self, dbapi_connection: Any) -> None:
        """On SQLite, take the write lock now (PostgreSQL's driver begins by itself)."""
        if not self.is_sqlite:
            return
        begin = functools.partial(dbapi_connection.execute, "BEGIN IMMEDIATE")
        if cooperative():
            _begin_waiting(begin)
        else:
            begin()

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        with translate_outage(), self.read_engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        for engine in {self.engine, self.read_engine, self.inbox_engine}:
            engine.dispose()


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


def _timed_sync(fd: int) -> float:
    """Sync ``fd`` as SQLite does (its data and the size that finds it; plain fsync where that
    is all there is); the seconds it took."""
    started = time.perf_counter()
    getattr(os, "fdatasync", os.fsync)(fd)
    return time.perf_counter() - started


@contextlib.contextmanager
def _file_lock(path: str | None) -> Iterator[None]:
    """Hold an exclusive lock on ``path``; nothing is held when it is None or cannot be opened
    or locked."""
    fd = _locked_file(path)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _locked_file(path: str | None) -> int | None:
    """Open and lock ``path``; None when there is none to use."""
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        _flock(fd)
    except OSError:
        os.close(fd)
        return None
    return fd


def _flock(fd: int) -> None:
    """Take the lock; under gevent, a wait happens in a native thread of gevent's pool.

    The process's other requests go on meanwhile, and the writer wakes the moment the lock is
    free: polling for it (every 0.5 ms, later still when the process was busy) left it free for
    1 ms on average at each hand-over between two processes, and cost a system call per try.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        off_the_hub(fcntl.flock, fd, fcntl.LOCK_EX)


def _begin_waiting(begin: Callable[[], Any]) -> None:
    """Call ``begin``, waiting for SQLite's lock for up to BUSY_TIMEOUT_S in cooperative sleeps.

    Under gevent, SQLite's own busy wait would stop every request of the process, so its
    connections wait for nothing and this loop waits instead.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            begin()
            return
        except Exception as exc:  # SQLAlchemy's OperationalError, or the driver's own
            locked = "locked" in str(getattr(exc, "orig", exc))
            if not locked or time.monotonic() > deadline:
                raise
        time.sleep(COOPERATIVE_POLL_S)


def _sqlite_engine(url: str, *, immediate: bool, synced_by_caller: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        directory = Path(parsed.database).parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"GATEWAY_DATABASE_URL: cannot create the directory {directory}: {exc.strerror}"
            ) from exc
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
        pool_size=20,
        # The connection used last has the warmest page cache: SQLite drops a connection's
        # cache whenever another one has written since its last turn, so a writer taking turns
        # with an idle connection (the checkpoint's) read every page it touched again.
        pool_use_lifo=True,
        json_serializer=serialize_json,
        # A database error's text goes into logs and tracebacks: without this it lists the
        # statement's values, which are payloads, record fields and callback tokens.
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        inbox = (SYNC_BY_CALLER, NO_CHECKPOINT_ON_COMMIT)
        for pragma in (*SQLITE_PRAGMAS, *(inbox if synced_by_caller else (SYNC_ON_COMMIT,))):
            cursor.execute(pragma)
        if immediate:
            cursor.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        if immediate and cooperative():
            cursor.execute("PRAGMA busy_timeout=0")  # _begin_waiting waits instead
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if immediate and cooperative():
            _begin_waiting(lambda: conn.exec_driver_sql(begin))
        else:
            conn.exec_driver_sql(begin)

    return engine
