"""The OpenAPI document: valid OpenAPI 3.1, served with the token, true to the routes Flask has."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateway.api import openapi, receive, schemas
from gateway.config import Settings
from gateway.connectors import validate_profile
from gateway.mapping import validate_document
from gateway.services import Gateway
from gateway.web import create_app

PUBLIC_URL = "http://127.0.0.1:8000"
#: Routes the document describes besides the admin API.
OTHER_PREFIXES = ("/hooks/", "/healthz", "/readyz", "/metrics")
#: Operations anyone may call: the receive endpoint and operations.
PUBLIC = {"receive", "receiveByPut", "healthz", "readyz", "metrics"}
TOKEN = "t" * 24


@pytest.fixture
def flask_app(tmp_path: Path) -> Iterator[Flask]:
    """The app without a database: neither the route table nor the document touch one."""
    settings = Settings(
        instance_path=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        public_url=PUBLIC_URL,
        admin_token=TOKEN,
        secret_key=Fernet.generate_key().decode(),
    )
    gateway = Gateway(settings)
    yield create_app(gateway=gateway)
    gateway.close()


@pytest.fixture
def document(flask_app: Flask) -> dict[str, Any]:
    return openapi.document(flask_app)


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def _template(path: str) -> str:
    """``/groups/<group_id>`` and ``/groups/{id}`` alike become ``/groups/{}``."""
    return re.sub(r"<(?:[a-z]+:)?[a-z_]+>|\{[a-z_]+\}", "{}", path)


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    errors = [e.message for e in OpenAPIV31SpecValidator(document).iter_errors()]

    assert errors == []
    assert document["openapi"].startswith("3.1")


def test_it_is_served_with_the_token_like_every_admin_call(flask_app: Flask) -> None:
    client = flask_app.test_client()

    response = client.get(openapi.OPENAPI_PATH, headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    served = response.get_json()
    assert served == openapi.document(flask_app)
    assert served["servers"] == [{"url": PUBLIC_URL}]
    assert client.get(openapi.OPENAPI_PATH).status_code == 401


def test_every_route_is_described_and_every_description_is_a_route(
    flask_app: Flask, document: dict[str, Any]
) -> None:
    routes = {
        (method, _template(rule.rule))
        for rule in flask_app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") or rule.rule.startswith(OTHER_PREFIXES)
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    # Callbacks are served in front of Flask, by their own WSGI layer.
    assert isinstance(flask_app.wsgi_app, receive.Hooks)
    routes |= {(method, _template(receive.PREFIX + "<token>")) for method in receive.METHODS}
    described = {(method, _template(path)) for method, path in _operations(document)}

    assert described - routes == set(), "described but not served"
    assert routes - described == set(), "served but not described"


def test_a_route_that_declares_no_operation_fails_the_document(flask_app: Flask) -> None:
    def undeclared() -> str:
        """Served, but not declared."""
        return "{}"

    flask_app.add_url_rule("/api/v1/undeclared", view_func=undeclared)

    with pytest.raises(openapi.Undeclared, match="GET /api/v1/undeclared"):
        openapi.document(flask_app)


def test_a_declared_view_without_a_docstring_fails_the_document(flask_app: Flask) -> None:
    @openapi.operation("meta", status=204)
    def undocumented() -> str:
        return ""

    flask_app.add_url_rule("/api/v1/undocumented", view_func=undocumented)

    with pytest.raises(openapi.Undeclared, match="docstring"):
        openapi.document(flask_app)


def test_each_operation_is_summed_up_by_its_view_and_named_once(
    document: dict[str, Any],
) -> None:
    operations = _operations(document)
    ids = [operation["operationId"] for operation in operations.values()]

    assert len(ids) == len(set(ids))
    assert operations[("POST", "/api/v1/groups")]["operationId"] == "createGroup"
    assert operations[("POST", "/api/v1/groups")]["summary"] == (
        "Create a webhook group with its callback URL and blank template record"
    )
    assert operations[("PUT", "/hooks/{token}")]["operationId"] == "receiveByPut"
    for key, operation in operations.items():
        assert operation["summary"] and "\n" not in operation["summary"], key


def test_component_names_and_subschemas_suit_client_generators(document: dict[str, Any]) -> None:
    names = document["components"]["schemas"]

    assert [name for name in names if not re.fullmatch(r"[A-Za-z0-9]+", name)] == []
    assert list(_boolean_subschemas(document)) == []


def _boolean_subschemas(node: Any, at: str = "") -> Iterator[str]:
    """Where a schema is ``true`` or ``false`` rather than an object (``additionalProperties:
    false`` aside, which generators read as a closed object)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("properties", "patternProperties", "$defs") and isinstance(value, dict):
                yield from (f"{at}/{key}/{k}" for k, v in value.items() if isinstance(v, bool))
            if key in ("items", "not", "if", "then", "else", "contains") and isinstance(
                value, bool
            ):
                yield f"{at}/{key}"
            yield from _boolean_subschemas(value, f"{at}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _boolean_subschemas(value, f"{at}/{index}")


def test_path_parameters_are_declared(document: dict[str, Any]) -> None:
    for (method, path), operation in _operations(document).items():
        declared = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{([a-z_]+)\}", path)), (method, path)


def test_request_bodies_are_the_schemas_the_api_validates_with(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]

    assert components["GroupCreate"] == schemas.GROUP_CREATE
    assert components["GroupUpdate"] == schemas.GROUP_UPDATE
    assert components["RotateSecret"] == schemas.ROTATE_SECRET
    assert components["WebhookClone"] == schemas.WEBHOOK_CLONE
    assert components["WebhookUpdate"] == schemas.WEBHOOK_UPDATE
    assert components["Preview"] == schemas.PREVIEW
    assert components["EventFilter"] == schemas.EVENT_FILTER


def test_every_admin_call_documents_the_bearer_token_and_its_401(
    document: dict[str, Any],
) -> None:
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for key, operation in _operations(document).items():
        if operation["operationId"] in PUBLIC:
            assert operation["security"] == [], key
        else:
            assert "security" not in operation, key
            assert "401" in operation["responses"], key


def test_every_call_with_a_body_documents_its_413(document: dict[str, Any]) -> None:
    for key, operation in _operations(document).items():
        if "requestBody" in operation:
            assert "413" in operation["responses"], key


def test_every_error_answer_is_the_contract_error_body(document: dict[str, Any]) -> None:
    responses = document["components"]["responses"]
    error_ref = {"$ref": "#/components/schemas/Error"}
    for key, operation in _operations(document).items():
        for status, answer in operation["responses"].items():
            if int(status) < 400:
                continue
            if "$ref" in answer:
                answer = responses[answer["$ref"].rsplit("/", 1)[1]]
            assert answer["content"]["application/json"]["schema"] == error_ref, (key, status)


def test_every_request_example_is_valid(document: dict[str, Any]) -> None:
    # The examples' schemas and their $refs resolve inside the document.
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:openapi", resource)
    for name, example in openapi.EXAMPLES.items():
        schema = {"$ref": f"urn:openapi#/components/schemas/{name}"}
        errors = Draft202012Validator(schema, registry=registry).iter_errors(example)
        assert [e.message for e in errors] == [], name
    # Rules the schemas cannot say, checked where the API checks them.
    validate_profile(openapi.EXAMPLES["ConnectorProfile"])
    validate_document({"name": "items", **openapi.EXAMPLES["MappingDocumentBody"]}, name="items")
    for key, operation in _operations(document).items():
        for media in operation.get("requestBody", {}).get("content", {}).values():
            name = media["schema"].get("$ref", "").rsplit("/", 1)[-1]
            assert media.get("example") == openapi.EXAMPLES.get(name), key


def test_every_list_takes_limit_and_cursor_and_documents_their_400(
    document: dict[str, Any],
) -> None:
    lists = {
        key: operation
        for key, operation in _operations(document).items()
        if _answer_schema(operation).get("$ref", "").endswith("List")
    }

    assert len(lists) == 12
    for key, operation in lists.items():
        query = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        assert {"limit", "cursor"} <= query, key
        assert "400" in operation["responses"], key


def _answer_schema(operation: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of an operation's 200 answer, if it has one."""
    answer = operation["responses"].get("200", {})
    schema: dict[str, Any] = answer.get("content", {}).get("application/json", {}).get("schema", {})
    return schema


def test_the_metrics_scrape_documents_no_503_since_it_answers_without_its_database(
    flask_app: Flask, document: dict[str, Any]
) -> None:
    scrape = flask_app.test_client().get("/metrics")  # its database was never created

    assert scrape.status_code == 200
    assert "gateway_database_up 0.0" in scrape.get_data(as_text=True)
    assert set(document["paths"]["/metrics"]["get"]["responses"]) == {"200"}
