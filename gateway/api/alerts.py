"""The alert endpoints under /api/v1/alerts: channels, rules, incidents.

Thin shells over ``gateway.alerts``; the bearer token is checked for every /api/v1 path by the
admin API before routing.
"""

from __future__ import annotations

from functools import partial
from operator import attrgetter
from typing import Any

from flask import Blueprint, Flask, jsonify

from gateway.alerts import configuration, incidents
from gateway.api.admin import PREFIX, _body, _created, _list, _refuse_nul_characters
from gateway.web import gateway

bp = Blueprint("alerts", __name__, url_prefix=f"{PREFIX}/alerts")
bp.before_request(_refuse_nul_characters)

_by_id = attrgetter("id")


# --- channels ----------------------------------------------------------------------------


@bp.get("/channels")
def list_channels() -> Any:
    read = partial(configuration.list_channels, gateway())
    return _list(read, _by_id, configuration.channel_view)


@bp.post("/channels")
def create_channel() -> Any:
    return _created(configuration.channel_view(configuration.create_channel(gateway(), _body())))


@bp.get("/channels/<channel_id>")
def show_channel(channel_id: str) -> Any:
    return jsonify(configuration.channel_view(configuration.get_channel(gateway(), channel_id)))


@bp.patch("/channels/<channel_id>")
def update_channel(channel_id: str) -> Any:
    channel = configuration.update_channel(gateway(), channel_id, _body())
    return jsonify(configuration.channel_view(channel))


@bp.delete("/channels/<channel_id>")
def delete_channel(channel_id: str) -> Any:
    configuration.delete_channel(gateway(), channel_id)
    return "", 204


@bp.post("/channels/<channel_id>/test")
def test_channel(channel_id: str) -> Any:
    """Send a test message now; 502 with the channel's answer when it does not take it."""
    configuration.send_test(gateway(), channel_id)
    return jsonify(sent=True)


# --- rules -------------------------------------------------------------------------------


@bp.get("/rules")
def list_rules() -> Any:
    read = partial(configuration.list_rules, gateway())
    return _list(read, _by_id, configuration.rule_view)


@bp.post("/rules")
def create_rule() -> Any:
    return _created(configuration.rule_view(configuration.create_rule(gateway(), _body())))


@bp.get("/rules/<rule_id>")
def show_rule(rule_id: str) -> Any:
    return jsonify(configuration.rule_view(configuration.get_rule(gateway(), rule_id)))


@bp.patch("/rules/<rule_id>")
def update_rule(rule_id: str) -> Any:
    rule = configuration.update_rule(gateway(), rule_id, _body())
    return jsonify(configuration.rule_view(rule))


@bp.delete("/rules/<rule_id>")
def delete_rule(rule_id: str) -> Any:
    configuration.delete_rule(gateway(), rule_id)
    return "", 204


# --- incidents ---------------------------------------------------------------------------


@bp.get("/incidents")
def list_incidents() -> Any:
    """Every incident, newest first."""
    read = partial(incidents.list_incidents, gateway())
    return _list(read, _by_id, incidents.incident_view)


@bp.get("/incidents/<incident_id>")
def show_incident(incident_id: str) -> Any:
    """One incident with the messages sent about it, channel by channel."""
    return jsonify(incidents.incident_with_notices(gateway(), incident_id))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
