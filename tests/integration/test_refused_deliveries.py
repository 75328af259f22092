"""Refused deliveries: every 400 and 401 to a known group leaves a row, a verified one keeps its
body and can be re-processed once the profile can parse it, and unverified ones are bounded."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gateway import deliveries, retention
from gateway.config import Settings
from gateway.deliveries import Refusal, RefusalLog
from gateway.errors import Conflict, StoreUnavailable
from gateway.services import Gateway
from tests.conftest import Admin
from tests.payloads import XILNEX_SALE

#: Unverified refusals recorded per group and minute in these tests.
BOUND = 3

#: Signed, but not JSON (nor UTF-8): kept byte for byte.
NOT_JSON = b"\xff\xfeSalesNo=S-1001&total=12.50\x00\r\n"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, refused_per_minute=BOUND)


@pytest.fixture
def xilnex(xilnex_group: dict[str, Any]) -> dict[str, Any]:
    return xilnex_group


def refused(admin: Admin, group: dict[str, Any]) -> list[dict[str, Any]]:
    answer = admin.get("/deliveries", query_string={"group_id": group["id"], "outcome": "refused"})
    assert answer.status_code == 200, answer.get_json()
    items: list[dict[str, Any]] = answer.get_json()["items"]
    return items


def unrecorded(group: dict[str, Any]) -> float:
    labels = {"group": group["id"]}
    return REGISTRY.get_sample_value("gateway_refusals_unrecorded_total", labels) or 0.0


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (XILNEX_SALE, "application/json", "invalid_payload"),
        (NOT_JSON, "application/json", "invalid_payload"),
        (NOT_JSON, None, "invalid_payload"),
    ],
    ids=["eventName", "not-json", "not-json-untyped"],
)
def test_a_verified_delivery_the_profile_cannot_parse_is_answered_400_and_kept(
    admin: Admin,
    deliver: Callable[..., Any],
    xilnex: dict[str, Any],
    body: bytes,
    content_type: str | None,
    code: str,
) -> None:
    answer = deliver(xilnex, body, {"X-Trace": "t-2"}, content_type=content_type)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == code

    (row,) = refused(admin, xilnex)
    assert row["status"] == 400
    assert row["error_code"] == code
    assert row["message"] == answer.get_json()["error"]["message"]
    assert row["verified"] is True
    assert row["body_stored"] is True
    assert row["size"] == len(body)
    assert row["sha256"] == hashlib.sha256(body).hexdigest()
    stored = admin.get(f"/deliveries/{row['id']}/body")
    assert stored.status_code == 200
    assert stored.data == body
    assert stored.mimetype == (content_type or "application/octet-stream")
    detail = admin.get(f"/deliveries/{row['id']}").get_json()
    assert detail["headers"]["x-trace"] == "t-2"
    # Xilnex may send its secret itself in this header: a credential, never kept.
    assert "xilnex-webhook-signature" not in detail["headers"]


def test_a_group_without_verification_keeps_what_it_cannot_parse(
    admin: Admin, deliver: Callable[..., Any], group_factory: Callable[..., dict[str, Any]]
) -> None:
    unverified = group_factory(
        connector="xilnex", function="event-hub", events=["Complete Sales"], secret="-"
    )
    assert deliver(unverified, XILNEX_SALE, signed=False).status_code == 400
    (row,) = refused(admin, unverified)
    assert (row["verified"], row["body_stored"]) == (True, True)
    assert admin.get(f"/deliveries/{row['id']}/body").data == XILNEX_SALE


@pytest.fixture
def kept_sale(admin: Admin, deliver: Callable[..., Any], xilnex: dict[str, Any]) -> str:
    """The id of a refused, kept Xilnex sale."""
    assert deliver(xilnex, XILNEX_SALE).status_code == 400
    (row,) = refused(admin, xilnex)
    return str(row["id"])


def test_reprocessing_before_the_profile_is_fixed_says_why_it_still_fails(
    admin: Admin, kept_sale: str
) -> None:
    answer = admin.post(f"/deliveries/{kept_sale}/reprocess")
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["code"] == "still_invalid"
    assert "EventName" in error["message"]
    assert admin.get(f"/deliveries/{kept_sale}").get_json()["outcome"] == "refused"


def test_reprocessing_gives_the_events_once_and_accepts_the_delivery(
    admin: Admin, xilnex: dict[str, Any], kept_sale: str, fixed_xilnex_profile: None
) -> None:
    answer = admin.post(f"/deliveries/{kept_sale}/reprocess")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {
        "accepted": 1,
        "duplicates": 0,
        "ignored": 0,
        "delivery_id": kept_sale,
    }
    again = admin.post(f"/deliveries/{kept_sale}/reprocess")
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "already_accepted"

    events = admin.get("/events", query_string={"group_id": xilnex["id"]}).get_json()["items"]
    assert [(e["type"], e["delivery_id"], e["status"]) for e in events] == [
        ("Complete Sales", kept_sale, "pending")
    ]
    delivery = admin.get(f"/deliveries/{kept_sale}").get_json()
    assert delivery["outcome"] == "accepted"
    assert delivery["status"] == 400  # what the sender was answered stays on record
    assert delivery["reprocessed_at"] is not None
    assert refused(admin, xilnex) == []


def test_concurrent_reprocessing_stores_the_events_exactly_once(
    gw: Gateway, admin: Admin, xilnex: dict[str, Any], kept_sale: str, fixed_xilnex_profile: None
) -> None:
    callers = 4
    start = threading.Barrier(callers)
    outcomes: list[Any] = []

    def reprocess() -> None:
        start.wait()
        try:
            outcomes.append(deliveries.reprocess(gw, kept_sale))
        except Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=reprocess) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    receipts = [o for o in outcomes if not isinstance(o, str)]
    assert len(receipts) == 1 and receipts[0].accepted == 1
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["already_accepted"] * 3
    events = admin.get("/events", query_string={"group_id": xilnex["id"]}).get_json()["items"]
    assert len(events) == 1


def test_a_wrong_signature_leaves_a_row_without_body_or_credentials(
    admin: Admin, deliver: Callable[..., Any], xilnex: dict[str, Any]
) -> None:
    sent = {"Authorization": "Bearer fake-credential", "X-Api-Key": "fake-key", "X-Trace": "t-1"}
    answer = deliver(xilnex, XILNEX_SALE, sent, secret="not-the-groups-secret")
    assert answer.status_code == 401

    (row,) = refused(admin, xilnex)
    assert (row["status"], row["error_code"]) == (401, answer.get_json()["error"]["code"])
    assert row["verified"] is False
    assert row["body_stored"] is False
    assert row["size"] == len(XILNEX_SALE)
    assert row["sha256"] == hashlib.sha256(XILNEX_SALE).hexdigest()
    headers = admin.get(f"/deliveries/{row['id']}").get_json()["headers"]
    assert headers["x-trace"] == "t-1"
    assert "authorization" not in headers and "x-api-key" not in headers

    body = admin.get(f"/deliveries/{row['id']}/body")
    assert (body.status_code, body.get_json()["error"]["code"]) == (404, "body_not_stored")
    again = admin.post(f"/deliveries/{row['id']}/reprocess")
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "body_not_stored")


@pytest.mark.parametrize(
    ("secret", "status"),
    [(None, 503), ("not-the-groups-secret", 401)],
    ids=["verified-is-retried", "unverified-stands"],
)
def test_a_refusal_the_database_cannot_take(
    deliver: Callable[..., Any],
    xilnex: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    secret: str | None,
    status: int,
) -> None:
    """A verified body that cannot be kept is answered 503, so that its sender sends it again;
    a refusal nobody vouches for is answered as it was, trace or no trace."""

    def unavailable(log: RefusalLog, refusal: Refusal) -> None:
        raise StoreUnavailable()

    monkeypatch.setattr(RefusalLog, "record", unavailable)
    counted_before = unrecorded(xilnex)
    assert deliver(xilnex, XILNEX_SALE, secret=secret).status_code == status
    assert unrecorded(xilnex) - counted_before == (1 if status == 401 else 0)


def test_an_unverified_refusal_keeps_a_bounded_part_of_its_headers(
    admin: Admin, deliver: Callable[..., Any], xilnex: dict[str, Any]
) -> None:
    padding = {f"X-Padding-{n}": "p" * 1000 for n in range(10)}
    assert deliver(xilnex, XILNEX_SALE, padding, secret="wrong").status_code == 401
    (row,) = refused(admin, xilnex)
    headers = admin.get(f"/deliveries/{row['id']}").get_json()["headers"]
    kept = sum(len(name) + len(value) for name, value in headers.items())
    assert 1000 < kept <= 2048


def test_unknown_tokens_leave_no_row(admin: Admin, client: Any) -> None:
    assert client.post("/hooks/" + "x" * 43, data=b"{}").status_code == 404
    assert admin.get("/deliveries").get_json()["items"] == []


def test_unverified_refusals_are_bounded_per_group_and_minute_and_the_rest_counted(
    admin: Admin, deliver: Callable[..., Any], xilnex: dict[str, Any]
) -> None:
    sent = 2 * BOUND + 2  # more than two minutes' worth, should the sends straddle a minute
    counted_before = unrecorded(xilnex)
    for _ in range(sent):
        assert deliver(xilnex, XILNEX_SALE, secret="wrong").status_code == 401

    rows = refused(admin, xilnex)
    per_minute: dict[str, int] = {}
    for row in rows:
        per_minute[row["received_at"][:16]] = per_minute.get(row["received_at"][:16], 0) + 1
    assert max(per_minute.values()) == BOUND
    assert len(rows) + unrecorded(xilnex) - counted_before == sent


def test_verified_refusals_are_not_bounded(
    admin: Admin, deliver: Callable[..., Any], xilnex: dict[str, Any]
) -> None:
    for _ in range(BOUND + 2):
        assert deliver(xilnex, XILNEX_SALE).status_code == 400
    assert len(refused(admin, xilnex)) == BOUND + 2


def test_the_bound_holds_across_processes(gw: Gateway, xilnex: dict[str, Any]) -> None:
    """Each process remembers only its own refusals: the database's count is the bound."""
    logs = [RefusalLog(gw.db, BOUND) for _ in range(2)]
    moment = datetime.now(UTC).replace(second=30)
    recorded = [logs[i % 2].record(_unverified(xilnex, moment)) for i in range(2 * BOUND)]
    assert sum(r is not None for r in recorded) == BOUND
    assert recorded[BOUND:] == [None] * BOUND


