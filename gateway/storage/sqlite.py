"""SQLite, the embedded default: two engines on one file, WAL, and the inbox's own syncing.

Writers open their transaction with ``BEGIN IMMEDIATE`` so they queue on the write lock instead
of failing to upgrade a read lock, and readers use plain deferred transactions that WAL lets run
beside a writer. Writers of every process line up on a file lock before they ask SQLite for its
own, and the inbox syncs the WAL and starts checkpoints itself, outside the write lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, event, func, literal_column, select
from sqlalchemy.dialects.sqlite import Insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gateway.errors import ConfigurationError, StoreUnavailable
from gateway.storage.base import Storage, create_storage_engine
from gateway.storage.greenlets import cooperative, off_the_hub
from gateway.storage.results import BatchWrites

log = logging.getLogger(__name__)

#: How long a writer waits for SQLite's write lock before the database counts as unavailable.
BUSY_TIMEOUT_S = 30.0
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}",
    "PRAGMA foreign_keys=ON",
)
#: Every commit is on disk, even across power loss, before it returns.
SYNC_ON_COMMIT = "PRAGMA synchronous=FULL"
#: The inbox's connections: a commit returns once written, and the inbox syncs the WAL itself
#: after letting go of the write lock (:meth:`SQLiteStorage.driver_transaction`). Checkpoints still
#: sync the WAL before and the database after, so the file stays whole either way.
SYNC_BY_CALLER = "PRAGMA synchronous=NORMAL"
#: Nor do they checkpoint as part of a commit, under the write lock: the inbox starts one beside
#: its writer now and then (:meth:`SQLiteStorage.driver_transaction`).
NO_CHECKPOINT_ON_COMMIT = "PRAGMA wal_autocheckpoint=0"
#: The inbox's commits between two checkpoints it starts (per process): about as often as
#: SQLite's own checkpoints (every 1,000 pages of WAL) would come.
CHECKPOINT_EVERY = 32
#: SQLite's page cache for writers (KiB; its default is 2 MiB): the dedupe index takes random
#: inserts, and once it outgrows the cache every delivery reads some of its pages back.
WRITER_CACHE_KIB = 32768
#: A sync of the WAL that took less than this is made on the hub the next time: under gevent,
#: handing a call to a native thread and back costs three wake-ups of CPU, more
#: than a quick disk keeps the process waiting, and its requests all wait on that sync anyway.
QUICK_SYNC_S = 0.001
ONE_MILLISECOND = timedelta(milliseconds=1)
#: Between two tries at SQLite's lock under gevent: short beside a commit, long beside a syscall.
COOPERATIVE_POLL_S = 0.0005


class SQLiteStorage(Storage):
    """The embedded database: a write engine, a read engine and the inbox's engine on one file."""

    is_sqlite = True
    numbers_deliveries = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._lock_path: str | None = None
        self._records_lock_path: str | None = None
        self._wal_path: str | None = None
        self._commits = 0
        self._last_sync_s = 0.0
        self._checkpointing = threading.Lock()
        #: The database file, unless the database is in memory.
        self._path: str | None = None
        #: The (device, inode) of the database file: the one there when this storage was
        #: opened, else the one its first connection created.
        self._identity: tuple[int, int] | None = None
        if self.url.database and self.url.database != ":memory:":
            self._path = self.url.database
            self._lock_path = f"{self.url.database}-writers.lock"
            self._records_lock_path = f"{self.url.database}-records.lock"
            self._wal_path = f"{self.url.database}-wal"
        self.engine = _sqlite_engine(url, immediate=True)
        self.read_engine = _sqlite_engine(url, immediate=False)
        #: The inbox's own connections, which leave syncing the WAL to it.
        self.inbox_engine = (
            _sqlite_engine(url, immediate=True, synced_by_caller=True)
            if self._wal_path
            else self.engine
        )
        if self._path is not None:
            for engine in {self.engine, self.read_engine, self.inbox_engine}:
                event.listen(engine, "do_connect", self._before_connecting)
                event.listen(engine, "connect", self._remember_file)
            self._remember_file()
        self._open_sessions()

    def _before_connecting(self, *_: Any) -> None:
        """Connect to the file first seen, and only to it; create a new one for its owner only.

        SQLite creates a missing file readable by all (as the umask allows), and it holds
        payloads and callback tokens; its -wal and -shm files take the file's mode. Once the
        file is known, a new connection where it was deleted would create an empty one instead.
        """
        if self._identity is not None:
            self._check_file()
            return
        assert self._path is not None
        with contextlib.suppress(OSError):  # there already, or SQLite says why it cannot be
            os.close(os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    def _remember_file(self, *_: Any) -> None:
        """Remember which file is the database: the one there when this storage was opened,
        else the one its first connection opened (:meth:`_check_file`)."""
        if self._identity is None and self._path is not None:
            with contextlib.suppress(OSError):
                self._identity = _file_identity(os.stat(self._path))

    def _check_file(self) -> None:
        """StoreUnavailable once the database file this process opened is deleted or replaced.

        Its connections go on writing into the file they opened, where nobody will read it
        again: a delivery stored there would be acknowledged, then lost at the next restart.
        """
        if self._identity is None or self._path is None:
            return
        try:
            found = _file_identity(os.stat(self._path))
        except FileNotFoundError:
            found = None
        except OSError as exc:
            raise StoreUnavailable(
                f"the database file {self._path} cannot be looked at: {exc.strerror}"
            ) from exc
        if found != self._identity:
            raise StoreUnavailable(
                f"the database file {self._path} was {'replaced' if found else 'deleted'} while"
                " the gateway ran; nothing can be stored until the gateway is restarted on the"
                " file as it is now (restored, or created anew with `gateway db upgrade`)"
            )

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """Line up writers of every process in the kernel before they ask SQLite for its lock.

        A writer that finds SQLite's lock taken sleeps and polls (1 ms, then longer and longer),
        so two processes taking turns waste most of each turn; a waiter on a file lock is woken
        the moment it is free. SQLite's own lock still decides: without this one (a database
        in memory, or a lock file that cannot be opened) writers are as safe, only slower.
        """
        with _file_lock(self._lock_path):
            yield

    @contextlib.contextmanager
    def records_lock(self) -> Iterator[None]:
        """Line up workers of every process from a batch's stale-write check against remote
        targets to the commit of its results.

        Remote calls are made outside SQLite's write lock, so that deliveries never wait on a
        CRM; without this lock, two workers could both find a record unwritten and the older
        event's call could reach the CRM last. PostgreSQL locks each record instead.
        """
        with _file_lock(self._records_lock_path):
            yield

    @contextlib.contextmanager
    def _write_turn(self, dbapi_connection: Any) -> Iterator[None]:
        """The writers' lock (:meth:`write_lock`), and with it SQLite's, held from BEGIN to
        COMMIT only.

        The WAL is synced after that, so the next writer, often another process, writes its
        batch while this one waits for the disk instead of after: the commit is visible to
        readers before it is durable, and nothing that waits on a driver transaction (a
        sender's 200) learns of it before it is both.
        """
        with self.write_lock():
            self._check_file()
            self._begin_immediate(dbapi_connection)
            yield
        # Again before the commit is told: it is kept only if the file is still the database's.
        self._check_file()
        # Still on a connection of ours: SQLite removes the WAL with the last one.
        self._sync_wal()

    def _after_transaction(self) -> None:
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
        native thread (:func:`gateway.storage.greenlets.off_the_hub`), so that under gevent the
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

    @staticmethod
    def _begin_immediate(dbapi_connection: Any) -> None:
        """Take the write lock now."""
        begin = functools.partial(dbapi_connection.execute, "BEGIN IMMEDIATE")
        if cooperative():
            _begin_waiting(begin)
        else:
            begin()

    def check_writable(self, room: int) -> None:
        """See :meth:`Storage.check_writable`: also that the file is still the one this
        process writes to, and that its file system has ``room`` bytes free."""
        self._check_file()
        if self._path is not None:
            files = os.statvfs(Path(self._path).parent)
            free = files.f_bavail * files.f_frsize
            if free < room:
                raise StoreUnavailable(
                    f"the disk of the database file {self._path} has {free} bytes free, less"
                    f" than a delivery may need ({room})"
                )
        self.ping()

    def exists(self) -> bool:
        database = self.url.database
        return bool(database) and (database == ":memory:" or Path(str(database)).exists())

    #: Its arguments written in the SQL, not bound: the inbox runs it without parameters.
    clock_query = select(
        func.strftime(literal_column("'%Y-%m-%d %H:%M:%f'"), literal_column("'now'"))
    )

    def clock_reading(self, value: Any) -> datetime:
        """SQLite reads its clock to the millisecond: the end of that millisecond is taken, so
        that whatever was written during it counts as past."""
        return datetime.fromisoformat(value).replace(tzinfo=UTC) + ONE_MILLISECOND

    def write_batch(self, batch: BatchWrites) -> None:
        """Remote targets are called outside SQLite's write lock, so that deliveries never
        wait on a CRM, but under the records lock, so that other workers' remote writes wait;
        the local targets' stale check happens under the write lock."""
        with self.records_lock() if batch.remote_records() else contextlib.nullcontext():
            with self.read_session() as session:
                batch.check_stale(session, remote=True, local=False)
            batch.call_remote()
            with self.session() as session:
                # A remote upsert of a lease lost meanwhile goes unrecorded: the worker that
                # took the event over sends it again, to the same effect.
                batch.keep_leased(session)
                batch.check_stale(session, remote=False, local=True)
                batch.finish(session)

    def insert(self, table: Table | type[Any]) -> Insert:
        return sqlite_insert(table)

    def utc_minute(self, column: Any) -> Any:
        return func.substr(column, 1, 16)  # UTC times are kept as ISO text

    def sha256_hex(self, column: Any) -> Any:
        return func.gateway_sha256(column)  # registered on each connection (_on_connect)

    def line_up(self, session: Session, namespace: int, name: str) -> None:
        """Nothing to do: SQLite's writers take turns from BEGIN IMMEDIATE to COMMIT."""


def _file_identity(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


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
    free, where polling for it would leave it free between tries at each hand-over between two
    processes, and cost a system call per try.
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


def _sha256_hex(value: bytes | None) -> str | None:
    return None if value is None else hashlib.sha256(value).hexdigest()


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
    engine = create_storage_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
        pool_size=20,
        # The connection used last has the warmest page cache: SQLite drops a connection's
        # cache whenever another one has written since its last turn, so a writer taking turns
        # with an idle connection (the checkpoint's) read every page it touched again.
        pool_use_lifo=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        dbapi_connection.create_function("gateway_sha256", 1, _sha256_hex, deterministic=True)
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
