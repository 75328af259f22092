"""Gunicorn settings shared by ``gateway serve`` and the top-level ``gunicorn.conf.py``.

gevent workers: a request mostly waits for its group commit, and many waiting requests are what
let deliveries share one fsync. As greenlets, handing a delivery to the writer and waking its
request again costs a few microseconds; as threads, each wake-up is a fight for the GIL that
cost more CPU than the database work (bench/README.md).
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any

from gateway.config import (
    METRICS_DIR_PREFIX,
    ServerSettings,
    admin_token_warning,
    environment,
    share_metrics_dir,
)
from gateway.errors import ConfigurationError
from gateway.logs import gunicorn_logging

__all__ = [
    "accesslog",
    "bind",
    "child_exit",
    "control_socket_disable",
    "graceful_timeout",
    "keepalive",
    "limit_request_field_size",
    "limit_request_fields",
    "limit_request_line",
    "logconfig_dict",
    "logger_class",
    "on_exit",
    "on_starting",
    "timeout",
    "worker_class",
    "worker_connections",
    "workers",
]

try:
    # The same environment as the gateway's settings: .env, overlaid by the process's own.
    _server = ServerSettings.from_env()
except ConfigurationError as _error:
    # gunicorn would show a traceback for an error raised while it loads this module.
    sys.exit(f"Error: {_error.code}: {_error.message}")

bind = _server.bind
workers = _server.workers
# gevent's worker, answering the requests gunicorn refuses itself with the JSON error body.
worker_class = "gateway.gunicorn_worker.JsonErrorWorker"
# Connections each worker serves at once; the rest wait in the listen backlog for a free one.
# A low cap spreads keep-alive senders over the workers (a worker accepts whatever is pending
# when it wakes) and keeps every worker's group commits full.
worker_connections = _server.connections
logconfig_dict = gunicorn_logging(_server.log_format)
# A line per request in either format (JSON: through logconfig_dict), callback tokens hidden.
accesslog = "-" if _server.log_format == "text" else None
logger_class = "gateway.logs.AccessLogger"
timeout = 30
graceful_timeout = 20
keepalive = 5
# Room for large provider headers; the app answers oversized ones with a JSON 400 itself.
# Past these limits gunicorn refuses the request (431, 414), in JSON through the worker class.
limit_request_field_size = 32768
limit_request_fields = 200
limit_request_line = 8190
# Several gateways (and test servers) may run on one host; none needs gunicorn's control socket.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Sum metrics across worker processes (prometheus-client's multiprocess mode), and warn
    once, from the master rather than from every worker, about a weak admin token."""
    share_metrics_dir()
    warning = admin_token_warning(environment().get("GATEWAY_ADMIN_TOKEN"))
    if warning:
        server.log.warning(warning)


def on_exit(server: Any) -> None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if METRICS_DIR_PREFIX in path:
        shutil.rmtree(path, ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
