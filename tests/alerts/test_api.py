"""The alert endpoints: channels with write-only secrets, a test message, rules, incidents."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.models import AlertIncident
from gateway.services import Gateway
from tests.alerts.conftest import HttpReceiver, SmtpServer


def test_a_channel_is_shown_without_its_secret(admin: Any, signing_key: str) -> None:
    body = {"name": "Ops", "kind": "webhook", "url": "https://ops.example.test/in"}
    created = admin.post("/alerts/channels", {**body, "secret": signing_key}).get_json()
    shown = admin.get(f"/alerts/channels/{created['id']}").get_json()

    assert shown == created
    assert shown["secret_hint"] == "…" + signing_key[-4:]
    assert signing_key not in str(admin.get("/alerts/channels").get_json())
    assert {k: shown[k] for k in body} == body


def test_a_slack_url_is_a_secret(admin: Any) -> None:
    url = "https://hooks.slack.example.test/services/T000/B000/abcdefgh1234"
    created = admin.post("/alerts/channels", {"name": "S", "kind": "slack", "url": url})

    assert created.status_code == 201
    assert url not in created.get_data(as_text=True)
    assert created.get_json()["secret_hint"] == "…1234"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": "x"}, "$"),  # no kind: a missing key is named in the message
        ({"name": "x", "kind": "pager"}, "kind"),  # not a kind
        ({"name": "x", "kind": "webhook", "url": "https://a.test"}, "$"),  # no signing key
        ({"name": "x", "kind": "webhook", "url": "ftp://a.test", "secret": "c2VjcmV0"}, "url"),
        (
            {"name": "x", "kind": "webhook", "url": "https://a.test", "secret": "not base64!"},
            "secret",
        ),
        ({"name": "x", "kind": "slack", "url": "https://a.test", "host": "smtp"}, "$"),  # email's
        ({"name": "x", "kind": "email", "host": "smtp", "from": "a@b", "to": []}, "to"),
        (
            {"name": "x", "kind": "email", "host": "smtp", "from": "a@b", "to": ["c@d"], "port": 0},
            "port",
        ),
    ],
)
def test_an_invalid_channel_is_422_naming_the_field(admin: Any, body: Any, path: str) -> None:
    response = admin.post("/alerts/channels", body)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert path in [d["path"] for d in error["details"]]


def test_a_channel_is_changed_and_deleted(admin: Any, signing_key: str) -> None:
    created = admin.post(
        "/alerts/channels",
        {"name": "Ops", "kind": "webhook", "url": "https://a.test/x", "secret": signing_key},
    ).get_json()
    path = f"/alerts/channels/{created['id']}"

    changed = admin.patch(path, {"name": "Night shift", "active": False}).get_json()
    assert (changed["name"], changed["active"], changed["url"]) == (
        "Night shift",
        False,
        "https://a.test/x",
    )
    assert admin.patch(path, {"kind": "slack"}).status_code == 422  # the kind stays
    assert admin.delete(path).status_code == 204
    assert admin.get(path).status_code == 404
    assert admin.get(path).get_json()["error"]["code"] == "not_found"


def test_a_change_keeps_the_settings_it_does_not_name(admin: Any) -> None:
    body = {"name": "Mail", "kind": "email", "host": "smtp.test", "port": 2525}
    created = admin.post("/alerts/channels", {**body, "from": "a@b.test", "to": ["c@d.test"]})

    changed = admin.patch(f"/alerts/channels/{created.get_json()['id']}", {"to": ["e@f.test"]})

    assert {k: changed.get_json()[k] for k in ("host", "port", "to")} == {
        "host": "smtp.test",
        "port": 2525,
        "to": ["e@f.test"],
    }


def test_the_test_call_sends_through_the_channel(
    admin: Any, channels: dict[str, str], http_receiver: HttpReceiver, smtp_server: SmtpServer
) -> None:
    for channel_id in channels.values():
        response = admin.post(f"/alerts/channels/{channel_id}/test")
        assert response.status_code == 200, response.get_json()

    assert [r.path for r in http_receiver.requests] == ["/hook", "/slack"]
    assert http_receiver.requests[0].json()["type"] == "test"
    assert len(smtp_server.messages) == 1


def test_a_test_call_the_channel_refuses_is_502_with_its_answer(
    admin: Any, channels: dict[str, str], http_receiver: HttpReceiver
) -> None:
    http_receiver.status = 500

    response = admin.post(f"/alerts/channels/{channels['webhook']}/test")

    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "channel_failed"
    assert "500" in response.get_json()["error"]["message"]


def test_a_rule_shows_its_parameters_with_their_defaults(
    admin: Any, rule_factory: Callable[..., dict[str, Any]]
) -> None:
    rule = rule_factory("target_failing", params={"minutes": 10})

    assert rule["params"] == {"digest_s": 60, "cooldown_s": 300, "minutes": 10, "target": None}
    assert rule["channel_ids"] == []
    changed = admin.patch(f"/alerts/rules/{rule['id']}", {"params": {"target": "salesforce"}})
    assert changed.get_json()["params"]["minutes"] == 10  # merged, not replaced
    assert changed.get_json()["params"]["target"] == "salesforce"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"kind": "queue_lag"}, "$"),  # no name
        ({"name": "x", "kind": "disk_full"}, "kind"),
        ({"name": "x", "kind": "target_usage", "params": {"percent": 150}}, "params.percent"),
        ({"name": "x", "kind": "queue_lag", "params": {"minutes": 5}}, "params"),  # not its own
        ({"name": "x", "kind": "queue_lag", "channel_ids": ["nope"]}, "channel_ids[0]"),
    ],
)
def test_an_invalid_rule_is_422_naming_the_field(admin: Any, body: Any, path: str) -> None:
    response = admin.post("/alerts/rules", body)

    assert response.status_code == 422
    assert path in [d["path"] for d in response.get_json()["error"]["details"]]


def test_a_rule_is_listed_changed_and_deleted(
    admin: Any, rule_factory: Callable[..., dict[str, Any]]
) -> None:
    rules = [rule_factory(kind) for kind in ("event_dead", "queue_lag", "group_silent")]

    listed = admin.get("/alerts/rules", query_string={"limit": 2}).get_json()
    rest = admin.get("/alerts/rules", query_string={"cursor": listed["next_cursor"]}).get_json()
    assert sorted(r["id"] for r in listed["items"] + rest["items"]) == sorted(
        r["id"] for r in rules
    )
    path = f"/alerts/rules/{rules[0]['id']}"
    assert admin.patch(path, {"active": False}).get_json()["active"] is False
    assert admin.delete(path).status_code == 204
    assert admin.get(path).status_code == 404


def test_incidents_are_listed_newest_first_a_page_at_a_time(admin: Any, gw: Gateway) -> None:
    start = datetime.now(UTC)
    with gw.db.session() as session:
        for n in range(3):
            at = start + timedelta(minutes=n)
            session.add(
                AlertIncident(
                    rule_id="r",
                    rule_name="Queue",
                    kind="queue_lag",
                    subject="",
                    state="resolved",
                    count=n,
                    summary=f"lag {n}",
                    opened_at=at,
                    last_seen_at=at,
                    resolved_at=at,
                    announced=True,
                )
            )

    first = admin.get("/alerts/incidents", query_string={"limit": 2}).get_json()
    second = admin.get(
        "/alerts/incidents", query_string={"limit": 2, "cursor": first["next_cursor"]}
    )

    assert [i["summary"] for i in first["items"]] == ["lag 2", "lag 1"]
    assert [i["summary"] for i in second.get_json()["items"]] == ["lag 0"]
    assert second.get_json()["next_cursor"] is None
    assert admin.get("/alerts/incidents/999").status_code == 404
    assert admin.get("/alerts/incidents/abc").status_code == 404


def test_the_alert_endpoints_need_the_admin_token(client: Any) -> None:
    assert client.get("/api/v1/alerts/incidents").status_code == 401
    assert client.post("/api/v1/alerts/channels", json={}).status_code == 401
