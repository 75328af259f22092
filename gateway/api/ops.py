"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, jsonify

from gateway.errors import StoreUnavailable
from gateway.http import gateway
from gateway.metrics import render
from gateway.migrate import schema_is_current
from gateway.storage import NOT_MIGRATED

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Any:
    """Ready when the database answers and its schema is the one this release needs."""
    database = gateway().db
    database.ping()  # StoreUnavailable -> 503 with the error body
    if not schema_is_current(database):
        raise StoreUnavailable(NOT_MIGRATED, code="schema_not_migrated")
    return jsonify(status="ready", database="ok")


@bp.get("/metrics")
def metrics() -> Any:
    gw = gateway()
    return Response(render(gw.db, gw.status_counts), mimetype="text/plain; version=0.0.4")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
