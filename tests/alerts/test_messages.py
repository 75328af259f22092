"""Alerts end to end: events die in the worker, the rule is evaluated, and the local HTTP
receiver (webhook and Slack channels) and SMTP server get each message exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

from gateway.core import Gateway
from gateway.worker import Worker
from tests.alerts.conftest import SMTP_USER, HttpReceiver, SmtpServer, utcnow

DIGEST = timedelta(seconds=61)
COOLDOWN = timedelta(seconds=300)


def counts(receiver: HttpReceiver, smtp: SmtpServer) -> dict[str, int]:
    return {
        "webhook": len(receiver.at("/hook")),
        "slack": len(receiver.at("/slack")),
        "email": len(smtp.messages),
    }


ONE_EACH = {"webhook": 1, "slack": 1, "email": 1}
TWO_EACH = {"webhook": 2, "slack": 2, "email": 2}


def test_an_event_that_dies_is_one_message_on_each_channel_and_its_resolution_one_more(
    gw: Gateway,
    admin: Any,
    channels: dict[str, str],
    rule_factory: Callable[..., dict[str, Any]],
    send_moves: Callable[[int], None],
    crm: Any,
    worker: Worker,
    http_receiver: HttpReceiver,
    smtp_server: SmtpServer,
) -> None:
    rule_factory("event_dead", name="Dead events")
    send_moves(1)
    [event] = admin.get("/events").get_json()["items"]
    assert event["status"] == "dead"
    start = utcnow()

    gw.alerts.tick(start)
    assert counts(http_receiver, smtp_server) == {"webhook": 0, "slack": 0, "email": 0}
    gw.alerts.tick(start + DIGEST)
    gw.alerts.tick(start + DIGEST + timedelta(seconds=5))
    assert counts(http_receiver, smtp_server) == ONE_EACH

    crm.down = False
    assert admin.post(f"/events/{event['id']}/replay").status_code == 200
    worker.drain()
    cleared = start + DIGEST + timedelta(seconds=10)
    gw.alerts.tick(cleared)
    gw.alerts.tick(cleared + COOLDOWN)
    gw.alerts.tick(cleared + COOLDOWN + timedelta(seconds=5))
    assert counts(http_receiver, smtp_server) == TWO_EACH

    opened, resolved = (r.json() for r in http_receiver.at("/hook"))
    assert (opened["type"], resolved["type"]) == ("incident.opened", "incident.resolved")
    assert opened["incident"]["count"] == 1
    assert "1 event went dead" in opened["text"]
    assert [m["Subject"] for m in smtp_server.messages] == [
        "Alert: Dead events",
        "Resolved: Dead events",
    ]
    assert smtp_server.sessions == [(True, SMTP_USER), (True, SMTP_USER)]  # STARTTLS, signed in
    assert "Dead events" in http_receiver.at("/slack")[0].json()["text"]
    [incident] = admin.get("/alerts/incidents").get_json()["items"]
    assert incident["state"] == "resolved"


def test_the_webhook_channel_signs_with_standard_webhooks(
    gw: Gateway,
    channels: dict[str, str],
    rule_factory: Callable[..., dict[str, Any]],
    send_moves: Callable[[int], None],
    crm: Any,
    http_receiver: HttpReceiver,
    signing_key: str,
) -> None:
    rule_factory("event_dead", params={"digest_s": 0})
    send_moves(1)

    gw.alerts.tick(utcnow())

    [message] = http_receiver.at("/hook")
    verified = Webhook(signing_key).verify(message.body, message.headers)
    assert verified["type"] == "incident.opened"
    assert message.headers["webhook-id"] == verified["id"]


def test_a_storm_of_dead_events_is_one_message_that_says_how_many(
    gw: Gateway,
    channels: dict[str, str],
    rule_factory: Callable[..., dict[str, Any]],
    send_moves: Callable[[int], None],
    crm: Any,
    http_receiver: HttpReceiver,
    smtp_server: SmtpServer,
) -> None:
    rule_factory("event_dead")
    start = utcnow()
    send_moves(5)
    gw.alerts.tick(start)
    send_moves(20)
    gw.alerts.tick(start + timedelta(seconds=30))
    gw.alerts.tick(start + DIGEST)
    send_moves(3)
    gw.alerts.tick(start + DIGEST + timedelta(seconds=5))

    assert counts(http_receiver, smtp_server) == ONE_EACH
    [message] = http_receiver.at("/hook")
    assert message.json()["incident"]["count"] == 25
    assert "25 events went dead" in smtp_server.messages[0].get_payload()


def test_workers_evaluating_at_once_send_each_message_once(
    gw: Gateway,
    channels: dict[str, str],
    rule_factory: Callable[..., dict[str, Any]],
    send_moves: Callable[[int], None],
    crm: Any,
    http_receiver: HttpReceiver,
    smtp_server: SmtpServer,
) -> None:
    """Two processes' worth: each thread has its own Gateway on the one database."""
    rule_factory("event_dead")
    send_moves(2)
    start = utcnow()
    others = [Gateway(gw.settings) for _ in range(3)]
    together = threading.Barrier(len(others))
    errors: list[BaseException] = []

    def evaluate(each: Gateway) -> None:
        try:
            for at in (start, start + DIGEST, start + DIGEST + timedelta(seconds=1)):
                together.wait()
                each.alerts.tick(at)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=evaluate, args=(each,)) for each in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for each in others:
        each.close()

    assert errors == []
    assert counts(http_receiver, smtp_server) == ONE_EACH


