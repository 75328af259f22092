"""Fixtures several integration test files share: the CLI in-process, and events to act on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from gateway import cli
from tests.integration.test_worker import ITEM_MAPPING

SECRET = "shared-test-secret-0123456789abcdef"


@pytest.fixture
def run(gw: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke ``gateway ...`` in-process against the test's database."""
    monkeypatch.setattr(cli, "_gateway", lambda: gw)

    def invoke(*args: str) -> Any:
        result = CliRunner().invoke(cli.main, list(args))
        assert result.exit_code == 0, result.output
        return result

    return invoke


@pytest.fixture
def failed_events(admin: Any, group_factory: Any, deliver: Any, worker: Any) -> list[str]:
    """Two events that failed because their record has no mapping, and one unrouted."""
    group = group_factory(secret=SECRET, events=["inventory.moved", "inventory.cycle_count"])
    admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"]},
    )
    for n, topic in enumerate(["inventory.moved", "inventory.moved", "inventory.cycle_count"]):
        body = {"id": str(n), "eventTimestamp": n, "topic": topic, "data": {"n": n}}
        deliver(group, json.dumps(body).encode())
    worker.drain()
    return [e["id"] for e in admin.get("/events?status=failed").get_json()["items"]]


@pytest.fixture
def moves(admin: Any, group_factory: Any) -> dict[str, Any]:
    """A group whose inventory.moved events become Item__c records."""
    assert admin.put("/mappings/items", ITEM_MAPPING).status_code == 201
    group = group_factory(secret=SECRET, events=["inventory.moved"])
    admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"], "mapping": "items"},
    )
    return group
