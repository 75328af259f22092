"""The event log: filter, look at one event and what it produced, replay one or many."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from gateway import event_log
from gateway.api.admin import EVENT_FILTERS
from gateway.console import forms, queries
from gateway.console.blueprint import bp
from gateway.errors import GatewayError
from gateway.history import event_with_sent_fields
from gateway.http import gateway
from gateway.models import EventStatus

#: Events per page of the log.
PAGE = 50
#: The outcomes of an upsert that left a record in the target.
WRITTEN = frozenset({"created", "updated"})


def _filters(source: Any) -> dict[str, str]:
    """The filters of a form; the statuses ticked (or given comma-separated) as one text, so
    that links and the replay form carry them on as the API takes them."""
    given = {k: ",".join(v.strip() for v in source.getlist(k) if v.strip()) for k in EVENT_FILTERS}
    return {k: v for k, v in given.items() if v}


@bp.get("/events")
def event_list() -> Any:
    gw = gateway()
    filters = _filters(request.args)
    read = partial(event_log.list_events, gw, filters)
    try:
        rows, more = gw.paging(request.path).page(
            read, event_log.event_key, PAGE, request.args.get("cursor")
        )
    except GatewayError as error:
        return _list_page(filters, error)
    if request.args.get("fragment"):
        return render_template(
            "console/events/_table.html",
            events=rows,
            more=more,
            filters=filters,
            groups=queries.group_names(gw),
        )
    return _list_page(filters, rows=rows, more=more)


def _list_page(
    filters: dict[str, str],
    error: GatewayError | None = None,
    rows: list[Any] | None = None,
    more: str | None = None,
) -> Any:
    return forms.render(
        "console/events/list.html",
        error,
        events=rows or [],
        more=more,
        filters=filters,
        groups=queries.group_names(gateway()),
        statuses=[s.value for s in EventStatus],
    )


@bp.get("/events/<event_id>")
def event_detail(event_id: str) -> Any:
    return _detail_page(event_id)


def _detail_page(event_id: str, error: GatewayError | None = None) -> Any:
    gw = gateway()
    detail = event_with_sent_fields(gw, event_id).body()
    return forms.render(
        "console/events/detail.html",
        error,
        event=detail,
        group_name=queries.group_names(gw).get(detail["group_id"]),
        labels=queries.webhook_labels(gw, (h["webhook_id"] for h in detail["history"])),
        written=WRITTEN,
    )


@bp.post("/events/<event_id>/replay")
def event_replay(event_id: str) -> Any:
    try:
        event_log.replay(gateway(), event_id)
    except GatewayError as error:
        return _detail_page(event_id, error)
    flash("Event queued again; a worker will process it shortly.")
    return redirect(url_for("console.event_detail", event_id=event_id), 303)


@bp.post("/events/replay")
def event_replay_matching() -> Any:
    """Queue every matching event again, then follow them until the workers are done."""
    gw = gateway()
    filters = _filters(request.form)
    last_id, at = queries.newest_event_id(gw), datetime.now(UTC)
    try:
        every_event = request.form.get("all") == "1"
        count = event_log.replay_matching(gw, filters, every_event=every_event).replayed
    except GatewayError as error:
        return _list_page(filters, error)
    # The progress follows the same events whatever status they reach, so drop the status.
    kept: dict[str, Any] = {k: v for k, v in filters.items() if k != "status"}
    return redirect(
        url_for("console.replay_progress", **kept, last_id=last_id, at=at.isoformat(), count=count),
        303,
    )


@bp.get("/events/replay")
def replay_progress() -> Any:
    gw = gateway()
    filters = _filters(request.args)
    batch = queries.ReplayBatch(
        filters=filters,
        last_id=int(last_id) if (last_id := request.args.get("last_id", "")).isdigit() else 0,
        at=event_log.parse_time(request.args.get("at", ""), "at"),
    )
    counts = queries.replay_progress(gw, batch)
    waiting = sum(counts.get(s, 0) for s in queries.IN_FLIGHT)
    context: dict[str, Any] = {
        "counts": counts,
        "waiting": waiting,
        "total": sum(counts.values()),
        "count": request.args.get("count", ""),
        "filters": filters,
    }
    if request.args.get("fragment"):
        return render_template("console/events/_progress.html", **context)
    return forms.render("console/events/progress.html", **context)
