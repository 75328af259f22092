"""Waiting without stopping the whole process when web workers run as gevent greenlets.

Under gunicorn's gevent workers every request of a process shares one thread: a call that
blocks in C (a file lock, SQLite's busy wait) stops them all, including the ones that should
be told 503 when their commit takes too long. Code that may wait asks here how to.
"""

from __future__ import annotations

import sys


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
