"""The alerts page: the channels and rules set up through the admin API, and recent incidents."""

from __future__ import annotations

from typing import Any

from gateway.alerts import configuration
from gateway.alerts.incidents import incident_view, list_incidents
from gateway.console import forms
from gateway.console.blueprint import bp
from gateway.http import gateway
from gateway.paging import MAX_LIMIT

#: The incidents the page lists, newest first; the API pages through them all.
SHOWN_INCIDENTS = 50


@bp.get("/alerts")
def alert_page() -> Any:
    gw = gateway()
    return forms.render(
        "console/alerts/index.html",
        channels=[
            configuration.channel_view(c) for c in configuration.list_channels(gw, MAX_LIMIT, None)
        ],
        rules=[configuration.rule_view(r) for r in configuration.list_rules(gw, MAX_LIMIT, None)],
        incidents=[incident_view(i) for i in list_incidents(gw, SHOWN_INCIDENTS, None)],
    )
