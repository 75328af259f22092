"""Migration 0014: profiles registered before versions existed become their own version 1."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from gateway.migrate import upgrade
from gateway.models import ConnectorProfile, ConnectorProfileVersion, Group
from gateway.storage import open_storage

ACME = {
    "name": "acme",
    "title": "ACME",
    "functions": [{"name": "orders", "events": ["order.paid"]}],
    "verification": {"scheme": "none"},
    "events": {"type": {"jmespath": "kind"}},
}


def test_registered_profiles_become_version_1_and_their_groups_follow_it(tmp_path: Path) -> None:
    database = open_storage(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(database, "0013_oauth_clients")  # the revision before 0014
    stamp = datetime(2026, 1, 2, tzinfo=UTC)
    with database.engine.begin() as conn:
        conn.execute(
            insert(ConnectorProfile.__table__).values(name="acme", document=ACME, created_at=stamp)
        )
        for group_id, connector in (("g-acme", "acme"), ("g-xtnd", "xtnd")):
            conn.execute(
                insert(Group.__table__).values(
                    id=group_id,
                    name=group_id,
                    connector=connector,
                    function="orders",
                    events=["order.paid"],
                    token=f"token-{group_id}",
                    active=True,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )

    upgrade(database)

    with database.engine.connect() as conn:
        profile = conn.execute(select(ConnectorProfile.version, ConnectorProfile.updated_at)).one()
        versions = conn.execute(
            select(ConnectorProfileVersion.version, ConnectorProfileVersion.changes)
        ).all()
        groups = dict(conn.execute(select(Group.id, Group.connector_version)).all())
    database.dispose()
    assert profile.version == 1
    assert profile.updated_at.replace(tzinfo=UTC) == stamp
    assert [tuple(v) for v in versions] == [(1, ["created"])]
    assert groups == {"g-acme": 1, "g-xtnd": None}
