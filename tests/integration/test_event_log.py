"""The event log at size: every filter pages the same events newest first, through an index.

A page is read by walking an index in id order, or, for a time window far below the newest
events, by reading the window through the ``received_at`` index; ids follow times only
closely, so the log here holds events stored out of the order they came in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert

from gateway.models import Event, EventStatus

START = datetime(2026, 10, 1, tzinfo=UTC)
GROUPS = ("g-busy", "g-quiet")
#: One rare type among common ones, one rare status among common ones.
TYPES = ("order.created", "order.paid", "refund.disputed")
#: Enough for PostgreSQL to plan as it would for a large log, rather than read the whole table.
EVENTS = 5000
#: Received early, stored after every other event.
LATE = (30, 2000, 4040)


def _status(n: int) -> str:
    if n % 97 == 0:
        return EventStatus.DEAD
    return EventStatus.FAILED if n % 13 == 0 else EventStatus.DELIVERED


def _row(n: int, received_at: datetime, key: str = "key") -> dict[str, Any]:
    status = _status(n)
    return {
        "group_id": GROUPS[n % 5 == 0],
        "delivery_id": n,
        "type": TYPES[2] if n % 101 == 0 else TYPES[n % 2],
        "status": status,
        "dedupe_key": f"{key}-{n}",
        "payload": {"n": n},
        "received_at": received_at,
        "attempts": 1,
        "processed_at": received_at if status == EventStatus.DELIVERED else None,
    }


@pytest.fixture
def log(gw: Any) -> list[dict[str, Any]]:
    """Events an hour apart, and a few stored late: received early in the log, with the newest
    ids. The list of them, newest first, as the API shows them."""
    rows = [_row(n, START + timedelta(hours=n)) for n in range(EVENTS)]
    rows += [_row(n, START + timedelta(hours=n, minutes=30), "late") for n in LATE]
    with gw.db.session() as session:
        session.execute(insert(Event), rows)
    shown = [
        {"id": i, "group_id": r["group_id"], "type": r["type"], "status": r["status"], "at": r}
        for i, r in enumerate(rows, start=1)
    ]
    return shown[::-1]


def _at(hours: int) -> str:
    return (START + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


#: Filters, each alone and combined; windows near the newest events and far below them.
FILTERS = [
    {"group_id": "g-quiet"},
    {"type": "refund.disputed"},
    {"type": "no.such.type"},
    {"status": "delivered"},
    {"status": "dead"},
    {"status": "failed,dead"},
    {"since": _at(4990)},
    {"until": _at(500)},  # far below the newest: read through the window
    {"until": _at(4990)},  # just below the newest: a walk
    {"since": _at(1990), "until": _at(2010)},  # holds an event stored late
    {"since": _at(0), "until": _at(5000)},
    {"since": _at(7000)},
    {"group_id": "g-quiet", "status": "failed"},
    {"group_id": "g-busy", "type": "order.paid", "until": _at(100)},
    {"status": "delivered", "since": _at(4000), "until": _at(4100)},
    {"type": "order.created", "status": "failed", "since": _at(1000), "until": _at(3000)},
]


def _matches(item: dict[str, Any], filters: dict[str, str]) -> bool:
    received = item["at"]["received_at"]
    return (
        item["group_id"] == filters.get("group_id", item["group_id"])
        and item["type"] == filters.get("type", item["type"])
        and item["status"] in filters.get("status", item["status"]).split(",")
        and received >= datetime.fromisoformat(filters.get("since", _at(-1)))
        and received < datetime.fromisoformat(filters.get("until", _at(10_000)))
    )


def _pages(admin: Any, filters: dict[str, str], limit: int) -> list[list[int]]:
    query: dict[str, Any] = {**filters, "limit": limit}
    pages = []
    while True:
        body = admin.get("/events", query_string=query).get_json()
        pages.append([int(item["id"]) for item in body["items"]])
        if body["next_cursor"] is None:
            return pages
        query["cursor"] = body["next_cursor"]


@pytest.mark.parametrize("filters", FILTERS, ids=json.dumps)
def test_every_filter_pages_its_events_newest_first(
    admin: Any, log: list[dict[str, Any]], filters: dict[str, str]
) -> None:
    expected = [item["id"] for item in log if _matches(item, filters)]

    pages = _pages(admin, filters, limit=97)

    assert [i for page in pages for i in page] == expected
    assert all(len(page) == 97 for page in pages[:-1])
    if filters == {"since": _at(1990), "until": _at(2010)}:
        assert len(log) - 1 in expected  # the event stored late, with the second newest id


@pytest.fixture
def statements(gw: Any) -> Iterator[list[tuple[str, Any]]]:
    """The statements the gateway runs meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    engines = {gw.db.engine, gw.db.read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", record)


def _plan(gw: Any, statement: str, parameters: Any) -> str:
    """The plan of a statement, as one text naming the indexes it reads and whether it sorts."""
    with gw.db.read_engine.connect() as conn:
        if gw.db.is_sqlite:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(row[-1] for row in rows)
        conn.exec_driver_sql("ANALYZE events")
        rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters)
        return "\n".join(row[0] for row in rows)


