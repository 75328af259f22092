"""Prometheus metrics: counters kept by each process, queue gauges read from the database.

Under gunicorn several processes serve requests; when ``PROMETHEUS_MULTIPROC_DIR`` is set (the
shipped ``gunicorn.conf.py`` sets it) their counters are summed at scrape time, those of worker
processes given the same directory included. A worker on another host serves its own counters
on ``GATEWAY_WORKER_METRICS_BIND`` instead.
"""

from __future__ import annotations

import functools
import hmac
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.errors import StoreUnavailable
from gateway.models import SETTLED, UNSETTLED, Event, EventStatus, TargetUsage, aware
from gateway.storage import Storage

DELIVERIES = Counter(
    "gateway_deliveries_total",
    "Deliveries received, by webhook group and outcome",
    ["group", "outcome"],
)
EVENTS_RECEIVED = Counter(
    "gateway_events_received_total",
    "Events carried by accepted deliveries, by group and how they were taken",
    ["group", "disposition"],
)
REFUSALS_UNRECORDED = Counter(
    "gateway_refusals_unrecorded_total",
    "Refused deliveries not recorded as rows: unverified ones past GATEWAY_REFUSED_PER_MINUTE"
    " for their group, or while the database could not take them",
    ["group"],
)
BODIES_CUT_OFF = Counter(
    "gateway_request_bodies_cut_off_total",
    "Request bodies that arrived too slowly (GATEWAY_BODY_TIMEOUT_S, GATEWAY_BODY_MIN_RATE),"
    " their connections closed",
)
RECEIVE_LATENCY = Histogram(
    "gateway_receive_seconds",
    "Time from request to durable acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PROCESSING_LATENCY = Histogram(
    "gateway_processing_latency_seconds",
    "Time from receipt to the attempt that delivered the event",
    # From a batch's first second to a day of retries through a target's outage.
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400),
)
EVENTS_PROCESSED = Counter(
    "gateway_events_processed_total",
    "Attempts at events, by the status each attempt left its event in (pending: to be retried)",
    ["outcome"],
)
TARGET_CALLS = Counter(
    "gateway_target_calls_total",
    "Upserts sent to targets, by target and result (created, updated, failed, retry)",
    ["target", "result"],
)
RETRIES = Counter(
    "gateway_event_retries_total",
    "Attempts that failed transiently and put their event back in the queue to be tried again",
)


@functools.lru_cache(maxsize=4096)
def labelled(metric: Counter, group: str, outcome: str) -> Counter:
    """A counter's child for these labels, looked up once rather than on every delivery."""
    return metric.labels(group, outcome)


#: How often the settled statuses are counted again, at most, by each process: a scrape or a
#: look at the console shows them at most this old, and several scrapers or many console
#: views within it cost one count.
SETTLED_RECOUNT_S = 10.0


