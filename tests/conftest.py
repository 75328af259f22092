"""Shared fixtures: every database-backed test runs on SQLite and on a real PostgreSQL server.

``GATEWAY_TEST_DATABASES`` (default ``sqlite,postgresql``) picks the backends. PostgreSQL is
started once per run in a temporary directory; each test gets emptied tables.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from gateway.config import Settings
from gateway.logs import configure as configure_logging
from gateway.migrate import upgrade
from gateway.models import Base
from gateway.services import Gateway
from tests.postgres import find_bindir, postgres_server


@pytest.fixture(autouse=True)
def gateway_logging_as_it_was() -> Iterator[None]:
    """The ``gateway`` loggers as an app configures them (their stderr handler), but passing
    their records on to pytest's log capture too, whatever a test did to them before: the
    first app made configures them not to propagate."""
    logger = logging.getLogger("gateway")
    configure_logging("text")
    logger.propagate = True
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.propagate, logger.level = True, level


BACKENDS = [
    b.strip() for b in os.environ.get("GATEWAY_TEST_DATABASES", "sqlite,postgresql").split(",")
]
ADMIN_TOKEN = "test-admin-token-" + "0" * 16


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with postgres_server(bindir) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_postgres(postgres_url: str) -> str:
    from gateway.storage import open_storage

    database = open_storage(postgres_url)
    upgrade(database)
    database.dispose()
    return postgres_url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gateway.db'}"
        from gateway.storage import open_storage

        database = open_storage(url)
        upgrade(database)
        database.dispose()
        return url
    url: str = request.getfixturevalue("migrated_postgres")
    _empty_tables(url)
    return url


def _empty_tables(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        instance_path=tmp_path / "instance",
        database_url=database_url,
        public_url="http://127.0.0.1:8000",
        admin_token=ADMIN_TOKEN,
        secret_key=Fernet.generate_key().decode(),
        worker_poll_s=0.05,
        batch_window_s=0.0,
        retry_base_s=0.0,
        retry_max_s=0.0,
    )


@pytest.fixture
def gw(settings: Settings) -> Iterator[Gateway]:
    gateway = Gateway(settings)
    yield gateway
    gateway.close()


@pytest.fixture
def app(gw: Gateway) -> Flask:
    from gateway.web import create_app

    flask_app = create_app(gateway=gw)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Admin:
    """The admin API through the test client, with the bearer token and JSON bodies."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.client.open(
            f"/api/v1{path}", method=method, json=json, headers=self.headers, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None) -> Any:
        return self.call("POST", path, json=json)

    def put(self, path: str, json: Any = None) -> Any:
        return self.call("PUT", path, json=json)

    def patch(self, path: str, json: Any = None) -> Any:
        return self.call("PATCH", path, json=json)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)


@pytest.fixture
def admin(client: FlaskClient) -> Admin:
    return Admin(client)


@pytest.fixture
def group_factory(admin: Admin) -> Callable[..., dict[str, Any]]:
    """Create a group through the API; keyword arguments override the defaults."""

    def make(**overrides: Any) -> dict[str, Any]:
        body = {
            "name": "Test group",
            "connector": "xemelgo",
            "function": "webhooks",
            "secret": "test-secret-" + secrets.token_hex(12),
            "events": ["inventory.cycle_count"],
            **overrides,
        }
        response = admin.post("/groups", body)
        assert response.status_code == 201, response.get_json()
        group: dict[str, Any] = response.get_json()
        group["secret"] = body.get("secret")
        group["token"] = group["callback_url"].rsplit("/", 1)[1]
        return group

    return make


@pytest.fixture
def worker(gw: Gateway) -> Any:
    from gateway.worker import Worker

    return Worker(gw, worker_id="test-worker")


@pytest.fixture
def deliver(client: FlaskClient, gw: Gateway) -> Callable[..., Any]:
    """POST ``body`` to a group's callback URL, signed as its connector signs unless told not to."""
    from gateway.verify import sign

    def post(
        group: dict[str, Any],
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        signed: bool = True,
        secret: str | None = None,
        content_type: str | None = "application/json",
        method: str = "POST",
    ) -> Any:
        profile = gw.connectors.get(group["connector"])
        sent = {"Content-Type": content_type} if content_type else {}
        sent.update(headers or {})
        if signed:
            sent.update(sign(profile.verification, secret or group["secret"] or "", body))
        return client.open(f"/hooks/{group['token']}", method=method, data=body, headers=sent)

    return post


@pytest.fixture
def xilnex_group(group_factory: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return group_factory(connector="xilnex", function="event-hub", events=["Complete Sales"])


@pytest.fixture
def fixed_xilnex_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Xilnex profile as a release that reads either spelling of the event type ships it:
    what re-processing a refused delivery runs with once the profile is fixed."""
    import copy

    from gateway.connectors import shipped_profiles, validate_profile

    document = copy.deepcopy(shipped_profiles()["xilnex"].document)
    document["events"]["type"] = {"jmespath": "EventName || eventName"}
    monkeypatch.setitem(shipped_profiles(), "xilnex", validate_profile(document))
