"""Alerts end to end: events die in the worker, the rule is evaluated, and the local HTTP
receiver (webhook and Slack channels) and SMTP server get each message exactly once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from standardwebhooks import Webhook

from gateway.services import Gateway
from gateway.worker import Worker
from tests.alerts.conftest import SMTP_USER, Scene, utcnow

DIGEST = timedelta(seconds=61)
COOLDOWN = timedelta(seconds=300)
NONE = {"webhook": 0, "slack": 0, "email": 0}
ONE_EACH = {"webhook": 1, "slack": 1, "email": 1}
TWO_EACH = {"webhook": 2, "slack": 2, "email": 2}


def test_an_event_that_dies_is_one_message_on_each_channel_and_its_resolution_one_more(
    scene: Scene,
) -> None:
    scene.rule("event_dead", name="Dead events")
    scene.send_moves(1)
    [event] = scene.admin.get("/events").get_json()["items"]
    assert event["status"] == "dead"
    start = utcnow()

    scene.gw.alerts.tick(start)
    assert scene.received() == NONE  # gathering for the digest time
    scene.gw.alerts.tick(start + DIGEST)
    scene.gw.alerts.tick(start + DIGEST + timedelta(seconds=5))
    assert scene.received() == ONE_EACH

    scene.crm.down = False
    assert scene.admin.post(f"/events/{event['id']}/replay").status_code == 200
    scene.worker.drain()
    cleared = start + DIGEST + timedelta(seconds=10)
    scene.gw.alerts.tick(cleared)
    scene.gw.alerts.tick(cleared + COOLDOWN)
    scene.gw.alerts.tick(cleared + COOLDOWN + timedelta(seconds=5))
    assert scene.received() == TWO_EACH

    opened, resolved = (r.json() for r in scene.http.at("/hook"))
    assert (opened["type"], resolved["type"]) == ("incident.opened", "incident.resolved")
    assert opened["incident"]["count"] == 1
    assert "1 event went dead" in opened["text"]
    subjects = [m["Subject"] for m in scene.smtp.messages]
    assert subjects == ["Alert: Dead events", "Resolved: Dead events"]
    assert scene.smtp.sessions == [(True, SMTP_USER)] * 2  # over STARTTLS, signed in
    assert "Dead events" in scene.http.at("/slack")[0].json()["text"]
    [incident] = scene.admin.get("/alerts/incidents").get_json()["items"]
    assert incident["state"] == "resolved"


def test_the_webhook_channel_signs_with_standard_webhooks(scene: Scene, signing_key: str) -> None:
    scene.rule("event_dead", params={"digest_s": 0})
    scene.send_moves(1)

    scene.gw.alerts.tick(utcnow())

    [message] = scene.http.at("/hook")
    verified = Webhook(signing_key).verify(message.body, message.headers)
    assert verified["type"] == "incident.opened"
    assert message.headers["webhook-id"] == verified["id"]


def test_a_storm_of_dead_events_is_one_message_that_says_how_many(scene: Scene) -> None:
    scene.rule("event_dead")
    start = utcnow()
    scene.send_moves(5)
    scene.gw.alerts.tick(start)
    scene.send_moves(20)
    scene.gw.alerts.tick(start + timedelta(seconds=30))
    scene.gw.alerts.tick(start + DIGEST)
    scene.send_moves(3)
    scene.gw.alerts.tick(start + DIGEST + timedelta(seconds=5))

    assert scene.received() == ONE_EACH
    [message] = scene.http.at("/hook")
    assert message.json()["incident"]["count"] == 25
    assert "25 events went dead" in scene.smtp.messages[0].get_payload()


def test_workers_evaluating_at_once_send_each_message_once(scene: Scene) -> None:
    """Several processes' worth: each thread has its own Gateway on the one database."""
    scene.rule("event_dead")
    scene.send_moves(2)
    start = utcnow()
    others = [Gateway(scene.gw.settings) for _ in range(3)]
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
    assert scene.received() == ONE_EACH


def test_a_channel_that_fails_is_tried_again_with_the_same_message_id(scene: Scene) -> None:
    scene.rule("event_dead", channel_ids=[scene.channels["webhook"]], params={"digest_s": 0})
    scene.send_moves(1)
    scene.http.status = 503
    start = utcnow()
    scene.gw.alerts.tick(start)
    scene.gw.alerts.tick(start + timedelta(seconds=5))  # too soon to try again
    scene.http.status = 200
    scene.gw.alerts.tick(start + timedelta(seconds=61))
    scene.gw.alerts.tick(start + timedelta(seconds=200))

    first, second = scene.http.at("/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert scene.received() == {"webhook": 2, "slack": 0, "email": 0}  # the rule's one channel
    incident = scene.admin.get("/alerts/incidents").get_json()["items"][0]
    notices = scene.admin.get(f"/alerts/incidents/{incident['id']}").get_json()["notices"]
    assert [(n["state"], n["attempts"], n["error"]) for n in notices] == [("sent", 2, None)]


@pytest.mark.parametrize(
    ("replayed_after", "expected"),
    [
        (timedelta(seconds=30), 0),  # fixed within the digest time: no message at all
        (timedelta(seconds=90), 1),  # announced, then a flap shorter than the cooldown: no more
    ],
)
def test_a_short_problem_makes_no_more_messages_than_it_needs(
    scene: Scene, replayed_after: timedelta, expected: int
) -> None:
    scene.rule("event_dead", channel_ids=[scene.channels["webhook"]])
    scene.send_moves(1)
    start = utcnow()
    scene.gw.alerts.tick(start)
    scene.gw.alerts.tick(start + replayed_after - timedelta(seconds=1))
    scene.crm.down = False
    scene.admin.post("/events/replay", {"status": "dead"})
    scene.worker.drain()
    scene.gw.alerts.tick(start + replayed_after)
    scene.gw.alerts.tick(start + replayed_after + timedelta(seconds=100))  # inside the cooldown

    assert scene.received()["webhook"] == expected


def test_the_worker_loop_evaluates_the_rules(scene: Scene) -> None:
    scene.rule("event_dead", params={"digest_s": 0})
    scene.send_moves(1)
    stop = threading.Event()
    loop = threading.Thread(target=Worker(scene.gw, worker_id="looping").run, args=(stop,))
    loop.start()
    try:
        arrived = scene.http.wait_for(2)
    finally:
        stop.set()
        loop.join()

    assert sorted(r.path for r in arrived) == ["/hook", "/slack"]
