"""Senders for crash tests: threads posting unique signed deliveries, every answer written down.

Each delivery is a Xemelgo ``inventory.cycle_count`` with its own count id, so each is one event
with its own dedupe identity. A sender that gets no answer or an error backs off a moment and
goes on with the next delivery; the test re-sends the unanswered ones itself afterwards, as a
provider would retry them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import select

from gateway.connectors import shipped_profiles
from gateway.intake import split_delivery
from gateway.models import Delivery, Event, EventStatus, Record
from gateway.verify import sign

SECRET = "crash-test-secret-0123456789abcdef"
TOPIC = "inventory.cycle_count"
#: One record per event in the local store, so that processing leaves a trace per delivery.
MAPPING = {
    "name": "cycle-counts",
    "upserts": [
        {
            "key": "count",
            "object": "Cycle_Count__c",
            "external_id_field": "Cycle_Count_Id__c",
            "external_id": "payload.data.cycleCountId",
            "fields": {"Status__c": "payload.data.status", "Found__c": "payload.data.found"},
        }
    ],
}
#: How long a sender waits after a failure before its next delivery (senders back off).
BACKOFF_S = 0.05
_PROFILE = shipped_profiles()["xemelgo"]


def body(count_id: str) -> bytes:
    """A unique delivery carrying the cycle count ``count_id``."""
    event = {
        "id": f"attempt-{count_id}",
        "eventTimestamp": int(time.time() * 1000),
        "topic": TOPIC,
        "data": {"cycleCountId": count_id, "status": "completed", "found": 117},
    }
    return json.dumps(event).encode()


def count_id(delivery: bytes) -> str:
    return str(json.loads(delivery)["data"]["cycleCountId"])


def dedupe_key(delivery: bytes) -> str:
    """The identity the gateway dedupes this delivery's event by, computed as it does."""
    (event,) = split_delivery(_PROFILE, {}, delivery, "application/json")
    return event.dedupe_key


def post(session: requests.Session, url: str, delivery: bytes, timeout: float) -> Any:
    headers = {"Content-Type": "application/json", **sign(_PROFILE.verification, SECRET, delivery)}
    return session.post(url, data=delivery, headers=headers, timeout=timeout)


def create_group(api: Any, *, routed: bool = False) -> dict[str, Any]:
    """A Xemelgo group for the senders; ``routed`` also maps each count into the local store."""
    group: dict[str, Any] = api.post(
        "/groups",
        json={
            "name": "crash",
            "connector": "xemelgo",
            "function": "webhooks",
            "secret": SECRET,
            "events": [TOPIC],
        },
    ).json()
    if routed:
        assert api.put(f"/mappings/{MAPPING['name']}", json=MAPPING).status_code in (200, 201)
        clone = api.post(
            f"/webhooks/{group['template_webhook_id']}/clone",
            json={"label": "Counts", "events": [TOPIC], "mapping": MAPPING["name"]},
        )
        assert clone.status_code == 201, clone.text
    return group


@dataclass
class Sent:
    """One delivery and what became of it; ``status`` stays None when no answer came."""

    body: bytes
    status: int | None = None
    answer: Any = None
    retry_after: str | None = None
    error: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status == 200


