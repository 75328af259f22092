"""Reading HTML forms into the admin API's request bodies, and rendering pages with their errors."""

from __future__ import annotations

import re
from typing import Any

from flask import render_template, request

from gateway.console.blueprint import bp
from gateway.errors import GatewayError


def text(name: str) -> str:
    return request.form.get(name, "").strip()


def optional(name: str) -> str | None:
    """An empty input means 'not set', as an absent key does in the API."""
    return text(name) or None


def checked(name: str) -> bool:
    return request.form.get(name) == "on"


def events(name: str = "events", other: str = "other_events") -> list[str]:
    """The ticked events, then any typed into the 'other events' box (open catalogs)."""
    typed = [e.strip() for e in re.split(r"[,\n]", request.form.get(other, "")) if e.strip()]
    return list(dict.fromkeys([*request.form.getlist(name), *typed]))


def render(template: str, error: GatewayError | None = None, **context: Any) -> Any:
    """A page with the service's error (if any) on it, answered with that error's status."""
    return render_template(template, error=error, **context), error.status if error else 200


@bp.app_template_global()
def errors_for(error: GatewayError | None, field: str) -> list[str]:
    """The messages of ``error`` about ``field``: its own path or anything inside it."""
    if error is None:
        return []
    return [
        d.message
        for d in error.details
        if d.path == field or d.path.startswith((f"{field}[", f"{field}."))
    ]


@bp.app_template_filter("field_id")
def field_id(path: str) -> str:
    """The id of the input a detail's path points at: its first segment."""
    return "f-" + re.split(r"[.\[]", path, maxsplit=1)[0]