class StatusCounts:
    """Events by status, cheap enough for every scrape and every look at the console.

    The unsettled statuses (pending, processing, failed, dead) are counted each time, each from
    its own stretch of the status index: few events at once, unless the queue is backed up,
    which is when their count matters. The settled ones pile up until retention purges them,
    so counting them walks most of the table; each process counts them again only once
    ``SETTLED_RECOUNT_S`` have passed, and shows the last count meanwhile.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._settled: dict[str, int] = {}
        self._settled_at: float | None = None

    def read(self, session: Session, *, recount: bool = False) -> dict[str, int]:
        """Every status with its count, 0 for those no event has; ``recount``: the settled
        ones counted now, whenever they last were."""
        now = self._clock()
        if recount or self._settled_at is None or now - self._settled_at >= SETTLED_RECOUNT_S:
            self._settled = _count(session, SETTLED)
            self._settled_at = now
        counts = {**self._settled, **_count(session, UNSETTLED)}
        return {status.value: counts.get(status.value, 0) for status in EventStatus}


def _count(session: Session, statuses: Sequence[str]) -> dict[str, int]:
    query = select(Event.status, func.count()).where(Event.status.in_(statuses))
    return {status: int(n) for status, n in session.execute(query.group_by(Event.status))}


class QueueCollector(Collector):
    """Queue and target gauges read from the database at scrape time.

    Workers may run on other hosts than the web process answering the scrape, so what they
    know (queue, retries, latency, target API usage) is read from the shared database.
    """

    def __init__(self, database: Storage, counts: StatusCounts) -> None:
        self._db = database
        self._counts = counts

    def collect(self) -> Iterator[Any]:
        """The gauges, and ``gateway_database_up``: during an outage only that, at 0, so that
        a scrape still shows the counters, which matter most then (the 503s by group)."""
        try:
            with self._db.read_session() as session:
                gauges = [
                    *_queue_depth(self._counts.read(session)),
                    _oldest_pending_age(session),
                    _retrying(session),
                    _target_usage(session),
                ]
        except StoreUnavailable:
            gauges = []
        up = GaugeMetricFamily("gateway_database_up", "Whether the database answered the scrape")
        up.add_metric([], 1 if gauges else 0)
        yield from gauges
        yield up


def _queue_depth(counts: dict[str, int]) -> Iterator[Any]:
    depth = GaugeMetricFamily("gateway_queue_events", "Events by status", labels=["status"])
    for status, count in counts.items():
        depth.add_metric([status], count)
    yield depth
    dead = GaugeMetricFamily("gateway_dead_events", "Events that exhausted their retries")
    dead.add_metric([], counts[EventStatus.DEAD])
    yield dead


def _oldest_pending_age(session: Any) -> Any:
    gauge = GaugeMetricFamily(
        "gateway_oldest_pending_age_seconds",
        "How long the pending event that has waited longest for a worker has been due",
    )
    gauge.add_metric([], _age(waiting_since(session)))
    return gauge


def waiting_since(session: Any) -> datetime | None:
    """When the pending event that has waited longest for a worker fell due; None if none has.

    The first pending entry of the queue index (status, due time), found at once: the oldest
    ``received_at`` among pending events takes a walk past every settled event received before
    it, most of the table. A retry counts from its due time: backing off is not waiting.
    """
    first: datetime | None = session.scalar(
        select(func.min(Event.next_attempt_at)).where(Event.status == EventStatus.PENDING)
    )
    return first if first is not None and aware(first) <= datetime.now(UTC) else None


def _retrying(session: Any) -> Any:
    gauge = GaugeMetricFamily(
        "gateway_retrying_events", "Pending events that failed transiently and wait to retry"
    )
    count = session.scalar(
        select(func.count())
        .select_from(Event)
        .where(Event.status == EventStatus.PENDING, Event.attempts > 0)
    )
    gauge.add_metric([], count or 0)
    return gauge


def _target_usage(session: Any) -> Any:
    gauge = GaugeMetricFamily(
        "gateway_target_api_usage",
        "API calls used and allowed per day, as the target last reported",
        labels=["target", "kind"],
    )
    for row in session.scalars(select(TargetUsage)):
        gauge.add_metric([row.target, "used"], row.used)
        gauge.add_metric([row.target, "limit"], row.limit)
    return gauge


def _age(value: datetime | None) -> float:
    if value is None:
        return 0.0
    return max(0.0, (datetime.now(UTC) - aware(value)).total_seconds())


def scrape_allowed(authorization: str | None, token: str | None) -> bool:
    """Whether a scrape with this ``Authorization`` header may read the metrics: always when
    no token is set, else only with ``Bearer <token>``."""
    if not token:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def counters() -> bytes:
    """Prometheus text of this process's counters, or of every process's sharing its
    multiprocess directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def render(database: Storage, counts: StatusCounts) -> bytes:
    """Prometheus text: this process's (or all processes') counters, and the queue."""
    queue = CollectorRegistry()
    queue.register(QueueCollector(database, counts))
    return counters() + generate_latest(queue)


def serve_counters(bind: tuple[str, int], token: str | None) -> WSGIServer:
    """Serve :func:`counters` at ``/metrics`` on ``bind`` from a daemon thread, behind
    ``token`` as the web process's /metrics is: a worker's own, where no web process shares
    its multiprocess directory. ``server_port`` is the port taken (``bind``'s may be 0)."""

    def answer(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            return _error(start_response, "404 Not Found", "not_found", "only /metrics is here")
        if not scrape_allowed(environ.get("HTTP_AUTHORIZATION"), token):
            return _error(
                start_response,
                "401 Unauthorized",
                "unauthorized",
                "GATEWAY_METRICS_TOKEN is set: scrape with 'Authorization: Bearer <metrics token>'",
            )
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [counters()]

    server = make_server(*bind, answer, _IPv4OrIPv6Server, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def _error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps({"error": {"code": code, "message": message}}).encode()]


class _IPv4OrIPv6Server(WSGIServer):
    """wsgiref's server, on an IPv6 address too."""

    def __init__(self, address: tuple[str, int], handler: type[WSGIRequestHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr for every scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
