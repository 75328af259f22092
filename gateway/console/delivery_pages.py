"""A group's deliveries, accepted and refused; a stored body to download; re-processing."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import flash, redirect, request, url_for

from gateway import deliveries, groups
from gateway.api.deliveries import body_response
from gateway.console import forms
from gateway.console.blueprint import bp
from gateway.errors import GatewayError
from gateway.http import gateway

#: Deliveries per page of a group's list.
PAGE = 50
OUTCOMES = [("", "Any outcome")] + [(o, o) for o in sorted(deliveries.OUTCOMES)]


@bp.get("/groups/<group_id>/deliveries")
def group_deliveries(group_id: str) -> Any:
    return _list_page(group_id)


def _list_page(group_id: str, error: GatewayError | None = None) -> Any:
    gw = gateway()
    group = groups.get_group(gw, group_id)
    outcome = request.args.get("outcome", "").strip()
    filters = {"group_id": group_id, "outcome": outcome}
    read = partial(deliveries.list_deliveries, gw, filters)
    rows: list[deliveries.DeliveryInfo] = []
    more = None
    try:
        rows, more = gw.paging(request.path).page(
            read, deliveries.delivery_key, PAGE, request.args.get("cursor")
        )
    except GatewayError as exc:
        error = error or exc
    return forms.render(
        "console/groups/deliveries.html",
        error,
        group=group,
        deliveries=rows,
        more=more,
        outcome=outcome,
        outcomes=OUTCOMES,
    )


@bp.get("/deliveries/<delivery_id>/body")
def delivery_body(delivery_id: str) -> Any:
    return body_response(delivery_id)


@bp.post("/deliveries/<delivery_id>/reprocess")
def delivery_reprocess(delivery_id: str) -> Any:
    gw = gateway()
    group_id = deliveries.get_delivery(gw, delivery_id).group_id
    try:
        receipt = deliveries.reprocess(gw, delivery_id)
    except GatewayError as error:
        return _list_page(group_id, error)
    flash(
        f"Delivery {delivery_id} re-processed: {receipt.accepted} new events,"
        f" {receipt.duplicates} duplicates, {receipt.ignored} ignored."
    )
    return redirect(url_for("console.group_deliveries", group_id=group_id), 303)
