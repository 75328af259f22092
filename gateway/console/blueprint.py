"""The console's blueprint and what every page shares: headers, template filters, error page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, render_template

from gateway.errors import GatewayError, NotFound

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

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


@bp.get("/<path:unknown>")
def _unknown_page(unknown: str) -> Any:
    """Any other address under /admin/: the console's own 404 page (after sign-in, as every
    page), where the app would answer the API's JSON."""
    raise NotFound(f"The console has no page at /admin/{unknown}.")
