"""The overview: traffic of the last hour, what needs attention, the queue, Salesforce usage,
the latest alert incidents."""

from __future__ import annotations

from typing import Any

from gateway.alerts.incidents import incident_view, list_incidents
from gateway.console import forms, queries
from gateway.console.blueprint import bp
from gateway.http import gateway
from gateway.models import EventStatus
from gateway.services import Gateway
from gateway.targets.usage import target_usage

#: The alert incidents the overview lists, newest first; the API lists them all.
RECENT_INCIDENTS = 10


def salesforce_usage(gw: Gateway) -> list[dict[str, Any]]:
    """The Salesforce targets in use, with the API usage workers last stored for each."""
    return [t.body() for t in target_usage(gw) if t.name.startswith("salesforce")]


@bp.get("/")
def overview() -> Any:
    gw = gateway()
    return forms.render(
        "console/overview.html",
        stats=queries.overview(gw),
        statuses=[s.value for s in EventStatus],
        salesforce=salesforce_usage(gw),
        incidents=[incident_view(i) for i in list_incidents(gw, RECENT_INCIDENTS, None)],
    )
