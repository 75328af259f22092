"""The gunicorn worker the gateway runs: gevent's, with gunicorn's own refusals in JSON.

gunicorn answers a request it cannot parse (a request line or headers over its limits, a
malformed header name) before the application sees it, with an HTML page. The contract wants
its error body on every error, so the worker writes that page as JSON instead, with the same
status and gunicorn's own message.

It also paces request bodies. A body must arrive within ``GATEWAY_BODY_TIMEOUT_S`` and at
``GATEWAY_BODY_MIN_RATE`` bytes a second (:class:`BodyPace`), whether the application reads it
or the worker discards what the application left unread (a 404, 401 or 413 given on the headers
alone); past that it is cut off: a read gets :class:`BodyTimeout` (the application answers 408)
and the connection is closed. While a connection waits for its body, it is not one of the
connections its worker serves at once (``worker_connections``): a sender trickling its body
takes no room from the others.

The unread rest of a body is read past, up to a bound, before the connection is reused or
closed. gunicorn would read all of it before the next request, however large, or close a
``Connection: close`` request's connection at once, with the body unread: the kernel then
resets the connection, and a sender still writing its body never reads the answer it was given.
Beyond the bound, or when the rest is malformed or too slow to come, the connection is closed.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent.pool import Pool
from gunicorn import util
from gunicorn.errors import AppImportError
from gunicorn.http.body import Body
from gunicorn.http.errors import ParseException
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers import ggevent
from gunicorn.workers.ggevent import GeventWorker

from gateway.config import ServerSettings
from gateway.errors import BodyTimeout, ConfigurationError, GatewayError, error_code


class JsonErrorWorker(GeventWorker):
    """gevent's worker, but for the errors gunicorn answers itself and for request bodies."""

    def init_process(self) -> None:
        # Set after the fork, in the worker process: the base worker's handle_error writes
        # through this module function, and nothing else there calls it.
        util.write_error = write_json_error
        # The pools of connections the worker serves (one per listening socket), recorded as
        # gevent's worker makes them, so that a connection waiting for its body can leave its own.
        self._pools: list[Pool] = []
        ggevent.Pool = self._connection_pool  # type: ignore[attr-defined]
        self._server = ServerSettings.from_env()
        # Imported here, in the worker: the master loads this module before it sets up the
        # metrics' multiprocess mode, which prometheus-client reads once, on its import.
        from gateway.metrics import BODIES_CUT_OFF

        self._bodies_cut_off = BODIES_CUT_OFF
        super().init_process()

    def _connection_pool(self, size: int) -> Pool:
        pool = Pool(size)
        self._pools.append(pool)
        return pool

    def load_wsgi(self) -> None:
        """Load the app; on a bad configuration, make gunicorn stop with its one line.

        gunicorn halts at once on an app that cannot be loaded, printing the error's text
        alone; any other error would be logged with its traceback first.
        """
        try:
            super().load_wsgi()
        except ConfigurationError as error:
            raise AppImportError(f"Error: {error.code}: {error.message}") from error

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        """Serve one request with its body paced; then end the connection unless what is left
        of its body could be read past (StopIteration is how gunicorn's keep-alive loop is
        told to close)."""
        if not isinstance(req.unreader, SocketUnreader):
            return bool(super().handle_request(listener_name, req, sock, addr))
        unreader: Any = req.unreader
        pace = BodyPace(self._server.body_timeout_s, self._server.body_min_rate)
        paced = PacedSocket(sock, pace, self._leave_pool)
        prior_timeout = sock.gettimeout()
        unreader.sock = paced
        try:
            try:
                keep_alive: bool = super().handle_request(listener_name, req, sock, addr)
            except StopIteration:
                skip_unread_body(req.body, LINGER_BYTES)  # answered: now to be closed
                raise
            if pace.cut or not skip_unread_body(req.body, LINGER_BYTES):
                raise StopIteration()
        finally:
            unreader.sock = sock
            sock.settimeout(prior_timeout)
            if pace.cut:
                self._bodies_cut_off.inc()
        if paced.left is not None:
            paced.left.add(_current())  # back among those served, once there is room
        return keep_alive

    def _leave_pool(self) -> Pool | None:
        """Take this connection's greenlet out of its pool: its place goes to another."""
        current = _current()
        for pool in self._pools:
            if current in pool:
                pool.discard(current)
                return pool
        return None


