"""Under gevent, a writer waiting for a lock lets the other requests of its process go on.

Web workers run as greenlets in one thread: a wait that blocked in C would stop every request
of the process, including those that should be answered 503 meanwhile. Each case runs in a
gevent-patched interpreter of its own, as a gunicorn gevent worker does, while this test holds
the lock.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: How long the lock is held; the other greenlet must tick all along.
HELD_S = 1.0

PATCHED = """
from gevent import monkey

monkey.patch_all()

import threading
import time

from gateway.storage import open_storage
from gateway.storage.greenlets import cooperative

assert cooperative(), "gevent has patched threading, so waits must be cooperative"
db = open_storage({url!r})
ticks = 0


def tick() -> None:
    global ticks
    while not done.is_set():
        ticks += 1
        time.sleep(0.01)


done = threading.Event()
ticker = threading.Thread(target=tick)
ticker.start()
print("waiting", flush=True)
started = time.monotonic()
{wait}
waited = time.monotonic() - started
done.set()
ticker.join()
print(f"waited {{waited:.2f}} ticks {{ticks}}", flush=True)
"""

WAITS = {
    "the writers' file lock": "with db.write_lock():\n    pass",
    "SQLite's write lock": (
        "from sqlalchemy import text\n"
        "with db.session() as session:\n"
        "    session.execute(text('INSERT INTO t VALUES (1)'))"
    ),
}


@contextmanager
def _held(kind: str, database: Path) -> Iterator[None]:
    if kind == "the writers' file lock":
        fd = os.open(f"{database}-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            os.close(fd)
        return
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("COMMIT")
        conn.close()


@pytest.mark.parametrize("kind", WAITS)
def test_a_writer_waiting_for_a_lock_lets_other_greenlets_run(kind: str, tmp_path: Path) -> None:
    database = tmp_path / "gateway.db"
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x INTEGER)")
    script = PATCHED.format(url=f"sqlite:///{database}", wait=WAITS[kind])
    with _held(kind, database):
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "waiting"
        try:
            process.wait(timeout=HELD_S)
        except subprocess.TimeoutExpired:
            pass  # still waiting for the lock, as it should
        else:
            pytest.fail(f"the writer did not wait for {kind}")
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    waited, ticks = (float(word) for word in output.split()[1::2])
    assert waited >= HELD_S * 0.8, output
    # A blocked hub would tick once or twice; a cooperative wait ticks about every 10 ms.
    assert ticks >= HELD_S / 0.01 / 4, output


SYNCS = """
from gevent import monkey

monkey.patch_all()

import os

from gevent.monkey import get_original

from gateway.storage import open_storage

native_ident = get_original("_thread", "get_ident")
native_sleep = get_original("time", "sleep")
hub_thread = native_ident()
db = open_storage({url!r})
where = []


def disk(fd: int) -> None:
    where.append("hub" if native_ident() == hub_thread else "pool")
    native_sleep(delay)


os.fdatasync = disk
for delay in {delays!r}:
    with db.driver_transaction() as cursor:
        cursor.execute("INSERT INTO t VALUES (1)")
print(" ".join(where))
"""


def test_the_wal_is_synced_on_the_hub_while_the_disk_is_quick_and_off_it_after_a_slow_sync(
    tmp_path: Path,
) -> None:
    database = tmp_path / "gateway.db"
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x INTEGER)")
    quick, slow = 0.0, 0.05  # seconds each sync takes
    script = SYNCS.format(url=f"sqlite:///{database}", delays=[quick, slow, slow, quick, quick])

    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60
    )

    assert completed.returncode == 0, completed.stderr
    # The second sync is slow: the next ones go to a native thread until one is quick again.
    assert completed.stdout.split() == ["hub", "hub", "pool", "pool", "hub"]
