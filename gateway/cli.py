"""The ``gateway`` command: thin shells over the services, for admins and process managers."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import click
import requests

from gateway.config import Settings
from gateway.core import Gateway


def _gateway() -> Gateway:
    return Gateway(Settings.from_env())


@click.group()
def main() -> None:
    """Inbound webhook listener and mapping gateway."""


# --- database ----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply schema migrations (safe to run on every start)."""
    from gateway.migrate import upgrade

    gw = _gateway()
    upgrade(gw.db, revision)
    click.echo(f"database at {gw.db.url.render_as_string(hide_password=True)} is up to date")


# --- processes ---------------------------------------------------------------------------


@main.command()
@click.option("--bind", default=None, help="host:port (default GATEWAY_BIND or 127.0.0.1:8000)")
@click.option("--workers", type=int, default=None, help="web processes")
def serve(bind: str | None, workers: int | None) -> None:
    """Serve the web app under gunicorn."""
    _serve(bind, workers)


@main.command()
@click.option("--once", is_flag=True, help="process what is due, then exit")
def worker(once: bool) -> None:
    """Process queued events until SIGTERM (the current batch finishes first)."""
    from gateway.worker import Worker

    gw = _gateway()
    runner = Worker(gw)
    if once:
        click.echo(f"processed {runner.drain()} events")
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    runner.run(stop)


@main.command()
@click.option("--bind", default=None, help="host:port (default GATEWAY_BIND or 127.0.0.1:8000)")
@click.option("--mappings", "mappings_dir", default="mappings", show_default=True)
def run(bind: str | None, mappings_dir: str) -> None:
    """Everything on the embedded default: migrate, load mappings, serve and work."""
    from gateway.migrate import upgrade

    gw = _gateway()
    upgrade(gw.db)
    if Path(mappings_dir).is_dir():
        _load_mappings(gw, Path(mappings_dir))
    click.echo(f"admin token: {gw.settings.admin_token}")
    click.echo(f"admin API:   {gw.settings.public_url}/api/v1  (Authorization: Bearer <token>)")
    worker_process = subprocess.Popen([sys.executable, "-m", "gateway", "worker"])
    try:
        _serve(bind, None)
    finally:
        worker_process.terminate()
        worker_process.wait(timeout=30)


def _serve(bind: str | None, workers: int | None) -> None:
    from gunicorn.app.base import BaseApplication

    from gateway import gunicorn_config

    options = {name: getattr(gunicorn_config, name) for name in gunicorn_config.__all__}
    if bind:
        options["bind"] = bind
    if workers:
        options["workers"] = workers

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:  # older gunicorns lack some settings
                    self.cfg.set(key, value)

        def load(self) -> Any:
            from gateway.web import create_app

            return create_app()

    Server().run()


# --- mappings ----------------------------------------------------------------------------


@main.group()
def mappings() -> None:
    """Mapping documents."""


@mappings.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def mappings_load(directory: Path) -> None:
    """Load or update every mapping file in DIRECTORY (a new version only when it changed)."""
    _load_mappings(_gateway(), directory)


def _load_mappings(gw: Gateway, directory: Path) -> None:
    from gateway.mapping.files import load_mapping_files

    for path, document in load_mapping_files(directory):
        row, changed = gw.mappings.put(document["name"], document)
        state = "new version" if changed else "unchanged"
        click.echo(f"{path.name}: {row.name} v{row.version} ({state})")


# --- events ------------------------------------------------------------------------------


@main.group()
def events() -> None:
    """The event log."""


@events.command("replay")
@click.argument("event_ids", nargs=-1)
@click.option("--group", "group_id", help="only events of this group")
@click.option("--type", "event_type", help="only events of this type")
@click.option("--status", help="only events with this status (comma-separated)")
@click.option("--since", help="ISO time")
@click.option("--until", help="ISO time")
def events_replay(
    event_ids: tuple[str, ...],
    group_id: str | None,
    event_type: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
) -> None:
    """Queue events again: the ones named, or every one matching the filters."""
    from gateway import events as event_log

    gw = _gateway()
    if event_ids:
        for event_id in event_ids:
            event_log.replay(gw, event_id)
        click.echo(f"replayed {len(event_ids)} events")
        return
    filters = {
        "group_id": group_id,
        "type": event_type,
        "status": status,
        "since": since,
        "until": until,
    }
    count = event_log.replay_matching(gw, {k: v for k, v in filters.items() if v})
    click.echo(f"replayed {count} events")


# --- trying a setup without the provider -------------------------------------------------


@main.command()
@click.argument("group_id")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--event", "event_type", help="event type (picks the connector's sample payload)")
@click.option("--url", help="post here instead of the group's callback URL")
def send(group_id: str, file: Path | None, event_type: str | None, url: str | None) -> None:
    """Sign a payload exactly as the group's connector would and post it to the group."""
    from gateway.connectors import sample_delivery
    from gateway.groups import accepted_secrets, get_group, now
    from gateway.verify import sign

    gw = _gateway()
    group = get_group(gw, group_id)
    profile = gw.connectors.get(group.connector)
    event_type = event_type or (group.events[0] if group.events else None)
    if file is None and event_type is None:
        raise click.UsageError("give a FILE or --event TYPE")
    body, headers = sample_delivery(profile, event_type) if event_type else (b"", {})
    if file is not None:
        body = file.read_bytes()
    secrets = accepted_secrets(gw, group, now())
    headers = {"Content-Type": "application/json", **headers}
    headers.update(sign(profile.verification, secrets[0] if secrets else "", body))
    response = requests.post(
        url or gw.callback_url(group.token), data=body, headers=headers, timeout=30
    )
    click.echo(f"{response.status_code} {response.text.strip()}")
    if response.status_code >= 400:
        sys.exit(1)


@main.command()
def token() -> None:
    """Print the admin token (generated under instance/ when none is configured)."""
    click.echo(_gateway().settings.admin_token)