def _current() -> Any:
    """The greenlet serving this connection."""
    return gevent.getcurrent()


#: How much of a body the application left unread is read past to keep its connection open. An
#: HTTP client sends its whole body before it reads the answer: one cut off gets an error
#: instead of the 413 it was given, so the bound is far above any delivery limit in use.
LINGER_BYTES = 64 * 1024 * 1024
#: The time a body has to arrive before its pace counts, so that a body sent a moment after
#: its headers (a retransmitted packet, a sender that writes them apart) is not cut off.
BODY_GRACE_S = 2.0
#: How much of an unread body is read past at a time. gunicorn's reader buffers up to 1 MiB
#: from the socket and copies what is left of its buffer on every read: small steps would copy
#: each megabyte a hundred times over.
_STEP = 256 * 1024


@dataclass
class BodyPace:
    """When a body arriving from now on is too late: past ``timeout_s`` in all, or, after
    ``BODY_GRACE_S``, slower on average than ``min_rate`` bytes a second (0: no minimum)."""

    timeout_s: float
    min_rate: int
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    #: Bytes received so far.
    received: int = 0
    #: Whether the body was cut off.
    cut: bool = False

    def __post_init__(self) -> None:
        self.started = self.clock()

    def wait_s(self) -> float:
        """How long a read may wait for the next bytes; 0 or less: the body is too late."""
        deadline = self.started + self.timeout_s
        if self.min_rate:
            deadline = min(deadline, self.started + BODY_GRACE_S + self.received / self.min_rate)
        return deadline - self.clock()


class PacedSocket:
    """The connection's socket as gunicorn reads a request body from it, each wait bounded by
    the body's pace. The first time a read has to wait, ``leave_pool`` is called: a connection
    waiting on its sender should not hold one of the places of the connections being served."""

    def __init__(self, sock: socket.socket, pace: BodyPace, leave_pool: Callable[[], Any]) -> None:
        self._sock = sock
        self._pace = pace
        self._leave_pool = leave_pool
        #: The pool left, to return to once the request is served.
        self.left: Pool | None = None
        self._waited = False

    def recv(self, size: int) -> bytes:
        sock = self._sock
        sock.settimeout(0.0)
        try:
            data = sock.recv(size)
        except BlockingIOError:
            data = self._wait_and_recv(size)
        self._pace.received += len(data)
        return data

    def _wait_and_recv(self, size: int) -> bytes:
        if not self._waited:
            self._waited = True
            self.left = self._leave_pool()
        wait = self._pace.wait_s()
        if wait > 0:
            self._sock.settimeout(wait)
            try:
                return self._sock.recv(size)
            except TimeoutError:
                pass
        self._pace.cut = True
        raise BodyTimeout(
            "the request body arrived too slowly: it must arrive within"
            f" {self._pace.timeout_s:g} s, at {self._pace.min_rate} bytes a second or more"
        )


def skip_unread_body(body: Body, limit: int) -> bool:
    """Read past the body's unread rest; False if it is larger than ``limit``, unreadable or
    too slow to come."""
    skipped = 0
    try:
        while chunk := body.read(_STEP):
            skipped += len(chunk)
            if skipped > limit:
                return False
    except (ParseException, OSError, BodyTimeout):
        return False
    return True


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """What ``gunicorn.util.write_error`` writes, with the contract's error body."""
    error = GatewayError(mesg or reason, code=error_code(reason))
    body = json.dumps(error.body(), separators=(",", ":")) + "\n"  # ASCII: json escapes the rest
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, (head + body).encode("ascii"))
