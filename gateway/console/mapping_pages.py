"""The mapping editor: check a document, preview it on stored events, save it as a new version.

Validation errors carry paths such as ``upserts[0].external_id``; the editor shows them beside
the text and marks their lines. To know those lines the document is shown pretty-printed, the
same way every time, so each path's line can be computed from the document itself.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, request, url_for

from gateway.api import schemas
from gateway.console import forms, queries
from gateway.console.blueprint import bp
from gateway.errors import Detail, GatewayError, NotFound, ValidationFailed
from gateway.http import gateway
from gateway.mapping import validate_document
from gateway.mapping_store import CONSOLE
from gateway.preview import DEFAULT_LAST, preview
from gateway.services import Gateway

_LAST_SEGMENT = re.compile(r"(\.[^.\[]+|\[\d+\])$")


def pretty(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def skeleton(name: str) -> dict[str, Any]:
    """A valid starting point for a new mapping, to be edited rather than typed from nothing."""
    return {
        "name": name,
        "description": "",
        "upserts": [
            {
                "key": "record",
                "object": "Account",
                "external_id_field": "External_Id__c",
                "external_id": "payload.id",
                "fields": {"Name": "payload.name"},
            }
        ],
    }


def _join(path: str, segment: str | int) -> str:
    if isinstance(segment, int):
        return f"{path}[{segment}]"
    return f"{path}.{segment}" if path else segment


def line_map(value: Any) -> dict[str, int]:
    """The line each path starts on in ``pretty(value)``."""
    found: dict[str, int] = {}
    _walk(value, "", 1, found)
    return found


def _walk(value: Any, path: str, line: int, found: dict[str, int]) -> int:
    """Record where ``value`` and its children start; the number of lines it takes."""
    found[path] = line
    children: Any = ()
    if isinstance(value, dict):
        children = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    taken = 1
    for key, child in children:
        taken += _walk(child, _join(path, key), line + taken, found)
    return taken + 1 if taken > 1 else 1


def line_of(path: str, lines: dict[str, int]) -> int:
    """The line of ``path``, or of the nearest thing around it (a missing key's object)."""
    while path not in lines and path:
        path = _LAST_SEGMENT.sub("", path) if _LAST_SEGMENT.search(path) else ""
    return lines.get(path, 1)


@dataclass(frozen=True)
class Problem:
    """One validation error, placed on a line of the editor."""

    path: str
    message: str
    line: int


@dataclass
class Editor:
    """What the editor shows: the text, its problems, and a preview's answer."""

    text: str
    error: GatewayError | None = None
    problems: tuple[Problem, ...] = ()
    preview: dict[str, Any] | None = None


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            "The document is not valid JSON.",
            details=[Detail("", f"line {exc.lineno}, column {exc.colno}: {exc.msg}")],
        ) from exc


def failed_editor(text: str, document: Any, error: GatewayError) -> Editor:
    """Place each of the error's details on its line, re-showing the text in the known layout."""
    if document is None:
        match = re.match(r"line (\d+)", error.details[0].message) if error.details else None
        line = int(match.group(1)) if match else 1
        problems = tuple(Problem(d.path or "(document)", d.message, line) for d in error.details)
        return Editor(text, error, problems)
    lines = line_map(document)
    problems = tuple(
        Problem(d.path or "(document)", d.message, line_of(d.path, lines)) for d in error.details
    )
    return Editor(pretty(document), error, problems)


def _page(gw: Gateway, name: str, editor: Editor, choice: dict[str, Any]) -> Any:
    try:
        versions = gw.mappings.versions(name)
    except NotFound:
        versions = []
    return forms.render(
        "console/mappings/editor.html",
        editor.error,
        name=name,
        editor=editor,
        choice=choice,
        versions=versions,
        users=queries.mapping_users(gw, name).get(name, []),
        groups=queries.group_names(gw),
    )


@bp.get("/mappings")
def mapping_list() -> Any:
    gw = gateway()
    return forms.render(
        "console/mappings/list.html", mappings=gw.mappings.latest(), users=queries.mapping_users(gw)
    )


@bp.post("/mappings")
def mapping_new() -> Any:
    """Go to the editor of a new name, once the name is one a mapping may have."""
    gw = gateway()
    name = forms.text("name")
    try:
        validate_document(skeleton(name), name=name)
    except GatewayError as error:
        return forms.render(
            "console/mappings/list.html",
            error,
            mappings=gw.mappings.latest(),
            users=queries.mapping_users(gw),
            new_name=name,
        )
    return redirect(url_for("console.mapping_editor", name=name), 303)


@bp.get("/mappings/<name>")
def mapping_editor(name: str) -> Any:
    gw = gateway()
    version = request.args.get("version", "")
    try:
        text = pretty(gw.mappings.get(name, int(version) if version.isdigit() else None).document)
    except NotFound:
        if version:
            raise
        text = pretty(skeleton(name))
    event_id = request.args.get("event_id", "")
    choice = {"source": "event" if event_id else "last", "last": DEFAULT_LAST, "event_id": event_id}
    return _page(gw, name, Editor(text), choice)


@bp.post("/mappings/<name>")
def mapping_submit(name: str) -> Any:
    """Save the text as a new version, or preview it; either way problems land in the editor."""
    gw = gateway()
    text = request.form.get("document", "")
    choice = {
        "source": forms.text("source") or "last",
        "last": forms.text("last") or DEFAULT_LAST,
        "event_id": forms.text("event_id"),
    }
    document = None
    try:
        document = parse_json(text)
        if forms.text("action") == "preview":
            body = schemas.preview.validate(_preview_body(document, choice))
            answer = preview(gw, name, body).body()
            return _page(gw, name, Editor(pretty(document), preview=answer), choice)
        row, changed = gw.mappings.put(name, document, source=CONSOLE)
    except GatewayError as error:
        return _page(gw, name, failed_editor(text, document, error), choice)
    flash(
        f"Saved as version {row.version}."
        if changed
        else f"No change; still version {row.version}."
    )
    return redirect(url_for("console.mapping_editor", name=name), 303)


def _preview_body(document: Any, choice: dict[str, Any]) -> dict[str, Any]:
    if choice["source"] == "event":
        return {"document": document, "event_id": choice["event_id"]}
    last = str(choice["last"])
    return {"document": document, "last": int(last) if last.isdigit() else last}
