"""The admin console under /admin: server-rendered pages over the same services as the admin API.

Every page is a thin shell: it turns a form into the body the admin API would take, checks it
with the API's own schemas and calls the same service functions, so no rule lives here twice.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, Request, redirect, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

# The page modules add their routes to ``bp`` when imported.
from gateway.console import (  # noqa: F401
    alert_pages,
    auth,
    connector_pages,
    delivery_pages,
    event_pages,
    group_pages,
    mapping_pages,
    overview,
    record_pages,
    target_pages,
)
from gateway.console.blueprint import bp
from gateway.console_sessions import SESSION_LIFETIME


def session_key(secret_key: str) -> bytes:
    """A key derived for cookies, so the key that encrypts group secrets never signs one."""
    return hmac.new(secret_key.encode(), b"gateway admin console session", hashlib.sha256).digest()


class ConsoleSessions(SecureCookieSessionInterface):
    """Cookie sessions for console pages only.

    Callbacks and API calls never use one, and opening a session builds a cookie signer: work
    the receive path would pay on every delivery for nothing.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        prefix = bp.url_prefix or ""
        if request.path != prefix and not request.path.startswith(prefix + "/"):
            return None  # Flask gives the request a null session instead
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    """Register the console and give the app a session key derived from the gateway's secret."""
    settings = app.extensions["gateway"].settings
    app.secret_key = app.secret_key or session_key(settings.secret_key)
    config = app.config
    config["SESSION_COOKIE_SAMESITE"] = config["SESSION_COOKIE_SAMESITE"] or "Lax"
    config["SESSION_COOKIE_SECURE"] = config["SESSION_COOKIE_SECURE"] or (
        settings.public_url.startswith("https://")
    )
    app.permanent_session_lifetime = SESSION_LIFETIME
    app.session_interface = ConsoleSessions()
    app.register_blueprint(bp)
    # Whoever opens the gateway's address in a browser is looking for the console.
    app.add_url_rule("/", "console_home", lambda: redirect(url_for("console.overview")))
