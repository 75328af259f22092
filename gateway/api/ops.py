"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from gateway import views
from gateway.api.openapi import operation
from gateway.errors import SecretKeyMismatch, StoreUnavailable, Unauthorized
from gateway.http import gateway
from gateway.metrics import render, scrape_allowed
from gateway.migrate import schema_is_current
from gateway.storage import NOT_MIGRATED

bp = Blueprint("ops", __name__)

#: Free disk a delivery may take per byte of its body: the raw body, its events' payloads and
#: the write-ahead log's copy of both.
ROOM_PER_BODY_BYTE = 4


@bp.get("/healthz")
@operation("operations", views.Alive, public=True)
def healthz() -> Any:
    """The process is alive."""
    return jsonify(views.Alive(status="ok").body())


@bp.get("/readyz")
@operation("operations", views.Ready, errors="503", public=True)
def readyz() -> Any:
    """A delivery could be stored now: the database answers and takes writes (its file is
    still there and has room, on SQLite), its schema is the one this release needs, and the
    secret key opens the secrets stored. Otherwise 503, and the error says what is wrong."""
    gw = gateway()
    gw.db.check_writable(gw.settings.max_body_bytes * ROOM_PER_BODY_BYTE)
    if not schema_is_current(gw.db):
        raise StoreUnavailable(NOT_MIGRATED, code="schema_not_migrated")
    problem = gw.secret_key_problem()
    if problem:
        raise SecretKeyMismatch(f"{problem}: signed deliveries cannot be verified")
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
