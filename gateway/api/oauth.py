"""OAuth 2.0 on callback URLs: a group's clients under /api/v1, and the token endpoint.

``POST /oauth/token`` answers as RFC 6749 says (sections 4.4, 5.1, 5.2) rather than with the
admin API's error body, since the OAuth client libraries senders use read that shape.
"""

from __future__ import annotations

from functools import partial
from operator import attrgetter
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from gateway import oauth_clients, views
from gateway.access_tokens import TokenRequestError, client_credentials
from gateway.api import schemas
from gateway.api.admin import PREFIX, _body, _created, _list, _refuse_nul_characters
from gateway.api.openapi import operation
from gateway.http import UNREADABLE_BODY, gateway

bp = Blueprint("oauth_clients", __name__, url_prefix=f"{PREFIX}/groups/<group_id>/oauth-clients")
bp.before_request(_refuse_nul_characters)
token_bp = Blueprint("oauth_token", __name__)

#: A token request is a handful of short form fields.
MAX_TOKEN_REQUEST_BYTES = 8 * 1024
FORM = "application/x-www-form-urlencoded"
#: RFC 6749 section 5.1: no cache may keep a token, nor an answer about one.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CLIENT_ID = {"client_id": "The OAuth client's id."}

_by_client_id = attrgetter("client_id")


def _secret_view(client: Any, secret: str) -> dict[str, Any]:
    return views.OAuthClientSecret(client_id=client.client_id, client_secret=secret).body()


def _client_view(client: Any) -> dict[str, Any]:
    return views.OAuthClient.of(client).body()


@bp.post("")
@operation(
    "groups",
    views.OAuthClientSecret,
    status=201,
    errors="404 422 503",
    body="OAuthClientCreate",
    body_required=False,
)
def create_oauth_client(group_id: str) -> Any:
    """Make client credentials for the group's sender; the secret is shown this once."""
    name = _body(schemas.oauth_client_create).get("name")
    return _created(_secret_view(*oauth_clients.create_client(gateway(), group_id, name)))


@bp.get("")
@operation("groups", page=views.OAuthClient, errors="404 503")
def list_oauth_clients(group_id: str) -> Any:
    """The group's OAuth clients, by id; secrets as hints only."""
    read = partial(oauth_clients.list_clients, gateway(), group_id)
    return _list(read, _by_client_id, _client_view)


@bp.delete("/<client_id>")
@operation("groups", status=204, errors="404 503", path=CLIENT_ID)
def revoke_oauth_client(group_id: str, client_id: str) -> Any:
    """Revoke a client: its secret and every token it obtained stop working at once."""
    oauth_clients.revoke_client(gateway(), group_id, client_id)
    return "", 204


@bp.post("/<client_id>/rotate-secret")
@operation("groups", views.OAuthClientSecret, errors="404 503", path=CLIENT_ID)
def rotate_oauth_client_secret(group_id: str, client_id: str) -> Any:
    """A new secret for a client, shown this once; the old one and its tokens stop working."""
    return jsonify(
        _secret_view(*oauth_clients.rotate_client_secret(gateway(), group_id, client_id))
    )


@token_bp.post("/oauth/token")
def token() -> Response:
    """Exchange a client's credentials for an access token (client-credentials grant)."""
    try:
        credentials = client_credentials(request.headers.get("Authorization"), _token_form())
        access_token = oauth_clients.issue_token(
            gateway(), request.remote_addr or "unknown", credentials
        )
    except TokenRequestError as refused:
        return _token_error(refused)
    answer = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": gateway().settings.oauth_token_ttl_s,
    }
    response = jsonify(answer)
    response.headers.update(NO_STORE)
    return response


def _token_form() -> dict[str, list[str]]:
    """The request's form fields, each with every value it was given."""
    if request.mimetype != FORM:
        raise TokenRequestError("invalid_request", f"the body must be {FORM}")
    request.max_content_length = MAX_TOKEN_REQUEST_BYTES
    try:
        return {name: request.form.getlist(name) for name in request.form}
    except RequestEntityTooLarge as exc:
        raise TokenRequestError("invalid_request", "the request body is too large") from exc
    except UNREADABLE_BODY as exc:
        raise TokenRequestError("invalid_request", "the request body is incomplete") from exc


def _token_error(refused: TokenRequestError) -> Response:
    response = jsonify(refused.body())
    response.status_code = refused.status
    response.headers.update(NO_STORE)
    if refused.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="oauth"'
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(token_bp)
