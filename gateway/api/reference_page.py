"""The API reference page at ``/api/v1/docs``: Swagger UI over ``/api/v1/openapi.json``.

Served from the package, Swagger UI's files vendored under ``static/swagger-ui/`` (see its
LICENSE and NOTICE there), so the page works where the gateway cannot reach the internet and
tells no other site who reads it. Like the document, it needs no admin token: neither holds a
secret, and calls made from it need the token all the same.
"""

from __future__ import annotations

import functools
import mimetypes
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, request

from gateway.api.openapi import operation
from gateway.errors import NotFound

PATH = "/api/v1/docs"
STATIC = Path(__file__).with_name("static")
#: The page's files by the name it asks for them, each where it lies under ``STATIC``.
ASSETS = {
    "reference.js": "reference.js",
    "swagger-ui-bundle.js": "swagger-ui/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger-ui/swagger-ui.css",
}
#: Nothing but this origin, should a description in the document slip past Swagger UI's
#: escaping; Swagger UI sets inline styles and draws its icons as data: images.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

bp = Blueprint("reference", __name__, url_prefix=PATH)

HTML = {
    "description": "The page, in HTML.",
    "content": {"text/html": {"schema": {"type": "string"}}},
}


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


@bp.get("")
@operation("meta", HTML, public=True)
def get_reference() -> Any:
    """The API reference: this document, browsable, each call ready to try with the admin token."""
    return _send("reference.html", max_age=0)


@bp.get("/<asset>")
@operation(
    "meta",
    {
        "description": "The script or stylesheet.",
        "content": {
            "text/javascript": {"schema": {"type": "string"}},
            "text/css": {"schema": {"type": "string"}},
        },
    },
    errors="404",
    public=True,
    path={"asset": "A file of the page: `reference.js`, `swagger-ui-bundle.js`, `swagger-ui.css`."},
)
def get_reference_asset(asset: str) -> Any:
    """A script or stylesheet of the API reference page."""
    if asset not in ASSETS:
        raise NotFound(f"no file {asset!r} in the API reference")
    return _send(ASSETS[asset], max_age=3600)


def _send(name: str, max_age: int) -> Response:
    """A file of the page, with an ETag so that a browser asks again for what changed only."""
    mimetype, _ = mimetypes.guess_type(name)
    response = Response(_read(name), mimetype=mimetype)
    response.cache_control.max_age = max_age
    response.add_etag()
    response.make_conditional(request)
    return response


@functools.cache
def _read(name: str) -> bytes:
    """Read once per process: the files change only with the package."""
    return (STATIC / name).read_bytes()


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
