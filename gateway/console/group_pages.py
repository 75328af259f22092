"""Pages for webhook groups and their webhook records (the template first)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import current_app, flash, make_response, redirect, request, url_for
from werkzeug.test import EnvironBuilder, run_wsgi_app

from gateway import groups, oauth_clients, views
from gateway.api import schemas
from gateway.connectors import EVERY_EVENT, sample_events, subscribes
from gateway.console import forms
from gateway.console.blueprint import bp
from gateway.errors import GatewayError
from gateway.http import gateway
from gateway.models import Group, Webhook
from gateway.sample_sends import signed_sample
from gateway.services import Gateway

#: Groups per page of the list; few installations have more.
PAGE = 200
#: OAuth clients the group page lists; a group needs one or two.
CLIENTS_SHOWN = 100
#: How long a rotated-out secret may still be accepted, as offered on the rotate form.
GRACE_CHOICES = (
    (0, "Stop accepting it now"),
    (3600, "1 hour"),
    (86400, "24 hours"),
    (7 * 86400, "7 days"),
)

DEFAULT_SECRET_HELP = "The secret the sender signs its deliveries with."


@dataclass(frozen=True)
class Catalog:
    """One connector function an admin can choose, with the events it can register."""

    connector: str
    function: str
    connector_title: str
    function_title: str
    events: tuple[str, ...]
    open: bool
    secret_help: str

    @property
    def value(self) -> str:
        return f"{self.connector}/{self.function}"

    @property
    def title(self) -> str:
        return f"{self.connector_title} — {self.function_title}"


def catalogs(gw: Gateway) -> list[Catalog]:
    """Every connector function, grouped by connector in the profiles' order."""
    found = []
    for profile in gw.connectors.all():
        document = profile.public()
        secret_help = (document.get("secret") or {}).get("description") or DEFAULT_SECRET_HELP
        for function in document["functions"]:
            found.append(
                Catalog(
                    connector=profile.name,
                    function=function["name"],
                    connector_title=profile.title,
                    function_title=function["title"],
                    events=tuple(function["events"]),
                    open=function["open_catalog"],
                    secret_help=secret_help,
                )
            )
    return found


def _catalog_of(gw: Gateway, group: Group) -> Catalog:
    return next(c for c in catalogs(gw) if c.value == f"{group.connector}/{group.function}")


# --- groups ------------------------------------------------------------------------------


@bp.get("/groups")
def group_list() -> Any:
    after = request.args.get("after") or None
    rows = [group for group, _ in groups.list_groups(gateway(), PAGE + 1, after)]
    more = rows[PAGE - 1].id if len(rows) > PAGE else None
    shown = rows[:PAGE]
    unverified = {g.id for g in shown if groups.is_unverified(gateway(), g)}
    return forms.render("console/groups/list.html", groups=shown, more=more, unverified=unverified)


@bp.route("/groups/new", methods=["GET", "POST"])
def group_new() -> Any:
    gw = gateway()
    choices = catalogs(gw)
    values = {"choice": choices[0].value, "events": [], "active": True}
    if request.method == "POST":
        connector, _, function = forms.text("choice").partition("/")
        body = _group_body(connector=connector, function=function)
        values = {**body, "choice": forms.text("choice")}
        try:
            group = groups.create_group(gw, schemas.group_create.validate(body))
        except GatewayError as error:
            return _group_form(choices, values, error)
        flash(f"Group {group.name!r} created. Its secret is stored and will not be shown again.")
        return redirect(url_for("console.group_detail", group_id=group.id), 303)
    return _group_form(choices, values)


@bp.route("/groups/<group_id>/edit", methods=["GET", "POST"])
def group_edit(group_id: str) -> Any:
    gw = gateway()
    group = groups.get_group(gw, group_id)
    choices = [_catalog_of(gw, group)]
    values: dict[str, Any] = {**groups.view(gw, group).body(), "choice": choices[0].value}
    if request.method == "POST":
        body = _group_body()
        values.update(body)
        try:
            groups.update_group(gw, group_id, schemas.group_update.validate(body))
        except GatewayError as error:
            return _group_form(choices, values, error, group=group)
        flash("Group saved.")
        return redirect(url_for("console.group_detail", group_id=group_id), 303)
    return _group_form(choices, values, group=group)


def _group_body(**fixed: str) -> dict[str, Any]:
    """The API body of the group form; a secret is only sent when one was typed."""
    body: dict[str, Any] = {
        "name": forms.text("name"),
        **fixed,
        "external_id": forms.optional("external_id"),
        "description": forms.optional("description"),
        "contact": forms.optional("contact"),
        "target": forms.optional("target"),
        "events": forms.events(),
        "active": forms.checked("active"),
    }
    if "connector" in fixed and forms.text("secret"):
        body["secret"] = forms.text("secret")
    return body


def _group_form(
    choices: list[Catalog],
    values: dict[str, Any],
    error: GatewayError | None = None,
    group: Group | None = None,
) -> Any:
    return forms.render(
        "console/groups/form.html", error, choices=choices, values=values, group=group
    )


