"""When to try again: after a target's transient failure, and after a failing round of the
worker's own loop."""

from __future__ import annotations

import random

from gateway.config import Settings

#: The longest a worker waits between tries while the database keeps failing.
MAX_FAILING_WAIT_S = 10.0


def retry_delay(attempts: int, settings: Settings) -> float:
    """Exponential backoff with jitter, so a recovering target is not hit by a thundering herd."""
    delay: float = min(settings.retry_max_s, settings.retry_base_s * 2 ** max(attempts - 1, 0))
    return delay * (0.5 + random.random() / 2)


def idle_wait(poll_s: float, failures: int) -> float:
    """The poll interval, doubling with each failure in a row up to MAX_FAILING_WAIT_S: an
    outage should not fill the log with a line every poll, nor a recovery wait long."""
    return min(MAX_FAILING_WAIT_S, poll_s * 2 ** min(failures, 32)) if failures else poll_s
