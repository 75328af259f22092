"""An HTTPS server on ``127.0.0.1``, its certificate from a CA of its own (trustme), served
from a thread: what the fake targets share."""

from __future__ import annotations

import ssl
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import trustme


class LoopbackTls:
    """Serves ``handler`` once started (``with`` starts and stops it); clients trust it
    through ``ca_path``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self._handler = handler
        self._name = name
        #: The PEM file of the CA that signed the server's certificate, once started.
        self.ca_path = ""
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix=f"{self._name}-")
        self.ca_path = str(Path(self._dir.name) / "ca.pem")
        ca = trustme.CA()
        ca.cert_pem.write_to_path(self.ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        server = _Server(("127.0.0.1", 0), self._handler)
        # The handshake happens in the request's thread (see Handshaking), so a client that
        # gives up stalls nothing.
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=self._name
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        if self._dir is not None:
            self._dir.cleanup()

    @property
    def origin(self) -> str:
        assert self._server is not None, "start the server first"
        return f"https://127.0.0.1:{self._server.server_address[1]}"


class Handshaking(BaseHTTPRequestHandler):
    """HTTP/1.0, one request a connection, the TLS handshake done in the request's thread:
    nothing is left half-open between tests."""

    def setup(self) -> None:
        self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read what the fake kept instead."""


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or refuse the certificate hang up: no fault of the server."""
        if not isinstance(sys.exception(), OSError):
            super().handle_error(request, client_address)
