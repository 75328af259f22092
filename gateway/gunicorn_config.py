"""Gunicorn settings shared by ``gateway serve`` and the top-level ``gunicorn.conf.py``.

Threads, not processes alone: a request mostly waits for its group commit, and waiting threads
are what let many deliveries share one fsync.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

__all__ = [
    "bind",
    "child_exit",
    "control_socket_disable",
    "graceful_timeout",
    "keepalive",
    "limit_request_field_size",
    "limit_request_fields",
    "limit_request_line",
    "on_exit",
    "on_starting",
    "post_fork",
    "threads",
    "timeout",
    "worker_class",
    "workers",
]

bind = os.environ.get("GATEWAY_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GATEWAY_WEB_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GATEWAY_WEB_THREADS", "16"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# Room for large provider headers; the app answers oversized ones with a JSON 400 itself.
limit_request_field_size = 32768
limit_request_fields = 200
limit_request_line = 8190
#: How long a thread may keep the GIL while another waits for it (Python's default: 5 ms).
GIL_SWITCH_INTERVAL_S = 0.001
# Several gateways (and test servers) may run on one host; none needs gunicorn's control socket.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Sum metrics across worker processes (prometheus-client's multiprocess mode)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        path = tempfile.mkdtemp(prefix="gateway-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


def on_exit(server: Any) -> None:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if "gateway-metrics-" in path:
        shutil.rmtree(path, ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_fork(server: Any, worker: Any) -> None:
    """Shorten GIL turns: the thread committing a group holds every worker's write lock."""
    # Each SQLite call in that commit lets go of the GIL; getting it back costs up to one turn,
    # and the writers of every other worker wait for the lock meanwhile.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
