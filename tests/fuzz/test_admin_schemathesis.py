"""The admin API against its own OpenAPI document: no 5xx, and every answer as documented.

Schemathesis reads the document the app serves and generates requests for every operation,
valid and invalid alike (the document's examples first); each answer must be no server error,
carry a documented status code, content type and headers, and have a body that matches the
documented schema. Seeded objects (a group, a webhook record, a mapping, an event, a record)
are swapped into path parameters half of the time, so that the by-id operations reach real
objects rather than only their 404s; deletions get objects of their own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.api.openapi import OPENAPI_PATH
from tests.conftest import ADMIN_TOKEN

#: Per operation and phase: the module runs in about 20 s per backend.
MAX_EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAPPING = {
    "name": "items",
    "upserts": [
        {
            "key": "item",
            "object": "Item__c",
            "external_id_field": "Item_Id__c",
            "external_id": "payload.data.itemId",
            "fields": {"Location__c": "payload.data.location"},
        }
    ],
}
AUTHORIZATION = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: The seeded object a path parameter names, by the operation's path where it differs.
NAMES = {"/api/v1/connectors/{name}": "xemelgo"}


def _clone(admin: Any, group: dict[str, Any]) -> dict[str, Any]:
    response = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"], "mapping": "items"},
    )
    assert response.status_code == 201, response.get_json()
    record: dict[str, Any] = response.get_json()
    return record


@pytest.fixture
def seeded(admin: Any, group_factory: Any, deliver: Any, worker: Any) -> dict[str, Any]:
    """One of each object, the event processed into a record; ids by path parameter name."""
    assert admin.put("/mappings/items", MAPPING).status_code == 201
    group = group_factory(events=["inventory.moved"])
    record = _clone(admin, group)
    body = {
        "id": "seed-1",
        "eventTimestamp": 1765572297000,
        "topic": "inventory.moved",
        "data": {"itemId": "A-1", "location": "Dock 3"},
    }
    assert deliver(group, json.dumps(body).encode()).status_code == 200
    worker.drain()
    event = admin.get("/events").get_json()["items"][0]
    assert event["status"] == "delivered", event
    doomed = group_factory(name="To delete", events=["inventory.moved"])
    return {
        "group_id": group["id"],
        "webhook_id": record["id"],
        "event_id": event["id"],
        "name": "items",
        "obj": "Item__c",
        "external_id": "A-1",
        "token": group["token"],
        "deleted": {"group_id": doomed["id"], "webhook_id": _clone(admin, doomed)["id"]},
    }


@pytest.fixture
def api_schema(app: Flask, seeded: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_wsgi(OPENAPI_PATH, app, headers=AUTHORIZATION)

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        if not path_parameters:
            return st.just(path_parameters)
        operation = context.operation
        ids = {**seeded, **seeded["deleted"]} if operation.method == "delete" else seeded
        # An id the seed has no object for (an alert incident) stays as generated.
        real = {
            name: NAMES.get(operation.path, ids.get(name, value))
            for name, value in path_parameters.items()
        }
        return st.sampled_from([path_parameters, real])

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.filterwarnings(
    # Only when an example fails: Hypothesis imports libcst to suggest an @example, and an
    # installed libcst older than mypy_extensions 1.1 warns on import. The failure stays.
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_the_api_keeps_its_openapi_document(case: Any) -> None:
    case.call_and_validate(headers=AUTHORIZATION, checks=CHECKS)
