"""Prometheus metrics: counters kept by each process, queue gauges read from the database.

Under gunicorn several processes serve requests; when ``PROMETHEUS_MULTIPROC_DIR`` is set (the
shipped ``gunicorn.conf.py`` sets it) their counters are summed at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func, select

from gateway.db import Database
from gateway.models import Event, EventStatus

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
RECEIVE_LATENCY = Histogram(
    "gateway_receive_seconds",
    "Time from request to durable acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PROCESSED = Counter(
    "gateway_events_processed_total",
    "Events processed by workers, by resulting status",
    ["status"],
)
PROCESSING_LATENCY = Histogram(
    "gateway_processing_seconds",
    "Time from receipt to final status for processed events",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600),
)


class QueueCollector(Collector):
    """Queue depth by status and the age of the oldest pending event, read at scrape time."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def collect(self) -> Iterator[Any]:
        depth = GaugeMetricFamily("gateway_queue_events", "Events by status", labels=["status"])
        oldest = GaugeMetricFamily(
            "gateway_oldest_pending_age_seconds", "Age of the oldest pending event"
        )
        with self._db.read_session() as session:
            counts = dict(
                session.execute(select(Event.status, func.count()).group_by(Event.status)).all()
            )
            first = session.scalar(
                select(func.min(Event.received_at)).where(Event.status == EventStatus.PENDING)
            )
        for status in EventStatus:
            depth.add_metric([status.value], counts.get(status.value, 0))
        age = 0.0
        if first is not None:
            first = first if first.tzinfo else first.replace(tzinfo=UTC)
            age = max(0.0, (datetime.now(UTC) - first).total_seconds())
        oldest.add_metric([], age)
        yield depth
        yield oldest


def render(database: Database) -> bytes:
    """Prometheus text: this process's (or all processes') counters, and the queue."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        counters = generate_latest(registry)
    else:
        counters = generate_latest(REGISTRY)
    queue = CollectorRegistry()
    queue.register(QueueCollector(database))
    return counters + generate_latest(queue)
