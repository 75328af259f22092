"""The overview: traffic of the last hour, what needs attention, the queue, Salesforce usage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from gateway.console import bp, forms, queries
from gateway.core import Gateway
from gateway.models import EventStatus, Group
from gateway.web import gateway


@dataclass(frozen=True)
class ApiUsage:
    """One Salesforce target and its last reading of the org's daily API usage, if any."""

    target: str
    used: int | None = None
    limit: int | None = None


def salesforce_usage(gw: Gateway) -> list[ApiUsage]:
    """The Salesforce targets in use: the default one and any a group names.

    Readings come from the targets this process opened; a worker running elsewhere keeps its own
    (its /metrics has ``gateway_salesforce_api_usage``).
    """
    with gw.db.read_session() as session:
        named = set(session.scalars(select(Group.target).where(Group.target.is_not(None))))
    names = sorted(
        n for n in {gw.targets.default_name(), *named} if n and n.startswith("salesforce")
    )
    opened = gw.targets.opened_remotes()
    usage = []
    for name in names:
        reading = getattr(opened.get(name), "api_usage", None)
        usage.append(ApiUsage(name, *reading) if reading else ApiUsage(name))
    return usage


@bp.get("/")
def overview() -> Any:
    gw = gateway()
    return forms.render(
        "console/overview.html",
        stats=queries.overview(gw),
        statuses=[s.value for s in EventStatus],
        salesforce=salesforce_usage(gw),
    )
