"""Alert incidents on the overview, and the alerts page with its channels and rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.models import AlertIncident
from gateway.services import Gateway
from tests.console.conftest import Console

SLACK_URL = "https://hooks.slack.example.test/services/T0/B0/secretpart9876"


def open_incident(gw: Gateway, summary: str) -> None:
    now = datetime.now(UTC)
    with gw.db.session() as session:
        session.add(
            AlertIncident(
                open_key="r:",
                rule_id="r",
                rule_name="Queue lag",
                kind="queue_lag",
                subject="",
                state="open",
                count=7,
                summary=summary,
                opened_at=now,
                last_seen_at=now,
                announced=False,
            )
        )


def test_the_overview_shows_the_latest_incidents(console: Console, gw: Gateway) -> None:
    assert "None: no alert rule has held." in console.get("/admin/").text

    open_incident(gw, "the oldest pending event has waited 12 min")

    html = console.get("/admin/").text
    assert "the oldest pending event has waited 12 min" in html
    assert "None: no alert rule has held." not in html


def test_the_alerts_page_lists_channels_and_rules_without_secrets(
    console: Console, admin: Any, gw: Gateway
) -> None:
    channel = admin.post(
        "/alerts/channels", {"name": "Ops room", "kind": "slack", "url": SLACK_URL}
    )
    rule = admin.post("/alerts/rules", {"name": "Usage", "kind": "target_usage"})
    assert (channel.status_code, rule.status_code) == (201, 201)
    open_incident(gw, "target salesforce: 95 % used")

    html = console.get("/admin/alerts").text

    assert "Ops room" in html and "…9876" in html
    assert SLACK_URL not in html
    assert "Usage" in html and "percent=90" in html
    assert "target salesforce: 95 % used" in html