def _reads(plan: str, index: str) -> bool:
    return any(f"{word} {index}" in plan for word in ("INDEX", "using", "on"))


def _walks_the_table(plan: str) -> bool:
    return "SCAN events\n" in f"{plan}\n" or "Seq Scan on events" in plan


def _sorts(plan: str) -> bool:
    return "TEMP B-TREE" in plan or "Sort" in plan


#: Pages of the log and the index each is read through; False: the window's, then sorted.
READ_THROUGH = [
    ({"type": "refund.disputed"}, "ix_events_type", True),
    ({"type": "no.such.type"}, "ix_events_type", True),
    ({"status": "dead"}, "ix_events_status", True),
    ({"since": _at(100), "until": _at(300)}, "ix_events_received_at", False),
    ({"status": "delivered", "until": _at(200)}, "ix_events_received_at", False),
]


@pytest.mark.parametrize(("filters", "index", "walk"), READ_THROUGH, ids=str)
def test_a_page_of_the_log_reads_the_index_of_its_filter(
    gw: Any,
    admin: Any,
    log: list[dict[str, Any]],
    statements: list[tuple[str, Any]],
    filters: dict[str, str],
    index: str,
    walk: bool,
) -> None:
    assert admin.get("/events", query_string=filters).status_code == 200
    ids, _rows = statements[-2:]  # the page's ids, then their rows

    plan = _plan(gw, *ids)

    assert _reads(plan, index), plan
    assert not _walks_the_table(plan), plan
    if gw.db.is_sqlite:  # PostgreSQL may sort the few events of a rare filter, as it should
        assert _sorts(plan) != walk, plan


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda admin: admin.get("/events?status=delivered"), id="delivered"),
        pytest.param(lambda admin: admin.client.get("/metrics"), id="metrics"),
    ],
)
def test_no_read_of_the_log_walks_the_whole_table(
    gw: Any,
    admin: Any,
    log: list[dict[str, Any]],
    statements: list[tuple[str, Any]],
    read: Callable[[Any], Any],
) -> None:
    read(admin)  # the first metrics scrape counts the settled events; the next one does not
    statements.clear()

    assert read(admin).status_code == 200

    reads = [(sql, values) for sql, values in statements if sql.lstrip().startswith("SELECT")]
    for statement, parameters in reads:
        if "WHERE events.id IN" in statement:
            continue  # the rows of a page, by the ids it holds
        plan = _plan(gw, statement, parameters)
        assert not _walks_the_table(plan), (statement, plan)
        assert not (gw.db.is_sqlite and _sorts(plan)), (statement, plan)
