"""A throwaway PostgreSQL server for the test run, in a temporary directory.

pytest-postgresql drives ``pg_ctl`` as the current user, and PostgreSQL refuses to run as root,
which is what CI machines are; so this starts the server itself, as the ``postgres`` system user
when running as root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit


def find_bindir() -> Path | None:
    """The directory with initdb and pg_ctl, newest major version first."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_owner(command: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *command] if user else command


@dataclass(frozen=True)
class _Server:
    """What ``pg_ctl`` needs to stop a running test server and start it again as it was."""

    bindir: Path
    data: Path
    log: Path
    options: str
    user: str | None

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]
        return subprocess.run(
            _as_owner(command, self.user), check=check, capture_output=True, text=True
        )

    def start(self) -> None:
        self.pg_ctl("-o", self.options, "-l", str(self.log), "-w", "start")


#: The servers postgres_server is running, by port, so that tests can stop and restart them.
_RUNNING: dict[int, _Server] = {}


@contextlib.contextmanager
def postgres_server(bindir: Path, *, durable: bool = False) -> Iterator[str]:
    """Run a server on 127.0.0.1 for the duration; yields a SQLAlchemy URL to an empty database.

    Tests trade durability for speed (no fsync, asynchronous commit); ``durable`` keeps
    PostgreSQL's defaults, for measuring what a real deployment would see.
    """
    user = "postgres" if os.geteuid() == 0 else None
    workdir = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
    data = workdir / "data"
    port = _free_port()
    if user:
        entry = pwd.getpwnam(user)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    run = lambda cmd: subprocess.run(  # noqa: E731
        _as_owner(cmd, user), check=True, capture_output=True, text=True
    )
    run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    options = f"-h 127.0.0.1 -p {port} -k {workdir} -c max_connections=300"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    server = _Server(bindir, data, workdir / "log", options, user)
    server.start()
    _RUNNING[port] = server
    try:
        _create_database(port)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/gateway_test"
    finally:
        _RUNNING.pop(port, None)
        server.pg_ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def stop_server(url: str) -> None:
    """Stop the server behind ``url`` (one postgres_server runs), keeping its data.

    A fast shutdown: sessions are cut and open transactions rolled back, and what was committed
    is written out first. Not an immediate one: a test server commits asynchronously, and a
    crash would lose its last commits by design of that setting, not by any fault of ours.
    """
    _running(url).pg_ctl("-m", "fast", "-w", "stop")


def start_server(url: str) -> None:
    """Start the server behind ``url`` again, on the same port, unless it is running."""
    server = _running(url)
    if server.pg_ctl("status", check=False).returncode != 0:
        server.start()


def _running(url: str) -> _Server:
    port = urlsplit(url).port
    if port not in _RUNNING:
        raise LookupError(f"no test server of ours listens on port {port}")
    return _RUNNING[port]


def _create_database(port: int) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
            ) as conn:
                conn.execute("CREATE DATABASE gateway_test")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_for_a_lock_wait(conn: Any, timeout_s: float = 10.0) -> None:
    """Return once a session of ``conn``'s database waits for a lock another one holds: the
    moment to let go of it, in a test of what the waiting session does next."""
    from sqlalchemy import text

    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # A transaction sees the activity as it was at its first look, unless told to look again.
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        if conn.execute(waiting).scalar():
            return
        time.sleep(0.01)
    raise AssertionError("no session ever waited for a lock")


T = TypeVar("T")


@contextlib.contextmanager
def another_client(url: str) -> Iterator[Any]:
    """A connection of a client other than the gateway's, for a transaction a test holds open."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def once_it_waits_for(
    holder: Any,
    call: Callable[[], T],
    *,
    then: Callable[[], object] | None = None,
    timeout_s: float = 20.0,
) -> T:
    """What ``call()`` returns, called in a thread while ``holder`` keeps its transaction open.

    Once the call waits for one of ``holder``'s locks, ``then()`` runs (more of ``holder``'s
    work, if given) and ``holder`` commits: the race a test wants, made certain.
    """
    results: list[T] = []
    calling = threading.Thread(target=lambda: results.append(call()))
    calling.start()
    wait_for_a_lock_wait(holder)
    if then is not None:
        then()
    holder.commit()
    calling.join(timeout_s)
    [result] = results
    return result
