"""The gunicorn worker the gateway runs: gevent's, with gunicorn's own refusals in JSON.

gunicorn answers a request it cannot parse (a request line or headers over its limits, a
malformed header name) before the application sees it, with an HTML page. The contract wants
its error body on every error, so the worker writes that page as JSON instead, with the same
status and gunicorn's own message.

It also decides what becomes of a request body the application answered without reading (a
404, 401 or 413 given on the headers alone). gunicorn would read all of it before the next
request on the connection, however large, and answer a second time, with a 400 nobody asked
for, when it turns out malformed. This worker reads past a bounded amount, so that a sender
still gets its answer and keeps its connection, and closes the connection beyond that, or
when the rest is malformed or slow to come.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util
from gunicorn.errors import AppImportError
from gunicorn.http.body import Body
from gunicorn.http.errors import ParseException
from gunicorn.workers.ggevent import GeventWorker

from gateway.errors import ConfigurationError, GatewayError, error_code


class JsonErrorWorker(GeventWorker):
    """gevent's worker, but for the errors gunicorn answers itself and bodies left unread."""

    def init_process(self) -> None:
        # Set after the fork, in the worker process: the base worker's handle_error writes
        # through this module function, and nothing else there calls it.
        util.write_error = write_json_error
        super().init_process()

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
        """Serve one request; then end the connection if what is left of its body is not
        worth reading (StopIteration is how gunicorn's keep-alive loop is told to close)."""
        keep_alive: bool = super().handle_request(listener_name, req, sock, addr)
        prior_timeout = sock.gettimeout()
        sock.settimeout(LINGER_S)
        try:
            if not skip_unread_body(req.body, LINGER_BYTES):
                raise StopIteration()
        finally:
            sock.settimeout(prior_timeout)
        return keep_alive


#: How much of a body the application left unread is read past to keep its connection open. An
#: HTTP client sends its whole body before it reads the answer: one cut off gets an error
#: instead of the 413 it was given, so the bound is far above any delivery limit in use.
LINGER_BYTES = 64 * 1024 * 1024
#: How long each read of that rest may wait before the connection is closed instead.
LINGER_S = 5.0
_STEP = 8192


def skip_unread_body(body: Body, limit: int) -> bool:
    """Read past the body's unread rest; False if it is larger than ``limit``, unreadable or
    slow to come (an OSError: the socket's timeout)."""
    skipped = 0
    try:
        while chunk := body.read(_STEP):
            skipped += len(chunk)
            if skipped > limit:
                return False
    except (ParseException, OSError):
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
