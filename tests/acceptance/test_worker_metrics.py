"""What a worker process counts reaches Prometheus: through the web processes' /metrics when
it shares their multiprocess directory, or from a port of its own on a host without them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.integration.test_metrics import METRICS_TOKEN, Sample, sample, samples
from tests.postgres import _free_port

UNROUTED = sample("gateway_events_processed_total", outcome="unrouted")


def counted(url: str, wanted: Sample, headers: dict[str, str] | None = None) -> float:
    """The sample's value once the scrape at ``url`` shows it, within 30 seconds (the process
    serving it may be starting still)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            answer = requests.get(url, headers=headers, timeout=10)
        except requests.ConnectionError:
            answer = None
        if answer is not None:
            assert answer.status_code == 200, answer.text
            if wanted in (found := samples(answer.text)):
                return found[wanted]
        time.sleep(0.1)
    raise AssertionError(f"{url} never showed {wanted}")


def test_a_worker_beside_the_web_processes_is_counted_in_their_metrics(
    tmp_path: Path,
    group_factory: Callable[..., dict[str, Any]],
    deliver: Any,
    start_web: Any,
    start_worker: Any,
) -> None:
    (tmp_path / "metrics").mkdir()  # a directory of its own: it reads every .db file there
    shared = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    url, _ = start_web(**shared)
    start_worker(**shared)

    deliver(group_factory(), b'{"topic": "inventory.cycle_count", "data": {}}')

    assert counted(f"{url}/metrics", UNROUTED) == 1


def test_a_worker_on_a_host_of_its_own_serves_its_counters_behind_the_token(
    group_factory: Callable[..., dict[str, Any]], deliver: Any, start_worker: Any
) -> None:
    port = _free_port()
    start_worker(
        GATEWAY_WORKER_METRICS_BIND=f"127.0.0.1:{port}", GATEWAY_METRICS_TOKEN=METRICS_TOKEN
    )
    url = f"http://127.0.0.1:{port}/metrics"
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}

    deliver(group_factory(), b'{"topic": "inventory.cycle_count", "data": {}}')

    assert counted(url, UNROUTED, bearer) == 1
    assert requests.get(url, timeout=10).status_code == 401