def _unverified(group: dict[str, Any], moment: datetime) -> Refusal:
    return Refusal(
        group_id=group["id"],
        received_at=moment,
        method="POST",
        remote_addr="127.0.0.1",
        content_type="application/json",
        headers={},
        status=401,
        error_code="signature_invalid",
        message="the signature does not match",
        verified=False,
        body=b"{}",
    )


def test_accepted_deliveries_are_listed_with_their_size_and_digest(
    admin: Admin, deliver: Callable[..., Any], xilnex: dict[str, Any]
) -> None:
    sale = XILNEX_SALE.replace(b"eventName", b"EventName")
    receipt = deliver(xilnex, sale).get_json()
    deliver(xilnex, XILNEX_SALE)

    everything = admin.get("/deliveries").get_json()["items"]
    assert [d["outcome"] for d in everything] == ["refused", "accepted"]  # newest first
    accepted = admin.get("/deliveries", query_string={"outcome": "accepted"}).get_json()["items"]
    (row,) = accepted
    assert row["id"] == receipt["delivery_id"]
    assert (row["status"], row["error_code"], row["body_stored"]) == (200, None, True)
    assert row["size"] == len(sale)
    assert row["sha256"] == hashlib.sha256(sale).hexdigest()
    assert admin.get(f"/deliveries/{row['id']}/body").data == sale
    only_400 = admin.get("/deliveries", query_string={"status": "400"}).get_json()["items"]
    assert [d["status"] for d in only_400] == [400]


