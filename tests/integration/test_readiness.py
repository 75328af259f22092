"""Readiness means a delivery could be stored now, and the database file stays the gateway's own:
private to its owner, and never written to once it is deleted or replaced."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from gateway.config import Settings
from gateway.errors import StoreUnavailable
from gateway.migrate import upgrade
from gateway.models import Delivery
from gateway.secrets import fingerprint
from gateway.services import Gateway
from gateway.storage import open_storage
from gateway.web import create_app


def _cycle_count(n: int) -> bytes:
    return json.dumps(
        {"id": f"d-{n}", "eventTimestamp": n, "topic": "inventory.cycle_count", "data": {}}
    ).encode()


@pytest.fixture
def sqlite_only(gw: Gateway) -> None:
    if not gw.db.is_sqlite:
        pytest.skip("a database file is SQLite's")


@pytest.fixture
def other_gateway(settings: Settings) -> Iterator[Callable[..., FlaskClient]]:
    """A test client of another gateway on the same database, with some settings changed."""
    opened: list[Gateway] = []

    def client(**overrides: Any) -> FlaskClient:
        other = Gateway(settings.with_overrides(overrides))
        opened.append(other)
        return create_app(gateway=other).test_client()

    yield client
    for other in opened:
        other.close()


def _database_file(settings: Settings) -> Path:
    return Path(str(make_url(settings.database_url).database))


def _stored_deliveries(settings: Settings) -> int:
    """Deliveries in the database file as a newly started gateway finds it."""
    fresh = Gateway(settings)
    try:
        with fresh.db.read_session() as session:
            return int(session.scalar(select(func.count()).select_from(Delivery)) or 0)
    finally:
        fresh.close()


def _refusal(response: Any) -> tuple[int, str, str]:
    error = response.get_json()["error"]
    return response.status_code, error["code"], error["message"]


def test_not_ready_with_a_secret_key_that_cannot_open_the_secrets_stored(
    group_factory: Any, gw: Gateway, other_gateway: Callable[..., FlaskClient]
) -> None:
    group_factory()
    other_key = Fernet.generate_key().decode()

    status, code, message = _refusal(other_gateway(secret_key=other_key).get("/readyz"))

    assert (status, code) == (503, "secret_key_mismatch")
    assert f"fingerprint is {gw.box.fingerprint}" in message
    assert f"has the fingerprint {fingerprint(other_key)}" in message


def test_not_ready_without_room_on_the_database_disk(
    sqlite_only: None, settings: Settings, other_gateway: Callable[..., FlaskClient]
) -> None:
    free = shutil.disk_usage(_database_file(settings).parent).free

    status, code, message = _refusal(other_gateway(max_body_bytes=free).get("/readyz"))

    assert (status, code) == (503, "database_unavailable")
    assert "bytes free" in message


def test_not_ready_on_a_postgresql_server_that_takes_no_writes(
    gw: Gateway, settings: Settings, other_gateway: Callable[..., FlaskClient]
) -> None:
    if gw.db.is_sqlite:
        pytest.skip("SQLite's writability is its file's")
    read_only = make_url(settings.database_url).update_query_dict(
        {"options": "-c default_transaction_read_only=on"}
    )
    client = other_gateway(database_url=read_only.render_as_string(hide_password=False))

    status, code, message = _refusal(client.get("/readyz"))

    assert (status, code) == (503, "database_unavailable")
    assert "takes no writes" in message


def _delete(path: Path) -> None:
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink(missing_ok=True)


def _replace(path: Path) -> None:
    """Restore a backup taken just now in its place: the same name and content, another file."""
    backup = path.with_name("backup.db")
    with (
        contextlib.closing(sqlite3.connect(path)) as live,
        contextlib.closing(sqlite3.connect(backup)) as copy,
    ):
        live.backup(copy)
    _delete(path)
    os.replace(backup, path)


@pytest.mark.parametrize(
    ("change", "said", "found_at_restart"),
    [(_delete, "was deleted", None), (_replace, "was replaced", 1)],
    ids=["deleted", "replaced"],
)
def test_a_database_file_deleted_or_replaced_under_the_gateway_gets_503_not_200(
    sqlite_only: None,
    settings: Settings,
    client: FlaskClient,
    group_factory: Any,
    deliver: Any,
    change: Callable[[Path], None],
    said: str,
    found_at_restart: int | None,
) -> None:
    group = group_factory()
    assert deliver(group, _cycle_count(1)).status_code == 200
    path = _database_file(settings)
    change(path)

    refused = deliver(group, _cycle_count(2))
    ready = client.get("/readyz")

    assert _refusal(refused)[:2] == (503, "database_unavailable")
    assert said in _refusal(refused)[2]
    assert refused.headers["Retry-After"]
    assert _refusal(ready)[:2] == (503, "database_unavailable")
    assert said in _refusal(ready)[2]
    # What a restarted gateway finds: no file made anew, or the one put in place as it was.
    assert (_stored_deliveries(settings) if path.exists() else None) == found_at_restart


def test_a_process_that_first_connects_after_the_file_is_deleted_makes_no_new_one(
    sqlite_only: None, settings: Settings
) -> None:
    path = _database_file(settings)
    database = open_storage(settings.database_url)  # as a web process starts: no connection yet
    try:
        _delete(path)
        with pytest.raises(StoreUnavailable, match="was deleted"):
            database.ping()
    finally:
        database.dispose()

    assert not path.exists()


def test_the_database_file_and_its_wal_are_for_their_owner_only(
    sqlite_only: None, tmp_path: Path, settings: Settings
) -> None:
    fresh = tmp_path / "private" / "gateway.db"
    previous = os.umask(0o022)  # the usual umask, which leaves files readable by all
    try:
        new = Gateway(settings.with_overrides({"database_url": f"sqlite:///{fresh}"}))
        upgrade(new.db)
        client = create_app(gateway=new).test_client()
        assert client.get("/readyz").status_code == 200
        files = {path.name: stat.S_IMODE(path.stat().st_mode) for path in fresh.parent.iterdir()}
        new.close()
    finally:
        os.umask(previous)

    assert {"gateway.db", "gateway.db-wal", "gateway.db-shm"} <= files.keys()
    assert files == dict.fromkeys(files, 0o600)