@bp.get("/groups/<group_id>")
def group_detail(group_id: str) -> Any:
    return _detail_page(group_id)


def _detail_page(
    group_id: str,
    error: GatewayError | None = None,
    failed: str = "",
    new_secret: views.OAuthClientSecret | None = None,
) -> Any:
    """The group with its records and OAuth clients; ``failed`` names the form on it that
    ``error`` belongs to, ``new_secret`` a client secret to show this once."""
    gw = gateway()
    group = groups.get_group(gw, group_id)
    return forms.render(
        "console/groups/detail.html",
        error,
        failed=failed,
        group=group,
        view=groups.view(gw, group),
        webhooks=groups.list_webhooks(gw, group_id),
        catalog=_catalog_of(gw, group),
        grace_choices=GRACE_CHOICES,
        oauth_clients=oauth_clients.list_clients(gw, group_id, CLIENTS_SHOWN, None),
        token_url=gw.settings.public_url + "/oauth/token",
        new_secret=new_secret,
        unverified=groups.is_unverified(gw, group),
        test_events=[
            (e, e)
            for e in sample_events(gw.connectors.get(group.connector))
            if subscribes(group.events, e)
        ],
    )


def _group_action(group_id: str, form: str, action: Any, done: str) -> Any:
    """Run one of the detail page's small forms; its error is shown on that form."""
    try:
        action(gateway())
    except GatewayError as error:
        return _detail_page(group_id, error, failed=form)
    flash(done)
    return redirect(url_for("console.group_detail", group_id=group_id), 303)


@bp.post("/groups/<group_id>/test-event")
def group_test_event(group_id: str) -> Any:
    """Post a signed sample delivery to the group's callback URL through the receive path, as
    ``gateway send`` does from a shell: the whole setup is tried, signature check included."""
    gw = gateway()
    group = groups.get_group(gw, group_id)
    try:
        body, headers = signed_sample(gw, group, forms.optional("event"))
    except GatewayError as error:
        return _detail_page(group_id, error, failed="test-event")
    status, answer = _receive(f"/hooks/{group.token}", body, headers)
    if status != 200:
        refused = GatewayError(
            f"The test event was refused ({status}): {answer['error']['message']}",
            code=answer["error"]["code"],
        )
        refused.status = status
        return _detail_page(group_id, refused, failed="test-event")
    flash(
        f"Test event sent: {answer['accepted']} accepted, {answer['duplicates']} duplicate,"
        f" {answer['ignored']} ignored (delivery {answer['delivery_id']})."
    )
    return redirect(url_for("console.group_detail", group_id=group_id), 303)


