"""The Flask application: the app factory, which registers the views and the error handler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import console
from gateway.api import admin, alerts, deliveries, oauth, ops, receive
from gateway.config import Settings
from gateway.http import as_gateway_error, error_response
from gateway.logs import configure as configure_logging
from gateway.services import Gateway


def create_app(
    overrides: Mapping[str, Any] | None = None, *, gateway: Gateway | None = None
) -> Flask:
    """The app factory: defaults, then the environment, then ``overrides`` (tests)."""
    app = Flask(__name__, instance_relative_config=True)
    if gateway is None:
        settings = Settings.from_env()
        if overrides:
            settings = settings.with_overrides(overrides)
        gateway = Gateway.start(settings)
    app.extensions["gateway"] = gateway
    configure_logging(gateway.settings.log_format)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # A path with doubled slashes is not found, as any unknown path, rather than redirected to
    # its merged form by an HTML page: every answer of the API is JSON.
    app.url_map.merge_slashes = False
    _register_errors(app)
    receive.init_app(app)
    admin.init_app(app)
    alerts.init_app(app)
    oauth.init_app(app)
    deliveries.init_app(app)
    ops.init_app(app)
    console.init_app(app)
    if gateway.settings.trusted_proxies:
        # Outermost, so that callbacks, the console's sign-in limit and gunicorn's access log
        # (which reads the same environ) all see the client's address rather than the proxy's.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=gateway.settings.trusted_proxies)  # type: ignore[method-assign]
    return app


def _register_errors(app: Flask) -> None:
    @app.errorhandler(Exception)
    def _any(error: Exception) -> Any:
        response = error_response(as_gateway_error(error))
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)  # RFC 9110 wants it
        return response
