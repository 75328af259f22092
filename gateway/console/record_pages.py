"""The local record store: its objects, a searchable list of one object's records, and each
record with the events that wrote it."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import flash, redirect, request, url_for

from gateway import records, views
from gateway.console import forms
from gateway.console.blueprint import bp
from gateway.errors import GatewayError
from gateway.http import gateway

#: Records per page of a list.
PAGE = 50
#: The upserts a record's page lists, newest first.
HISTORY = 50


@bp.get("/records")
def record_objects() -> Any:
    return forms.render("console/records/objects.html", objects=records.list_objects(gateway()))


@bp.get("/records/<obj>")
def record_list(obj: str) -> Any:
    gw = gateway()
    filters = {k: v for k in records.RECORD_FILTERS if (v := request.args.get(k, "").strip())}
    read = partial(records.list_records, gw, obj, filters)
    rows: list[Any] = []
    more = None
    error = None
    try:
        rows, more = gw.paging(request.path).page(
            read, records.record_key, PAGE, request.args.get("cursor")
        )
    except GatewayError as failed:
        error = failed
    return forms.render(
        "console/records/list.html",
        error,
        obj=obj,
        filters=filters,
        records=[views.Record.of(row).body() for row in rows],
        more=more,
    )


@bp.get("/records/<obj>/<path:external_id>")
def record_detail(obj: str, external_id: str) -> Any:
    gw = gateway()
    record = views.Record.of(records.get_record(gw, obj, external_id)).body()
    return forms.render(
        "console/records/detail.html",
        record=record,
        history=records.record_history(gw, obj, external_id, HISTORY),
        shown=HISTORY,
    )


@bp.post("/records/<obj>/<path:external_id>/delete")
def record_delete(obj: str, external_id: str) -> Any:
    records.delete_record(gateway(), obj, external_id)
    flash(f"{obj} record {external_id} deleted.")
    return redirect(url_for("console.record_list", obj=obj), 303)
