"""A client generated from the served OpenAPI document works against the gateway.

openapi-python-client reads the document the app serves and must generate every operation
without an error or a warning; the generated package is then imported and drives the gateway
over httpx's WSGI transport (no network), on both databases.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from flask import Flask

from gateway.api.openapi import OPENAPI_PATH
from gateway.config import Settings
from gateway.services import Gateway
from gateway.web import create_app
from tests.conftest import ADMIN_TOKEN

PACKAGE = "gateway_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.fixture(scope="module")
def served_document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document as the app serves it; neither it nor its routes need a database."""
    tmp = tmp_path_factory.mktemp("document")
    gateway = Gateway(
        Settings(
            instance_path=tmp,
            database_url=f"sqlite:///{tmp / 'unused.db'}",
            public_url="http://127.0.0.1:8000",
            admin_token=ADMIN_TOKEN,
            secret_key=Fernet.generate_key().decode(),
        )
    )
    client = create_app(gateway=gateway).test_client()
    response = client.get(OPENAPI_PATH, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    gateway.close()
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


@pytest.fixture(scope="module")
def generation(
    served_document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp = tmp_path_factory.mktemp("client")
    (tmp / "openapi.json").write_text(json.dumps(served_document))
    done = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(tmp / "openapi.json"),
            "--meta",
            "none",
            "--output-path",
            str(tmp / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done, tmp


@pytest.fixture(scope="module")
def generated(
    generation: tuple[subprocess.CompletedProcess[str], Path],
) -> Iterator[ModuleType]:
    """The generated package, importable as ``gateway_client`` while the module's tests run."""
    done, tmp = generation
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(tmp))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp))
        for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
            del sys.modules[name]


def test_the_generator_takes_every_operation_without_an_error_or_a_warning(
    generation: tuple[subprocess.CompletedProcess[str], Path],
    served_document: dict[str, Any],
) -> None:
    done, tmp = generation
    output = (done.stdout + done.stderr).strip()

    assert done.returncode == 0, output
    assert output.splitlines() == [f"Generating {tmp / PACKAGE}"]  # no warning, no error
    generated_modules = {path.stem for path in (tmp / PACKAGE / "api").glob("*/*.py")}
    operation_ids = {
        operation["operationId"]
        for item in served_document["paths"].values()
        for operation in item.values()
    }
    assert {_snake(name) for name in operation_ids} <= generated_modules


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@pytest.fixture
def api(generated: ModuleType, app: Flask) -> Any:
    """An authenticated generated client that calls ``app`` in process."""
    return generated.AuthenticatedClient(
        base_url="http://127.0.0.1:8000",
        token=ADMIN_TOKEN,
        httpx_args={"transport": httpx.WSGITransport(app=app)},
    )


def _module(generated: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_groups_are_created_listed_and_shown_through_the_generated_client(
    generated: ModuleType, api: Any
) -> None:
    models = _module(generated, "models")
    create = _module(generated, "api.groups.create_group")
    list_groups = _module(generated, "api.groups.list_groups")
    get_group = _module(generated, "api.groups.get_group")
    body = models.GroupCreate(
        name="Warehouse moves",
        connector="xemelgo",
        function="webhooks",
        events=["inventory.moved"],
        secret="a-signing-secret-of-24-characters-or-more",
    )

    created = create.sync_detailed(client=api, body=body)
    listed = list_groups.sync(client=api, limit=10)
    shown = get_group.sync(group_id=created.parsed.id, client=api)

    assert created.status_code == 201
    assert isinstance(created.parsed, models.Group)
    assert created.parsed.name == "Warehouse moves"
    assert created.parsed.secret_hint == "…more"
    assert created.parsed.callback_url.startswith("http://127.0.0.1:8000/hooks/")
    assert [group.id for group in listed.items] == [created.parsed.id]
    assert listed.next_cursor is None
    assert shown.to_dict() == created.parsed.to_dict()
    assert shown.template_webhook_id


def test_a_404_reads_as_the_contract_error_body(generated: ModuleType, api: Any) -> None:
    models = _module(generated, "models")
    get_group = _module(generated, "api.groups.get_group")

    answer = get_group.sync_detailed(group_id="missing", client=api)

    assert answer.status_code == 404
    assert isinstance(answer.parsed, models.Error)
    assert answer.parsed.error.code == "not_found"
    assert "missing" in answer.parsed.error.message
