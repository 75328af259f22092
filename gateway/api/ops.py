"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from gateway import views
from gateway.api.openapi import operation
from gateway.errors import StoreUnavailable, Unauthorized
from gateway.http import gateway
from gateway.metrics import render, scrape_allowed
from gateway.migrate import schema_is_current
from gateway.storage import NOT_MIGRATED

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@operation("operations", views.Alive, public=True)
def healthz() -> Any:
    """The process is alive."""
    return jsonify(views.Alive(status="ok").body())


@bp.get("/readyz")
@operation("operations", views.Ready, errors="503", public=True)
def readyz() -> Any:
    """The database is reachable and its schema is the one this release needs."""
    database = gateway().db
    database.ping()  # StoreUnavailable -> 503 with the error body
    if not schema_is_current(database):
        raise StoreUnavailable(NOT_MIGRATED, code="schema_not_migrated")
    return jsonify(views.Ready(status="ready", database="ok").body())


@bp.get("/metrics")
@operation(
    "operations",
    {
        "description": "The Prometheus text exposition format; while the database cannot be"
        " read, the counters and `gateway_database_up 0` in place of the gauges.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    more={
        401: {
            "description": "`GATEWAY_METRICS_TOKEN` is set and the scrape did not send it as"
            " `Authorization: Bearer <token>`.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    },
    public=True,
)
def metrics() -> Any:
    """Prometheus metrics.

    Taken without the admin token; with `GATEWAY_METRICS_TOKEN` set, only with that one.
    """
    gw = gateway()
    if not scrape_allowed(request.headers.get("Authorization"), gw.settings.metrics_token):
        raise Unauthorized(
            "GATEWAY_METRICS_TOKEN is set: scrape with 'Authorization: Bearer <metrics token>'"
        )
    return Response(render(gw.db, gw.status_counts), mimetype="text/plain; version=0.0.4")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