def test_a_channel_that_fails_is_tried_again_with_the_same_message_id(
    gw: Gateway,
    admin: Any,
    channels: dict[str, str],
    rule_factory: Callable[..., dict[str, Any]],
    send_moves: Callable[[int], None],
    crm: Any,
    http_receiver: HttpReceiver,
) -> None:
    rule_factory("event_dead", channel_ids=[channels["webhook"]], params={"digest_s": 0})
    send_moves(1)
    http_receiver.status = 503
    start = utcnow()
    gw.alerts.tick(start)
    gw.alerts.tick(start + timedelta(seconds=5))  # too soon to try again
    http_receiver.status = 200
    gw.alerts.tick(start + timedelta(seconds=61))
    gw.alerts.tick(start + timedelta(seconds=200))

    first, second = http_receiver.at("/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert http_receiver.at("/slack") == []  # the rule names the webhook channel alone
    incident = admin.get("/alerts/incidents").get_json()["items"][0]
    notices = admin.get(f"/alerts/incidents/{incident['id']}").get_json()["notices"]
    assert [(n["state"], n["attempts"], n["error"]) for n in notices] == [("sent", 2, None)]


@pytest.mark.parametrize(
    ("replayed_after", "expected"),
    [
        (timedelta(seconds=30), 0),  # fixed within the digest time: no message at all
        (timedelta(seconds=90), 1),  # announced, then a flap shorter than the cooldown: no more
    ],
)
def test_a_short_problem_makes_no_more_messages_than_it_needs(
    gw: Gateway,
    admin: Any,
    channels: dict[str, str],
    rule_factory: Callable[..., dict[str, Any]],
    send_moves: Callable[[int], None],
    crm: Any,
    worker: Worker,
    http_receiver: HttpReceiver,
    replayed_after: timedelta,
    expected: int,
) -> None:
    rule_factory("event_dead", channel_ids=[channels["webhook"]])
    send_moves(1)
    start = utcnow()
    gw.alerts.tick(start)
    gw.alerts.tick(start + replayed_after - timedelta(seconds=1))
    crm.down = False
    admin.post("/events/replay", {"status": "dead"})
    worker.drain()
    gw.alerts.tick(start + replayed_after)
    gw.alerts.tick(start + replayed_after + timedelta(seconds=100))  # inside the cooldown

    assert len(http_receiver.at("/hook")) == expected


def test_the_worker_loop_evaluates_the_rules(
    gw: Gateway,
    channels: dict[str, str],
    rule_factory: Callable[..., dict[str, Any]],
    send_moves: Callable[[int], None],
    crm: Any,
    http_receiver: HttpReceiver,
) -> None:
    rule_factory("event_dead", params={"digest_s": 0})
    send_moves(1)
    stop = threading.Event()
    loop = threading.Thread(target=Worker(gw, worker_id="looping").run, args=(stop,))
    loop.start()
    try:
        arrived = http_receiver.wait_for(2)
    finally:
        stop.set()
        loop.join()

    assert sorted(r.path for r in arrived) == ["/hook", "/slack"]
