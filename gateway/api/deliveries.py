"""The delivery endpoints under /api/v1/deliveries: what came in, refused deliveries' bodies,
and re-processing them. Thin shells over ``gateway.deliveries``; the bearer token is checked for
every /api/v1 path by the admin API before routing."""

from __future__ import annotations

from functools import partial
from typing import Any

from flask import Blueprint, Flask, Response, jsonify

from gateway import deliveries, views
from gateway.api import openapi
from gateway.api.admin import PREFIX, _list, _refuse_nul_characters, _single
from gateway.api.openapi import operation
from gateway.http import gateway

bp = Blueprint("deliveries", __name__, url_prefix=f"{PREFIX}/deliveries")
bp.before_request(_refuse_nul_characters)

#: The stored body's media type when the sender gave none.
UNTYPED = "application/octet-stream"


@bp.get("")
@operation(
    "deliveries", page=views.DeliverySummary, errors="422 503", query=openapi.DELIVERY_FILTERS
)
def list_deliveries() -> Any:
    """Deliveries as received, accepted and refused, newest first."""
    filters = {k: v for k in deliveries.FILTERS if (v := _single(k))}
    read = partial(deliveries.list_deliveries, gateway(), filters)
    return _list(read, deliveries.delivery_key, _summary)


def _summary(delivery: deliveries.DeliveryInfo) -> dict[str, Any]:
    return views.DeliverySummary.of(delivery).body()


@bp.get("/<delivery_id>")
@operation("deliveries", views.DeliveryDetail, errors="404 503")
def get_delivery(delivery_id: str) -> Any:
    """One delivery: what it was answered, and its headers (credentials removed)."""
    return jsonify(views.DeliveryDetail.of(deliveries.get_delivery(gateway(), delivery_id)).body())


@bp.get("/<delivery_id>/body")
@operation(
    "deliveries",
    {
        "description": "The body, byte for byte as it was parsed, with the Content-Type it came"
        " with (`application/octet-stream` when it had none).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    errors="404 503",
)
def get_delivery_body(delivery_id: str) -> Any:
    """The stored raw body; 404 `body_not_stored` for a refusal that was never verified."""
    return body_response(delivery_id)


def body_response(delivery_id: str) -> Response:
    """The body as a download, never rendered: it is whatever a sender sent."""
    body, content_type = deliveries.get_body(gateway(), delivery_id)
    response = Response(body, content_type=content_type or UNTYPED)
    response.headers["Content-Disposition"] = f'attachment; filename="delivery-{delivery_id}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/<delivery_id>/reprocess")
@operation("deliveries", views.Receipt, errors="404 409 422 503")
def reprocess_delivery(delivery_id: str) -> Any:
    """Run a refused delivery through intake again with the group's connector profile as it is
    now; its events are stored once, however often this is called. 409 when it is accepted
    already (`already_accepted`), kept no body (`body_not_stored`) or its group is gone
    (`group_unavailable`); 422 `still_invalid` when the profile still cannot parse it."""
    receipt = deliveries.reprocess(gateway(), delivery_id)
    return jsonify(
        views.Receipt(
            accepted=receipt.accepted,
            duplicates=receipt.duplicates,
            ignored=receipt.ignored,
            delivery_id=str(receipt.delivery_id),
        ).body()
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
