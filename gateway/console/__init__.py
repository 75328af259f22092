"""The admin console under /admin: server-rendered pages over the same services as the admin API.

Every page is a thin shell: it turns a form into the body the admin API would take, checks it
with the API's own schemas and calls the same service functions, so no rule lives here twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Request, Response, render_template
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from gateway.errors import GatewayError

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

#: How long a sign-in lasts; admins sign in again after a working day.
SESSION_LIFETIME = timedelta(hours=12)
#: What every console answer says to the browser. Pages show payloads, headers and mapping
#: documents senders wrote: no other site may frame them (clickjacking a replay or a delete
#: button), scripts and forms stay on this origin should anything slip past escaping, and no
#: browser or proxy cache keeps a copy after sign-out. The inline styles are the overview's
#: chart bars.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline';"
    " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


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
    # The page modules add their routes to ``bp`` when first imported.
    from gateway.console import (  # noqa: F401
        alert_pages,
        auth,
        event_pages,
        group_pages,
        mapping_pages,
        overview,
    )

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


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if not response.headers.get("Cache-Control"):  # the stylesheet and script may be cached
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_filter("when")
def format_time(value: datetime | str | None) -> str:
    """Times in UTC to the second: admins compare them with provider logs, which use UTC."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_filter("pretty_json")
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@bp.app_template_filter("compact_json")
def compact_json(value: Any) -> str:
    """One line, for a value in a table; without ``indent``, json's C encoder writes it, which
    matters on an event page of thousands of upserts."""
    return json.dumps(value, ensure_ascii=False, default=str)


@bp.errorhandler(GatewayError)
def _error_page(error: GatewayError) -> Any:
    """A page the admin can read (the API's JSON body would be useless in a browser)."""
    return render_template("console/error.html", error=error), error.status
