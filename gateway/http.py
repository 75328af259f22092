"""What the API's and the console's views share: the current Gateway and the contract's errors.

Below the app factory (:mod:`gateway.web`), which registers the views and the error handler
built from these, so no view module imports the factory back.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, jsonify
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import ClientDisconnected, HTTPException

from gateway.errors import BadRequest, GatewayError, StoreUnavailable, error_code
from gateway.services import Gateway

log = logging.getLogger(__name__)


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
