"""The targets page: each target in use with its API usage, and the credentials stored for the
remote ones, which can be replaced or forgotten but never read back."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, url_for

from gateway.console import forms
from gateway.console.blueprint import bp
from gateway.errors import GatewayError
from gateway.http import gateway
from gateway.targets import credentials
from gateway.targets.usage import target_usage


@bp.get("/targets")
def target_list() -> Any:
    return _page()


def _page(error: GatewayError | None = None, failed: str = "") -> Any:
    """The page; ``failed`` names the target whose form ``error`` belongs to."""
    gw = gateway()
    targets = target_usage(gw)
    stored = {
        t.name: credentials.view(found)
        for t in targets
        if (found := gw.credentials.get(t.name)) is not None
    }
    return forms.render(
        "console/targets/index.html",
        error,
        failed=failed,
        targets=targets,
        stored=stored,
        remote={t.name for t in targets if credentials.REMOTE_TARGET.match(t.name)},
        variables=credentials.SALESFORCE_VARIABLES,
    )


@bp.post("/targets/<name>/credentials")
def target_credentials(name: str) -> Any:
    """Set the variables filled in; those left empty keep what is stored."""
    gw = gateway()
    filled = {k: v for k in credentials.SALESFORCE_VARIABLES if (v := forms.text(k))}
    kept = gw.credentials.get(name)
    try:
        gw.credentials.put(name, {**(kept.values if kept else {}), **filled})
    except GatewayError as error:
        return _page(error, failed=name)
    flash(f"Credentials of {name} stored: {', '.join(sorted(filled))}.")
    return redirect(url_for("console.target_list", _anchor=f"target-{name}"), 303)


@bp.post("/targets/<name>/credentials/delete")
def target_credentials_delete(name: str) -> Any:
    gateway().credentials.delete(name)
    flash(f"Stored credentials of {name} forgotten; the environment's apply again.")
    return redirect(url_for("console.target_list"), 303)
