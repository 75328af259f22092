"""Secrets are write-only: no answer, not even one refusing them, repeats a value sent as one."""

from __future__ import annotations

from typing import Any

import pytest

LEAKED = "fake-leak-canary-5f1e"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/groups", {"secret": LEAKED * 100}),  # too long
        ("POST", "/groups", {"secret": [LEAKED]}),  # not a string
        ("PATCH", "/groups/{id}", {"secret": {"value": LEAKED}}),
        ("POST", "/groups/{id}/rotate-secret", {"secret": LEAKED * 100}),
        ("POST", "/groups/{id}/rotate-secret", {"secret": [LEAKED]}),
        ("PUT", "/targets/salesforce/credentials", {"SALESFORCE_PASSWORD": [LEAKED]}),
        ("PUT", "/targets/salesforce/credentials", {"SALESFORCE_PASSWORD": LEAKED * 500}),
    ],
)
def test_a_refused_secret_is_not_repeated_in_the_422(
    admin: Any, group_factory: Any, method: str, path: str, body: dict[str, Any]
) -> None:
    group = group_factory()
    if path == "/groups":
        body = {"name": "g", "connector": "generic", "function": "webhooks", "events": ["a"], **body}
    response = admin.call(method, path.format(id=group["id"]), json=body)
    assert response.status_code == 422, response.get_json()
    [detail] = response.get_json()["error"]["details"]
    assert detail["message"].startswith("the value ")
    assert LEAKED not in response.get_data(as_text=True)
