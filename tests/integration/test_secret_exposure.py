"""Secrets are write-only: no answer, not even one refusing them, repeats a value sent as one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

LEAKED = "fake-leak-canary-5f1e"
NEW_GROUP = {"name": "g", "connector": "generic", "function": "webhooks", "events": ["a"]}


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        (
            "POST",
            "/groups",
            {"secret": LEAKED * 100},
            "the value is longer than 1024 characters",
        ),
        ("POST", "/groups", {"secret": [LEAKED]}, "must be a string or null"),
        ("PATCH", "/groups/{id}", {"secret": {"value": LEAKED}}, "must be a string or null"),
        (
            "POST",
            "/groups/{id}/rotate-secret",
            {"secret": LEAKED * 100},
            "the value is longer than 1024 characters",
        ),
        ("POST", "/groups/{id}/rotate-secret", {"secret": [LEAKED]}, "must be a string"),
        (
            "PUT",
            "/targets/salesforce/credentials",
            {"SALESFORCE_PASSWORD": [LEAKED]},
            "must be a string",
        ),
        (
            "PUT",
            "/targets/salesforce/credentials",
            {"SALESFORCE_PASSWORD": LEAKED * 500},
            "the value is longer than 4000 characters",
        ),
    ],
)
def test_a_refused_secret_is_not_repeated_in_the_422(
    admin: Any,
    group_factory: Any,
    method: str,
    path: str,
    body: dict[str, Any],
    message: str,
) -> None:
    group = group_factory()
    if path == "/groups":
        body = {**NEW_GROUP, **body}
    response = admin.call(method, path.format(id=group["id"]), json=body)
    assert response.status_code == 422, response.get_json()
    [detail] = response.get_json()["error"]["details"]
    assert detail["message"] == message
    assert LEAKED not in response.get_data(as_text=True)


def test_a_database_error_does_not_repeat_the_statements_values(gw: Any) -> None:
    """Its text lands in logs and tracebacks; the values are payloads, fields and tokens."""
    insert = text(
        "INSERT INTO connector_profiles (name, document, version, created_at, updated_at)"
        " VALUES ('twice', :doc, 1, :at, :at)"
    )
    values = {"doc": json.dumps({"canary": LEAKED}), "at": datetime.now(UTC)}
    with gw.db.session() as session:
        session.execute(insert, values)
    with pytest.raises(IntegrityError) as raised, gw.db.session() as session:
        session.execute(insert, values)
    assert LEAKED not in str(raised.value)
