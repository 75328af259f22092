"""The Flask application: thin shells over the services, and the contract's error bodies."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, jsonify
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import ClientDisconnected, HTTPException, MethodNotAllowed

from gateway.config import Settings
from gateway.core import Gateway
from gateway.errors import BadRequest, GatewayError, StoreUnavailable, error_code
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
    # A path with doubled slashes is not found, as any unknown path, rather than redirected to
    # its merged form by an HTML page: every answer of the API is JSON.
    app.url_map.merge_slashes = False
    _register_errors(app)

    from gateway import console
    from gateway.api import admin, alerts, ops, receive

    receive.init_app(app)
    admin.init_app(app)
    alerts.init_app(app)
    ops.init_app(app)
    console.init_app(app)
    return app


def gateway() -> Gateway:
    """The Gateway of the app handling the current request."""
    return current_app.extensions["gateway"]  # type: ignore[no-any-return]


def error_response(error: GatewayError) -> Any:
    response = jsonify(error.body())
    response.status_code = error.status
    response.headers.update(error_headers(error))
    return response


def error_headers(error: GatewayError) -> dict[str, str]:
    """Headers an error answer carries besides its body: when to retry, for an outage."""
    return {"Retry-After": "5"} if isinstance(error, StoreUnavailable) else {}


def http_error(error: HTTPException) -> GatewayError:
    """Werkzeug's HTTP errors (404, 405...) in the contract's terms."""
    domain = GatewayError(error.description or error.name, code=error_code(error.name or "error"))
    domain.status = error.code or 500
    return domain


#: What servers raise when a request body cannot be read whole; PEP 3333 names no error for
#: it, so each has its own: gunicorn a ParseException for chunks it cannot parse and NoMoreData
#: (an OSError) for a body cut short, werkzeug's servers OSError or ClientDisconnected. Caught
#: around body reads only, where an OSError is the sender's doing.
UNREADABLE_BODY = (ParseException, OSError, ClientDisconnected)
#: How much of the server's reason for refusing a chunked body an error message repeats.
MAX_REASON = 200


def unreadable_body(error: Exception) -> BadRequest:
    """One of UNREADABLE_BODY as the sender's fault (400)."""
    if isinstance(error, ParseException):
        return BadRequest(
            f"the chunked request body is malformed: {str(error)[:MAX_REASON]}",
            code="body_malformed",
        )
    return BadRequest("the request body ended before it was complete", code="body_incomplete")


def as_gateway_error(error: Exception) -> GatewayError:
    """Any error a request ends with, as the contract's error; unexpected ones are logged."""
    if isinstance(error, GatewayError):
        return error
    if isinstance(error, HTTPException):
        return http_error(error)
    if isinstance(error, RecursionError):
        # Only input nests deeply enough: a JSON body, or a JMESPath expression in a document.
        return BadRequest("the request is nested too deeply to process", code="too_deeply_nested")
    log.error("unexpected error", exc_info=error)
    return GatewayError("an unexpected error occurred; it has been logged")


def _register_errors(app: Flask) -> None:
    @app.errorhandler(Exception)
    def _any(error: Exception) -> Any:
        response = error_response(as_gateway_error(error))
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)  # RFC 9110 wants it
        return response