def _receive(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """Post to this app's own receive path, in process: the same code a sender's request runs,
    without a round trip through an address the server may not reach itself at."""
    environ = EnvironBuilder(
        path=path, method="POST", data=body, headers=list(headers.items())
    ).get_environ()
    answer, status, _ = run_wsgi_app(current_app.wsgi_app, environ, buffered=True)
    return int(status.split()[0]), json.loads(b"".join(answer))


@bp.post("/groups/<group_id>/rotate-url")
def group_rotate_url(group_id: str) -> Any:
    return _group_action(
        group_id,
        "rotate-url",
        lambda gw: groups.rotate_url(gw, group_id),
        "New callback URL made; the old one no longer works. Give the new one to the sender.",
    )


@bp.post("/groups/<group_id>/rotate-secret")
def group_rotate_secret(group_id: str) -> Any:
    body = {"secret": forms.text("secret"), "previous_valid_for_s": _grace()}

    def rotate(gw: Gateway) -> None:
        valid = schemas.rotate_secret.validate(body)
        groups.rotate_secret(gw, group_id, valid["secret"], valid["previous_valid_for_s"])

    return _group_action(group_id, "rotate-secret", rotate, "Secret replaced.")


def _grace() -> int:
    raw = forms.text("previous_valid_for_s")
    return int(raw) if raw.isdigit() else 0


@dataclass(frozen=True)
class _Switch:
    """One of a group's true-or-false settings, as its page's buttons turn it on and off."""

    field: str
    #: The part of the page that shows it, where its errors go.
    form: str
    on: str
    off: str


_SWITCHES = {
    "active": _Switch(
        "active", "active", "Group activated.", "Group deactivated; its callback URL answers 404."
    ),
    "paused": _Switch(
        "paused",
        "paused",
        "Group paused; deliveries are still accepted and their events held until it is resumed.",
        "Group resumed; its held events are processed in the order received.",
    ),
    "require-bearer": _Switch(
        "require_bearer",
        "oauth",
        "Deliveries now need an OAuth access token.",
        "Deliveries no longer need an OAuth access token.",
    ),
}


@bp.post("/groups/<group_id>/<any(active, paused, 'require-bearer'):switch>")
def group_switch(group_id: str, switch: str) -> Any:
    """Turn the setting on or off, as the posted form says (``true`` or ``false``)."""
    chosen = _SWITCHES[switch]
    value = forms.text(chosen.field) == "true"
    return _group_action(
        group_id,
        chosen.form,
        lambda gw: groups.update_group(gw, group_id, {chosen.field: value}),
        chosen.on if value else chosen.off,
    )


# --- OAuth clients -----------------------------------------------------------------------


@bp.post("/groups/<group_id>/oauth-clients")
def oauth_client_new(group_id: str) -> Any:
    """Make a client and show its secret on the page itself: never in a cookie or a redirect."""
    return _showing_secret(
        group_id,
        lambda gw: oauth_clients.create_client(
            gw, group_id, schemas.oauth_client_create.validate(_client_body()).get("name")
        ),
    )


@bp.post("/groups/<group_id>/oauth-clients/<client_id>/rotate-secret")
def oauth_client_rotate(group_id: str, client_id: str) -> Any:
    return _showing_secret(
        group_id, lambda gw: oauth_clients.rotate_client_secret(gw, group_id, client_id)
    )


@bp.post("/groups/<group_id>/oauth-clients/<client_id>/revoke")
def oauth_client_revoke(group_id: str, client_id: str) -> Any:
    return _group_action(
        group_id,
        "oauth",
        lambda gw: oauth_clients.revoke_client(gw, group_id, client_id),
        "Client revoked; its tokens no longer work.",
    )


def _client_body() -> dict[str, Any]:
    name = forms.optional("name")
    return {"name": name} if name else {}


def _showing_secret(group_id: str, make: Any) -> Any:
    try:
        client, secret = make(gateway())
    except GatewayError as error:
        return _detail_page(group_id, error, failed="oauth")
    shown = views.OAuthClientSecret(client_id=client.client_id, client_secret=secret)
    response = make_response(_detail_page(group_id, new_secret=shown))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- webhook records ---------------------------------------------------------------------


@bp.route("/webhooks/<webhook_id>/clone", methods=["GET", "POST"])
def webhook_clone(webhook_id: str) -> Any:
    gw = gateway()
    source = groups.get_webhook(gw, webhook_id)
    values = _webhook_values(source)
    if source.is_template:
        values["label"] = ""
    values["active"] = True
    return _webhook_page(
        gw,
        source,
        values,
        lambda body: groups.clone_webhook(gw, webhook_id, schemas.webhook_clone.validate(body)),
        "Webhook record created.",
        clone=True,
    )


@bp.route("/webhooks/<webhook_id>/edit", methods=["GET", "POST"])
def webhook_edit(webhook_id: str) -> Any:
    gw = gateway()
    webhook = groups.get_webhook(gw, webhook_id)
    return _webhook_page(
        gw,
        webhook,
        _webhook_values(webhook),
        lambda body: groups.update_webhook(gw, webhook_id, schemas.webhook_update.validate(body)),
        "Webhook record saved.",
        clone=False,
    )


#: What a webhook record may send to its group's target, as the form offers it.
SEND_OPTIONS = [("upserts", "The mapping's upserts"), ("event", "The event as received")]


def _webhook_page(
    gw: Gateway, webhook: Webhook, values: dict[str, Any], save: Any, done: str, *, clone: bool
) -> Any:
    """The clone and edit forms are one form: show it, or save it and go back to the group."""
    error = None
    if request.method == "POST":
        body = _webhook_body()
        values = {**body, "mapping_name": forms.text("mapping"), "pin": forms.text("version")}
        try:
            saved = save(body)
        except GatewayError as exc:
            error = exc
        else:
            flash(done)
            target = url_for("console.group_detail", group_id=saved.group_id)
            return redirect(f"{target}#webhook-{saved.id}", 303)
    group = groups.get_group(gw, webhook.group_id)
    return forms.render(
        "console/webhooks/form.html",
        error,
        webhook=webhook,
        group=group,
        takeable=_catalog_of(gw, group).events if EVERY_EVENT in group.events else group.events,
        mapping_options=[("", "(none)")] + [(m.name, m.name) for m in gw.mappings.latest()],
        send_options=SEND_OPTIONS,
        values=values,
        clone=clone,
    )


def _webhook_values(webhook: Webhook) -> dict[str, Any]:
    return {
        "label": webhook.label,
        "events": webhook.events,
        "active": webhook.active,
        "filter": webhook.filter or "",
        "mapping_name": webhook.mapping_name or "",
        "pin": webhook.mapping_version or "",
        "send": webhook.send,
    }


def _webhook_body() -> dict[str, Any]:
    name, version = forms.text("mapping"), forms.text("version")
    mapping: Any = None
    if name:
        mapping = {"name": name, "version": int(version)} if version.isdigit() else name
    return {
        "label": forms.text("label"),
        "events": forms.events(),
        "active": forms.checked("active"),
        "filter": forms.optional("filter"),
        "mapping": mapping,
        "send": forms.text("send") or "upserts",
    }


@bp.post("/webhooks/<webhook_id>/active")
def webhook_active(webhook_id: str) -> Any:
    gw = gateway()
    webhook = groups.get_webhook(gw, webhook_id)
    active = forms.text("active") == "true"
    return _group_action(
        webhook.group_id,
        f"webhook-{webhook_id}",
        lambda gw: groups.update_webhook(gw, webhook_id, {"active": active}),
        f"Webhook record {webhook.label!r} {'activated' if active else 'deactivated'}.",
    )
