"""What admins see of their targets: the default, each remote target's API usage, and each
limited target's calls today and why its events wait."""

from __future__ import annotations

from sqlalchemy import select

from gateway import views
from gateway.models import Group, TargetUsage, iso
from gateway.services import Gateway


def target_usage(gw: Gateway) -> list[views.Target]:
    default = gw.targets.default_name()
    with gw.db.read_session() as session:
        chosen = {t for t in session.scalars(select(Group.target).distinct()) if t}
        usage = {row.target: row for row in session.scalars(select(TargetUsage))}
        names = sorted(
            {default, *chosen, *usage, *gw.limiter.limits}, key=lambda n: (n != default, n)
        )
        now = gw.db.now(session)
        limits = {name: gw.limiter.view(session, name, now) for name in names}
    return [_view(name, name == default, usage.get(name), limits[name]) for name in names]


def _view(
    name: str, default: bool, usage: TargetUsage | None, limits: views.TargetLimitsView | None
) -> views.Target:
    return views.Target(
        name=name,
        default=default,
        api_usage=None
        if usage is None
        else views.ApiUsage(
            used=usage.used,
            limit=usage.limit,
            remaining=max(usage.limit - usage.used, 0),
            reported_at=iso(usage.updated_at),
        ),
        limits=limits,
    )