class Senders:
    """Threads posting deliveries back to back, each bounded in count and time."""

    def __init__(
        self,
        url: str,
        *,
        threads: int = 8,
        per_thread: int = 3000,
        limit_s: float = 45.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.threads = threads
        self._per_thread = per_thread
        self._timeout_s = timeout_s
        self._deadline = time.monotonic() + limit_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sent: list[Sent] = []
        self._statuses: Counter[int | None] = Counter()
        self._threads = [
            threading.Thread(target=self._send, args=(n,), name=f"sender-{n}", daemon=True)
            for n in range(threads)
        ]

    def __enter__(self) -> Senders:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, failure: object, *_: object) -> None:
        self.stop(check=failure is None)  # a failure inside the block tells more

    def stop(self, *, check: bool = True) -> None:
        """Stop sending and wait for every answer still on its way."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self._timeout_s + 5)
        assert not check or not any(t.is_alive() for t in self._threads), "a sender hangs"

    def answered(self, status: int | None) -> int:
        """How many deliveries got ``status`` so far (None: no answer at all)."""
        with self._lock:
            return self._statuses[status]

    def wait_until(self, what: str, condition: Callable[[], bool], timeout: float = 20) -> None:
        """Poll ``condition`` until it holds; fail if it does not in time or sending ended."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            assert any(t.is_alive() for t in self._threads), f"senders ended before {what}"
            time.sleep(0.02)

    def wait_for_acks(self, more: int, timeout: float = 20) -> None:
        target = self.answered(200) + more
        self.wait_until(
            f"{more} more deliveries answered 200", lambda: self.answered(200) >= target, timeout
        )

    @property
    def sent(self) -> list[Sent]:
        with self._lock:
            return list(self._sent)

    def _send(self, index: int) -> None:
        session = requests.Session()
        for n in range(self._per_thread):
            if self._stop.is_set() or time.monotonic() > self._deadline:
                break
            sent = Sent(body(f"cc-{index}-{n}-{time.monotonic_ns()}"))
            with self._lock:
                self._sent.append(sent)
            try:
                response = post(session, self.url, sent.body, self._timeout_s)
            except requests.RequestException as exc:
                sent.error = f"{type(exc).__name__}: {exc}"
                session.close()
                session = requests.Session()
            else:
                sent.status = response.status_code
                sent.answer = _json(response)
                sent.retry_after = response.headers.get("Retry-After")
            with self._lock:
                self._statuses[sent.status] += 1
            if sent.status != 200:
                self._stop.wait(BACKOFF_S)
        session.close()


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def resend(url: str, unanswered: Iterable[Sent], stored_before: set[str] | None) -> int:
    """Retry what did not get a 200, as a provider would: each now answered 200, none doubled.

    A delivery stored before its answer was lost comes back as a duplicate; one that was not
    stored is accepted now. Returns how many came back as duplicates. Without ``stored_before``
    (when a store may still land meanwhile) each must only be one or the other.
    """
    duplicates = 0
    with requests.Session() as session:
        for sent in unanswered:
            response = post(session, url, sent.body, timeout=30)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["accepted"] + answer["duplicates"] == 1, answer
            if stored_before is not None:
                was_stored = dedupe_key(sent.body) in stored_before
                assert answer["duplicates"] == was_stored, (sent, answer)
            duplicates += answer["duplicates"]
    return duplicates


def stored_keys(gw: Any, group_id: str) -> set[str]:
    """Dedupe identities of the group's original events (duplicates left out)."""
    query = select(Event.dedupe_key).where(
        Event.group_id == group_id, Event.status != EventStatus.DUPLICATE
    )
    with gw.db.read_session() as session:
        return set(session.scalars(query))


def check_stored_once(gw: Any, group_id: str, sent: list[Sent], duplicates: int | None) -> None:
    """Every acknowledged delivery is stored under the id it answered with, and every delivery
    sent is exactly one original event however often it came; ``duplicates`` are the retries of
    deliveries stored before, each a delivery of its own with a duplicate event.
    """
    with gw.db.read_session() as session:
        delivery_ids = set(
            session.scalars(select(Delivery.id).where(Delivery.group_id == group_id))
        )
        events = session.execute(
            select(Event.dedupe_key, Event.status, Event.delivery_id).where(
                Event.group_id == group_id
            )
        ).all()
    originals = Counter(key for key, status, _ in events if status != EventStatus.DUPLICATE)
    original_delivery = {
        key: delivery for key, status, delivery in events if status != EventStatus.DUPLICATE
    }
    acknowledged = [s for s in sent if s.acknowledged]
    for s in acknowledged:
        assert s.answer["accepted"] == 1, s.answer
        assert int(s.answer["delivery_id"]) in delivery_ids, f"acknowledged, not stored: {s}"
        assert original_delivery.get(dedupe_key(s.body)) == int(s.answer["delivery_id"]), s
    assert originals == Counter({dedupe_key(s.body): 1 for s in sent}), "stored twice or lost"
    if duplicates is not None:
        assert len(events) - sum(originals.values()) == duplicates
    assert len(delivery_ids) == len(events)


def records(gw: Any) -> set[str]:
    """External ids of the cycle counts in the local store."""
    query = select(Record.external_id).where(Record.object == "Cycle_Count__c")
    with gw.db.read_session() as session:
        return set(session.scalars(query))
