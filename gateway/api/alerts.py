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
from gateway.api.openapi import operation
from gateway.http import gateway

bp = Blueprint("alerts", __name__, url_prefix=f"{PREFIX}/alerts")
bp.before_request(_refuse_nul_characters)

_by_id = attrgetter("id")


# --- channels ----------------------------------------------------------------------------


#: Alert answers are described as objects: their shapes are in docs/alerts.md.
_OBJECT = "AlertObject"


def _object(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertObject"}}},
    }


@bp.get("/channels")
@operation("alerts", page=_OBJECT)
def list_channels() -> Any:
    """The alert channels."""
    read = partial(configuration.list_channels, gateway())
    return _list(read, _by_id, configuration.channel_view)


@bp.post("/channels")
@operation(
    "alerts", _object("The channel, its secret shown only as a hint."), status=201, errors="422"
)
def create_channel() -> Any:
    """Register an alert channel: a signed webhook, a Slack-compatible webhook or email."""
    return _created(configuration.channel_view(configuration.create_channel(gateway(), _body())))


@bp.get("/channels/<channel_id>")
@operation("alerts", _object("The channel."), errors="404")
def show_channel(channel_id: str) -> Any:
    """One alert channel."""
    return jsonify(configuration.channel_view(configuration.get_channel(gateway(), channel_id)))


@bp.patch("/channels/<channel_id>")
@operation("alerts", _object("The channel as changed."), errors="404 422")
def update_channel(channel_id: str) -> Any:
    """Change an alert channel; settings the change leaves out are kept."""
    channel = configuration.update_channel(gateway(), channel_id, _body())
    return jsonify(configuration.channel_view(channel))


@bp.delete("/channels/<channel_id>")
@operation("alerts", None, status=204, errors="404")
def delete_channel(channel_id: str) -> Any:
    """Delete an alert channel."""
    configuration.delete_channel(gateway(), channel_id)
    return "", 204


@bp.post("/channels/<channel_id>/test")
@operation("alerts", _object('`{"sent": true}`'), errors="404 502")
def test_channel(channel_id: str) -> Any:
    """Send a test message now; 502 with the channel's answer when it does not take it."""
    configuration.send_test(gateway(), channel_id)
    return jsonify(sent=True)


# --- rules -------------------------------------------------------------------------------


@bp.get("/rules")
@operation("alerts", page=_OBJECT)
def list_rules() -> Any:
    """The alert rules."""
    read = partial(configuration.list_rules, gateway())
    return _list(read, _by_id, configuration.rule_view)


@bp.post("/rules")
@operation(
    "alerts", _object("The rule, its parameters' defaults filled in."), status=201, errors="422"
)
def create_rule() -> Any:
    """Register an alert rule."""
    return _created(configuration.rule_view(configuration.create_rule(gateway(), _body())))


@bp.get("/rules/<rule_id>")
@operation("alerts", _object("The rule."), errors="404")
def show_rule(rule_id: str) -> Any:
    """One alert rule."""
    return jsonify(configuration.rule_view(configuration.get_rule(gateway(), rule_id)))


@bp.patch("/rules/<rule_id>")
@operation("alerts", _object("The rule as changed."), errors="404 422")
def update_rule(rule_id: str) -> Any:
    """Change an alert rule; its parameters are merged."""
    rule = configuration.update_rule(gateway(), rule_id, _body())
    return jsonify(configuration.rule_view(rule))


@bp.delete("/rules/<rule_id>")
@operation("alerts", None, status=204, errors="404")
def delete_rule(rule_id: str) -> Any:
    """Delete an alert rule; its open incidents resolve silently."""
    configuration.delete_rule(gateway(), rule_id)
    return "", 204


# --- incidents ---------------------------------------------------------------------------


@bp.get("/incidents")
@operation("alerts", page=_OBJECT)
def list_incidents() -> Any:
    """Every incident, newest first."""
    read = partial(incidents.list_incidents, gateway())
    return _list(read, _by_id, incidents.incident_view)


@bp.get("/incidents/<incident_id>")
@operation("alerts", _object("The incident and the notices sent about it."), errors="404")
def show_incident(incident_id: str) -> Any:
    """One incident with the messages sent about it, channel by channel."""
    return jsonify(incidents.incident_with_notices(gateway(), incident_id))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
