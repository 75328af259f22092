"""Waiting without stopping the whole process when web workers run as gevent greenlets.

Under gunicorn's gevent workers every request of a process shares one thread: a call that
blocks in C (a file lock, SQLite's busy wait) stops them all, including the ones that should
be told 503 when their commit takes too long. Code that may wait asks here how to.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any


def cooperative() -> bool:
    """Whether this process runs greenlets (gevent has patched ``threading``)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))


def let_ready_requests_run() -> None:
    """Under gevent, return once every request that can make progress has made it.

    The inbox's writer calls this before gathering a batch, so every delivery whose request is
    already under way joins the coming commit instead of waiting for the next one. With
    threads, requests run meanwhile anyway: nothing to do.
    """
    if cooperative():
        import gevent

        gevent.idle()


def off_the_hub(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, a call that blocks in C without the GIL (a file lock, an fsync);
    under gevent, in a native thread of gevent's pool, so the process's other requests go on
    meanwhile."""
    if not cooperative():
        return function(*args)
    import gevent

    return gevent.get_hub().threadpool.apply(function, args)


def gate_factory() -> Callable[[], Any]:
    """What makes a closed gate: ``release()`` opens it once, ``acquire()`` waits until then.

    With threads, a held lock. Under gevent, a zero semaphore straight from gevent's compiled
    core: the patched ``threading.Lock`` wraps the same semaphore in Python code, which costs
    more than the wait itself when every delivery makes and waits on one.
    """
    if cooperative():
        from gevent.lock import Semaphore

        return lambda: Semaphore(0)
    return _held_lock


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock
