"""Signing in with the admin token, the session guard, and the CSRF check on every form."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for

from gateway.console.blueprint import bp
from gateway.console_sessions import SESSION_LIFETIME
from gateway.errors import GatewayError, TooManySignIns, Unauthorized
from gateway.http import gateway
from gateway.sign_ins import in_words

log = logging.getLogger(__name__)

#: Endpoints reachable without a session: the sign-in page and the stylesheet it needs.
OPEN_ENDPOINTS = frozenset({"console.sign_in", "console.static"})
CSRF_FIELD = "csrf_token"


class CsrfFailed(GatewayError):
    """The form did not come from a page of this console session; reload the page and retry."""

    status = 403
    code = "csrf_failed"


def _fingerprint(admin_token: str) -> str:
    """What the session remembers of the token, so that changing the token signs everyone out.

    Keyed with the session key: a cookie is signed, not encrypted, and a plain hash in it would
    let whoever copies one test guesses at an operator's GATEWAY_ADMIN_TOKEN offline.
    """
    key = current_app.secret_key
    key_bytes = key if isinstance(key, bytes) else str(key).encode()
    return hmac.new(key_bytes, b"console:" + admin_token.encode(), hashlib.sha256).hexdigest()


@bp.app_template_global()
def csrf_token() -> str:
    """The form token bound to this session (the session cookie is signed, so it cannot be set)."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return str(session[CSRF_FIELD])


def signed_in() -> bool:
    expected = gateway().settings.admin_token or ""
    since = session.get("since")
    return (
        bool(expected)
        and hmac.compare_digest(str(session.get("admin", "")), _fingerprint(expected))
        and isinstance(since, float)
        and time.time() - since < SESSION_LIFETIME.total_seconds()
        and isinstance(session.get("sid"), str)
        and gateway().console_sessions.is_open(session["sid"])
    )


@bp.before_request
def _guard() -> Any:
    """Every page but sign-in needs the session; every POST needs the session's form token."""
    if request.endpoint not in OPEN_ENDPOINTS and not signed_in():
        return redirect(url_for("console.sign_in", next=request.full_path), 303)
    if request.method == "POST":
        sent = request.form.get(CSRF_FIELD, "")
        if not sent or not hmac.compare_digest(sent.encode(), csrf_token().encode()):
            raise CsrfFailed()
    return None


#: A console path (and query) to return to after sign-in: no second slash or backslash that a
#: browser would read as another host, no control character (a header cannot hold CR or LF, and
#: browsers drop tabs before parsing) and no dot segment climbing out of /admin/.
SAFE_NEXT = re.compile(r"(?!.*//)(?!.*\.\.)(?!.*%2e)/admin/[^\\\x00-\x1f\x7f]*", re.IGNORECASE)


def _safe_next(target: str | None) -> str:
    """Only ever send the browser back into the console, never to another site."""
    if target and SAFE_NEXT.fullmatch(target):
        return target
    return url_for("console.overview")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    error: GatewayError | None = None
    if request.method == "POST":
        try:
            return _try_token()
        except (Unauthorized, TooManySignIns) as refused:
            error = refused
    page = render_template(
        "console/sign_in.html",
        error=error,
        next=request.values.get("next", ""),
        attempts=gateway().settings.sign_in_attempts,
        window=in_words(gateway().settings.sign_in_window_s),
    )
    if isinstance(error, TooManySignIns):
        return page, error.status, {"Retry-After": str(error.retry_after_s)}
    return page, error.status if error else 200


def _try_token() -> Any:
    """Sign in with the posted token, unless this address has used up its attempts.

    The address is REMOTE_ADDR, as everywhere in the gateway: the connection's peer, or behind
    GATEWAY_TRUSTED_PROXIES proxies the address the outermost of them saw. An X-Forwarded-For
    entry no trusted proxy wrote is the client's own, and believing it would hand every guesser
    a fresh allowance per request.
    """
    address = request.remote_addr or "unknown"
    throttle = gateway().sign_ins
    try:
        number = throttle.attempt(address)
    except TooManySignIns as refused:
        log.warning(
            "console sign-in from %s refused: too many failed attempts",
            address,
            extra={"remote_addr": address, "retry_after_s": refused.retry_after_s},
        )
        raise
    expected = gateway().settings.admin_token or ""
    given = request.form.get("token", "").strip()
    if not (expected and hmac.compare_digest(given.encode(), expected.encode())):
        log.warning(
            "console sign-in from %s failed: wrong token (attempt %d of %d)",
            address,
            number,
            throttle.limit,
            extra={"remote_addr": address, "attempt": number},
        )
        raise Unauthorized("That is not the admin token (GATEWAY_ADMIN_TOKEN).")
    throttle.succeeded(address)
    target = _safe_next(request.form.get("next"))
    session.clear()
    session.permanent = True
    session.update(
        admin=_fingerprint(expected), since=time.time(), sid=gateway().console_sessions.start()
    )
    return redirect(target, 303)


@bp.post("/sign-out")
def sign_out() -> Any:
    """End the sign-in server-side too: a copy of the cookie taken before is refused from now."""
    if isinstance(session.get("sid"), str):
        gateway().console_sessions.end(session["sid"])
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("console.sign_in"), 303)
