"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, jsonify

from gateway.metrics import render
from gateway.web import gateway

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Any:
    gateway().db.ping()  # StoreUnavailable -> 503 with the error body
    return jsonify(status="ready", database="ok")


@bp.get("/metrics")
def metrics() -> Any:
    return Response(render(gateway().db), mimetype="text/plain; version=0.0.4")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
