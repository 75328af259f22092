"""The overview: traffic of the last hour, what needs attention, the queue, Salesforce usage,
target limits, the latest alert incidents."""

from __future__ import annotations

from typing import Any

from gateway import views
from gateway.alerts.incidents import incident_view, list_incidents
from gateway.console import forms, queries
from gateway.console.blueprint import bp
from gateway.http import gateway
from gateway.models import EventStatus
from gateway.targets.usage import target_usage

#: The alert incidents the overview lists, newest first; the API lists them all.
RECENT_INCIDENTS = 10


def salesforce_usage(targets: list[views.Target]) -> list[dict[str, Any]]:
    """The Salesforce targets in use, with the API usage workers last stored for each."""
    return [t.body() for t in targets if t.name.startswith("salesforce")]


def limited(targets: list[views.Target]) -> list[dict[str, Any]]:
    """The targets with limits, with the calls spent today and why their events wait."""
    return [t.body() for t in targets if t.limits is not None]


@bp.get("/")
def overview() -> Any:
    gw = gateway()
    targets = target_usage(gw)
    return forms.render(
        "console/overview.html",
        stats=queries.overview(gw),
        statuses=[s.value for s in EventStatus],
        salesforce=salesforce_usage(targets),
        limited=limited(targets),
        incidents=[incident_view(i) for i in list_incidents(gw, RECENT_INCIDENTS, None)],
    )
