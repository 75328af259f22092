"""The Flask application: thin shells over the services, and the contract's error bodies."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from gateway.config import Settings
from gateway.core import Gateway
from gateway.errors import BadRequest, GatewayError, StoreUnavailable
from gateway.logs import configure as configure_logging

log = logging.getLogger(__name__)


def create_app(
    overrides: Mapping[str, Any] | None = None, *, gateway: Gateway | None = None
) -> Flask:
    """The app factory: defaults, then the environment, then ``overrides`` (tests)."""
    app = Flask(__name__, instance_relative_config=True)
    if gateway is None:
        settings = Settings.from_env()
        if overrides:
            settings = settings.with_overrides(overrides)
        gateway = Gateway(settings)
    app.extensions["gateway"] = gateway
    configure_logging(gateway.settings.log_format)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    _register_errors(app)

    from gateway import console
    from gateway.api import admin, ops, receive

    receive.init_app(app)
    admin.init_app(app)
    ops.init_app(app)
    console.init_app(app)
    return app


def gateway() -> Gateway:
    """The Gateway of the app handling the current request."""
    return current_app.extensions["gateway"]  # type: ignore[no-any-return]


def error_response(error: GatewayError) -> Any:
    response = jsonify(error.body())
    response.status_code = error.status
    if isinstance(error, StoreUnavailable):
        response.headers["Retry-After"] = "5"
    return response


def _register_errors(app: Flask) -> None:
    @app.errorhandler(GatewayError)
    def _domain(error: GatewayError) -> Any:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        code = (error.name or "error").lower().replace(" ", "_").replace("'", "")
        body = GatewayError(error.description or error.name, code=code)
        body.status = error.code or 500
        return error_response(body)

    @app.errorhandler(RecursionError)
    def _too_deep(error: RecursionError) -> Any:
        # Only input nests deeply enough: a JSON body, or a JMESPath expression in a document.
        return error_response(
            BadRequest("the request is nested too deeply to process", code="too_deeply_nested")
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        log.exception("unexpected error")
        return error_response(GatewayError("an unexpected error occurred; it has been logged"))
