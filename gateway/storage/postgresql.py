"""PostgreSQL, for scale-out: one engine for every use, and advisory locks where writers must
take turns."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Table, column, func, select, values
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import dml

from gateway.errors import StoreUnavailable
from gateway.storage.base import Storage, create_storage_engine, translate_outage
from gateway.storage.driver import ColumnarInsert, RowsInsert
from gateway.storage.results import BatchWrites, RecordKey

#: How long a new connection may take before the database counts as unavailable.
CONNECT_TIMEOUT_S = 5
#: Record locks one transaction takes at most, unless one event needs more. All sessions share
#: the server's lock table (max_locks_per_transaction x max_connections: 6,400 by default), and
#: a batch that touches 15,000 records would fill it whatever its size in events.
RECORD_LOCKS_PER_TRANSACTION = 1000
#: Whether this server refuses writes now.
_READ_ONLY = "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"


class PostgresStorage(Storage):
    """The server database: readers and writers share one engine, as MVCC keeps them apart."""

    is_sqlite = False
    numbers_deliveries = False

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.engine = create_storage_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            pool_recycle=1800,
            # A host that drops packets would hold a connection attempt for minutes, past
            # every sender's timeout; the URL's own connect_timeout wins where it has one.
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
            if "connect_timeout" not in self.url.query
            else {},
        )
        self.read_engine = self.engine
        self.inbox_engine = self.engine
        self._open_sessions()

    def check_writable(self, room: int) -> None:
        """See :meth:`Storage.check_writable`: in one round trip, that the server answers and
        takes writes (it is not a standby, and transactions are not read-only by default).
        Its free disk is the server's to watch: a full one shows as failed commits."""
        with translate_outage(), self.engine.connect() as conn:
            read_only = conn.exec_driver_sql(_READ_ONLY).scalar()
        if read_only:
            raise StoreUnavailable(
                "the PostgreSQL server takes no writes: it is a standby, or"
                " default_transaction_read_only is on"
            )

    clock_query = select(func.clock_timestamp())

    def write_batch(self, batch: BatchWrites) -> None:
        """Workers on many hosts: each target record's lock is held from the stale check to
        the commit, so two events for one record are never applied concurrently; remote
        targets are called inside the transaction."""
        for part in batch.parts(RECORD_LOCKS_PER_TRANSACTION):
            with self.session() as session:
                part.keep_leased(session)
                _lock_records(session, part.records())
                part.check_stale(session, remote=True, local=True)
                part.call_remote()
                part.finish(session)

    def many_rows_insert(self, statement: dml.Insert, columns: Sequence[str]) -> RowsInsert:
        """One statement for all the rows (:class:`ColumnarInsert`)."""
        return ColumnarInsert(statement, columns, self.inbox_engine.dialect)

    def insert(self, table: Table | type[Any]) -> Insert:
        return pg_insert(table)

    def utc_minute(self, column: Any) -> Any:
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI")

    def sha256_hex(self, column: Any) -> Any:
        return func.encode(func.sha256(column), "hex")

    def line_up(self, session: Session, namespace: int, name: str) -> None:
        """A two-key advisory lock to the transaction's end: kept apart from the one-key
        record locks, whatever the namespace."""
        digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
        key = int.from_bytes(digest, "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(namespace, key)))


def _lock_records(session: Session, records: set[RecordKey]) -> None:
    """Advisory locks on every record, in one global order (no deadlocks)."""
    keys = sorted({_lock_id(record) for record in records})
    for start in range(0, len(keys), 1000):
        session.execute(
            select(func.pg_advisory_xact_lock(column("k"))).select_from(
                values(column("k", BigInteger), name="keys").data(
                    [(k,) for k in keys[start : start + 1000]]
                )
            )
        )


def _lock_id(record: RecordKey) -> int:
    digest = hashlib.blake2b("\x1f".join(record).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
