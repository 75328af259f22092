"""Connector profiles: the list, each profile with its history, and the editor of a custom one.

Shipped profiles are shown read-only. The editor reuses the mapping editor's layout: the
document pretty-printed, each problem of an invalid one placed on its line.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from gateway.connectors import shipped_profiles, validate_profile
from gateway.console import forms
from gateway.console.blueprint import bp
from gateway.console.mapping_pages import Editor, failed_editor, parse_json, pretty
from gateway.errors import Conflict, GatewayError, NotFound
from gateway.http import gateway
from gateway.registry import SHOWN_ONLY
from gateway.services import Gateway


def skeleton(name: str) -> dict[str, Any]:
    """A valid starting point for a new profile: an HMAC of the body, one function."""
    return {
        "name": name,
        "title": name,
        "functions": [{"name": "webhooks", "events": ["example.created"]}],
        "verification": {"scheme": "hmac", "header": "X-Signature", "prefix": "sha256="},
        "events": {"type": {"jmespath": "type"}, "id": {"jmespath": "id"}},
    }


def _document(gw: Gateway, name: str) -> dict[str, Any] | None:
    """The profile's document as stored (without what the API adds), or None if there is none."""
    try:
        shown = gw.connectors.get(name).public()
    except NotFound:
        return None
    return {key: value for key, value in shown.items() if key not in SHOWN_ONLY}


def _page(gw: Gateway, name: str, editor: Editor) -> Any:
    try:
        profile = gw.connectors.get(name)
    except NotFound:
        profile = None
    return forms.render(
        "console/connectors/editor.html",
        editor.error,
        name=name,
        profile=profile,
        shipped=name in shipped_profiles(),
        editor=editor,
        history=gw.connectors.history(name) if profile else [],
    )


@bp.get("/connectors")
def connector_list() -> Any:
    return forms.render("console/connectors/list.html", profiles=gateway().connectors.all())


@bp.post("/connectors")
def connector_new() -> Any:
    """Go to the editor of a new profile, once the name is one a profile may have."""
    gw = gateway()
    name = forms.text("name")
    try:
        if _document(gw, name) is not None:
            raise Conflict(f"A connector named {name!r} already exists.")
        validate_profile(skeleton(name))
    except GatewayError as error:
        return forms.render(
            "console/connectors/list.html", error, profiles=gw.connectors.all(), new_name=name
        )
    return redirect(url_for("console.connector_editor", name=name, new="1"), 303)


@bp.get("/connectors/<name>")
def connector_editor(name: str) -> Any:
    gw = gateway()
    document = _document(gw, name)
    if document is None and request.args.get("new") != "1":
        raise NotFound.of("connector", name)
    return _page(gw, name, Editor(pretty(document or skeleton(name))))


@bp.post("/connectors/<name>")
def connector_submit(name: str) -> Any:
    """Save the text as the profile's new version; problems land in the editor."""
    gw = gateway()
    text = request.form.get("document", "")
    document = None
    try:
        document = parse_json(text)
        profile, changed = gw.connectors.put(name, document)
    except GatewayError as error:
        return _page(gw, name, failed_editor(text, document, error))
    flash(
        f"Saved as version {profile.version}."
        if changed
        else f"No change; still version {profile.version}."
    )
    return redirect(url_for("console.connector_editor", name=name), 303)


@bp.post("/connectors/<name>/delete")
def connector_delete(name: str) -> Any:
    gw = gateway()
    try:
        gw.connectors.delete(name)
    except GatewayError as error:
        document = _document(gw, name)
        return _page(gw, name, Editor(pretty(document or skeleton(name)), error))
    flash(f"Connector {name!r} deleted.")
    return redirect(url_for("console.connector_list"), 303)
