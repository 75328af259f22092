"""/metrics: what the workers did, counted as it happens, behind an optional token."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from gateway.metrics import SETTLED_RECOUNT_S, serve_counters
from gateway.models import Event, EventStatus
from tests.integration.test_worker import FlakyTarget, moved

METRICS_TOKEN = "test-metrics-token-" + "1" * 16
#: A sample: its name and its labels.
Sample = tuple[str, frozenset[tuple[str, str]]]


def samples(text: str) -> dict[Sample, float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(name: str, **labels: str) -> Sample:
    return name, frozenset(labels.items())


@pytest.fixture
def scrape(client: Any) -> Callable[[], dict[Sample, float]]:
    def read() -> dict[Sample, float]:
        response = client.get("/metrics")
        assert response.status_code == 200
        return samples(response.get_data(as_text=True))

    return read


@pytest.fixture
def remote_target(gw: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Make the records' target a remote one, down for its first ``outages`` calls."""

    def use(outages: int) -> None:
        target = FlakyTarget(outages)
        monkeypatch.setattr(gw.targets, "is_local", lambda name: False)
        monkeypatch.setattr(gw.targets, "remote", lambda name: target)

    return use


#: (samples that grow, by how much) after one event met a target down that many times.
ATTEMPTS = [
    pytest.param(
        0,
        {
            sample("gateway_events_processed_total", outcome="delivered"): 1,
            sample("gateway_events_processed_total", outcome="pending"): 0,
            sample("gateway_event_retries_total"): 0,
            sample("gateway_target_calls_total", target="local", result="created"): 1,
            sample("gateway_processing_latency_seconds_count"): 1,
        },
        id="delivered at once",
    ),
    pytest.param(
        2,
        {
            sample("gateway_events_processed_total", outcome="delivered"): 1,
            sample("gateway_events_processed_total", outcome="pending"): 2,
            sample("gateway_event_retries_total"): 2,
            sample("gateway_target_calls_total", target="local", result="retry"): 2,
            sample("gateway_target_calls_total", target="local", result="created"): 1,
            sample("gateway_processing_latency_seconds_count"): 1,
        },
        id="retried twice",
    ),
]


@pytest.mark.parametrize(("outages", "grown"), ATTEMPTS)
def test_every_attempt_is_counted_by_outcome_target_call_and_retry(
    moves: dict[str, Any],
    deliver: Any,
    worker: Any,
    scrape: Callable[[], dict[Sample, float]],
    remote_target: Callable[[int], None],
    outages: int,
    grown: dict[Sample, float],
) -> None:
    remote_target(outages)
    before = scrape()
    deliver(moves, moved("A-1", "Dock 3", 1))

    worker.drain()

    after = scrape()
    assert {name: after.get(name, 0) - before.get(name, 0) for name in grown} == grown


def test_processing_latency_is_a_histogram_that_sums_across_processes(
    moves: dict[str, Any], deliver: Any, worker: Any, client: Any
) -> None:
    deliver(moves, moved("A-1", "Dock 3", 1))
    worker.drain()

    families = text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
    latency = next(f for f in families if f.name == "gateway_processing_latency_seconds")

    assert latency.type == "histogram"
    assert not any("quantile" in s.labels for s in latency.samples)
    infinite = next(s for s in latency.samples if s.labels.get("le") == "+Inf")
    assert infinite.value >= 1


def test_events_given_up_on_by_a_claim_are_counted_dead(
    moves: dict[str, Any],
    deliver: Any,
    worker: Any,
    gw: Any,
    scrape: Callable[[], dict[Sample, float]],
) -> None:
    deliver(moves, moved("A-1", "Dock 3", 1))
    with gw.db.session() as session:  # as if every attempt had died with its worker
        session.execute(
            update(Event).values(
                status=EventStatus.PROCESSING,
                claim_expires_at=datetime.now(UTC) - timedelta(minutes=1),
                attempts=gw.settings.max_attempts,
            )
        )
    dead = sample("gateway_events_processed_total", outcome="dead")
    before = scrape().get(dead, 0)

    worker.drain()

    assert scrape()[dead] - before == 1


def test_settled_statuses_shown_are_never_older_than_a_scrape_interval(
    moves: dict[str, Any],
    deliver: Any,
    worker: Any,
    gw: Any,
    scrape: Callable[[], dict[Sample, float]],
) -> None:
    delivered = sample("gateway_queue_events", status="delivered")
    assert scrape()[delivered] == 0
    deliver(moves, moved("A-1", "Dock 3", 1))
    worker.drain()
    gw.status_counts._settled_at -= SETTLED_RECOUNT_S  # the shortest scrape interval passed

    assert SETTLED_RECOUNT_S <= 15  # Prometheus's shortest customary scrape interval
    assert scrape()[delivered] == 1


@pytest.fixture
def guarded(app: Any, gw: Any) -> Any:
    """The app with GATEWAY_METRICS_TOKEN set."""
    gw.settings = dataclasses.replace(gw.settings, metrics_token=METRICS_TOKEN)
    return app.test_client()


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer wrong-token", 401),
        (f"Basic {METRICS_TOKEN}", 401),
        ("Bearer " + "test-admin-token-" + "0" * 16, 401),  # the admin token is not this one
        (f"Bearer {METRICS_TOKEN}", 200),
        (f"bearer  {METRICS_TOKEN}", 200),
    ],
)
def test_with_a_metrics_token_set_only_scrapes_that_send_it_are_answered(
    guarded: Any, authorization: str | None, status: int
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    response = guarded.get("/metrics", headers=headers)

    assert response.status_code == status
    if status == 401:
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert "GATEWAY_METRICS_TOKEN" in response.get_json()["error"]["message"]
        assert METRICS_TOKEN not in response.get_data(as_text=True)
    else:
        assert "gateway_database_up 1.0" in response.get_data(as_text=True)


def test_without_a_metrics_token_the_scrape_needs_none(client: Any) -> None:
    assert client.get("/metrics").status_code == 200


@pytest.fixture
def worker_port() -> Iterator[str]:
    """A worker's own metrics server on a free loopback port, behind the metrics token."""
    server = serve_counters(("127.0.0.1", 0), METRICS_TOKEN)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_worker_serves_its_own_counters_behind_the_token(
    moves: dict[str, Any], deliver: Any, worker: Any, worker_port: str
) -> None:
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    delivered = sample("gateway_events_processed_total", outcome="delivered")
    before = samples(requests.get(f"{worker_port}/metrics", headers=bearer, timeout=10).text)
    deliver(moves, moved("A-1", "Dock 3", 1))

    worker.drain()

    answer = requests.get(f"{worker_port}/metrics", headers=bearer, timeout=10)
    refused = requests.get(f"{worker_port}/metrics", timeout=10)
    elsewhere = requests.get(f"{worker_port}/", headers=bearer, timeout=10)
    assert answer.status_code == 200
    assert samples(answer.text)[delivered] - before.get(delivered, 0) == 1
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "unauthorized")
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (404, "not_found")