@pytest.mark.parametrize(
    ("query", "code"),
    [({"outcome": "lost"}, 422), ({"status": "4xx"}, 422), ({"since": "yesterday"}, 422)],
)
def test_bad_filters_are_refused(admin: Admin, query: dict[str, str], code: int) -> None:
    answer = admin.get("/deliveries", query_string=query)
    assert answer.status_code == code
    assert answer.get_json()["error"]["details"]


def test_the_list_pages_newest_first(
    admin: Admin, deliver: Callable[..., Any], xilnex: dict[str, Any]
) -> None:
    for _ in range(3):
        deliver(xilnex, XILNEX_SALE)
    first = admin.get("/deliveries", query_string={"limit": "2"}).get_json()
    second = admin.get(
        "/deliveries", query_string={"limit": "2", "cursor": first["next_cursor"]}
    ).get_json()
    ids = [int(d["id"]) for d in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3
    assert second["next_cursor"] is None


@pytest.mark.parametrize("path", ["/deliveries/999", "/deliveries/abc", "/deliveries/999/body"])
def test_unknown_deliveries_are_404(admin: Admin, path: str) -> None:
    assert admin.get(path).status_code == 404


def test_retention_purges_old_refusals(
    gw: Gateway, admin: Admin, deliver: Callable[..., Any], xilnex: dict[str, Any]
) -> None:
    for _ in range(2):
        deliver(xilnex, XILNEX_SALE)
    purged = retention.purge(gw, timedelta(0))
    assert purged.deliveries == 1  # the newest delivery is always kept
    assert len(refused(admin, xilnex)) == 1
