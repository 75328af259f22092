"""The gunicorn worker the gateway runs: gevent's, with gunicorn's own refusals in JSON.

gunicorn answers a request it cannot parse (a request line or headers over its limits, a
malformed header name) before the application sees it, with an HTML page. The contract wants
its error body on every error, so the worker writes that page as JSON instead, with the same
status and gunicorn's own message.
"""

from __future__ import annotations

import json
import socket

from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

from gateway.errors import GatewayError, error_code


class JsonErrorWorker(GeventWorker):
    """gevent's worker, but for how gunicorn writes the errors it answers itself."""

    def init_process(self) -> None:
        # Set after the fork, in the worker process: the base worker's handle_error writes
        # through this module function, and nothing else there calls it.
        util.write_error = write_json_error
        super().init_process()


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
