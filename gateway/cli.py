"""The ``gateway`` command: thin shells over the services, for admins and process managers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import click
import requests
from click.core import ParameterSource

from gateway.config import ServerSettings, Settings, environment, share_metrics_dir
from gateway.errors import ConfigurationError, GatewayError
from gateway.progress import Progress
from gateway.remote_commands import install as install_remote_commands
from gateway.services import Gateway


def _gateway() -> Gateway:
    """The Gateway for this command; its database connections close when the command ends.

    The server's settings are checked too, though only serving reads them: a bad value stops
    every command at once, rather than the first ``gateway run`` or deploy that serves. So is
    the secret key, against the secrets the database holds.
    """
    env = environment()
    ServerSettings.from_env(env)
    gw = Gateway.start(Settings.from_env(env))
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(gw.close)
    return gw


class GatewayGroup(click.Group):
    """Commands whose domain errors end in exit code 1 and a clear message, not a traceback.

    The message is the error's line, then one indented line per detail, as the API's 422
    lists them, so an admin at a shell learns what to fix as one using the API does.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GatewayError as error:
            raise click.ClickException(_error_text(error)) from error


def _error_text(error: GatewayError) -> str:
    lines = [f"{error.code}: {error.message}"]
    for detail in error.details:
        where = f"{detail.path}: " if detail.path else ""
        # A JMESPath parse error points at the column on lines of its own; keep them together.
        lines.append(f"  {where}{detail.message}".replace("\n", "\n    "))
    return "\n".join(lines)


@click.group(cls=GatewayGroup)
@click.version_option(package_name="webhook-gateway", prog_name="gateway")
def main() -> None:
    """Inbound webhook listener and mapping gateway."""
    from gateway.logs import configure

    try:
        log_format = Settings.from_env().log_format
    except ConfigurationError:
        # The command itself reads the settings and says what is wrong; until then, and for
        # --help, which an admin may need to fix it, logs are text.
        log_format = "text"
    configure(log_format)


# --- database ----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option(
    "--revision", default="head", show_default=True, help="Alembic revision to upgrade to"
)
def db_upgrade(revision: str) -> None:
    """Apply schema migrations (safe to run on every start)."""
    from gateway.migrate import current_revision, upgrade

    gw = _gateway()
    where = gw.db.url.render_as_string(hide_password=True)
    before = current_revision(gw.db)
    upgrade(gw.db, revision)
    after = current_revision(gw.db)
    if before == after:
        click.echo(f"database at {where} is up to date (revision {after})")
    else:
        click.echo(f"database at {where} upgraded from revision {before or 'none'} to {after}")


# --- processes ---------------------------------------------------------------------------


@main.command()
@click.option(
    "--bind",
    default=None,
    help="host:port (default GATEWAY_BIND, else 0.0.0.0:$PORT if PORT is set, else 127.0.0.1:8000)",
)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="web processes")
def serve(bind: str | None, workers: int | None) -> None:
    """Serve the web app under gunicorn."""
    _listen_on(bind)
    command = _gunicorn(bind, workers)
    os.execv(command[0], command)


@main.command()
@click.option("--once", is_flag=True, help="process what is due, then exit")
def worker(once: bool) -> None:
    """Process queued events until SIGTERM (the current batch finishes first)."""
    from gateway.worker import Worker

    gw = _gateway()
    runner = Worker(gw)
    if once:
        click.echo(f"processed {_events(runner.drain())}")
        return
    bind = gw.settings.worker_metrics_bind
    if bind:
        from gateway.metrics import serve_counters

        server = serve_counters(bind, gw.settings.metrics_token)
        host = f"[{bind[0]}]" if ":" in bind[0] else bind[0]
        click.echo(f"worker metrics: http://{host}:{server.server_port}/metrics")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    runner.run(stop)


def _events(count: int) -> str:
    return f"{count} event" if count == 1 else f"{count} events"


def _shown_token(gw: Gateway) -> str:
    """The token ``gateway run`` prints: only one it generated into ``instance/``, for the first
    start with nothing configured. One set in the environment is the operator's own, and would
    only end up in whatever log keeps this output."""
    if environment().get("GATEWAY_ADMIN_TOKEN"):
        return "the value of GATEWAY_ADMIN_TOKEN (gateway token prints it)"
    return gw.settings.admin_token or ""


@main.command()
@click.option(
    "--bind",
    default=None,
    help="host:port (default GATEWAY_BIND, else 0.0.0.0:$PORT if PORT is set, else 127.0.0.1:8000)",
)
@click.option(
    "--mappings",
    "mappings_dir",
    default="mappings",
    show_default=True,
    help="directory of mapping files to load",
)
def run(bind: str | None, mappings_dir: str) -> None:
    """Everything on the embedded default: migrate, load mappings, serve and work."""
    from gateway.migrate import upgrade

    _listen_on(bind)
    gw = _gateway()
    upgrade(gw.db)
    chosen = click.get_current_context().get_parameter_source("mappings_dir")
    if Path(mappings_dir).is_dir():
        _load_mappings(gw, Path(mappings_dir))
    elif chosen is ParameterSource.DEFAULT:  # run from elsewhere than a clone: nothing to load
        click.echo(f"no {mappings_dir}/ directory here: no mapping loaded")
    else:
        raise click.BadParameter(f"{mappings_dir!r} is not a directory", param_hint="--mappings")
    click.echo(f"console:     {gw.settings.public_url}/admin/  (sign in with the admin token)")
    click.echo(f"admin token: {_shown_token(gw)}")
    click.echo(f"admin API:   {gw.settings.public_url}/api/v1  (Authorization: Bearer <token>)")
    share_metrics_dir()  # the worker's counters in the web processes' /metrics
    # Each in a session of its own, out of the terminal's reach: Ctrl-C signals the foreground
    # process group, and gunicorn takes SIGINT as a quick shutdown that cuts requests off. This
    # process turns it into the graceful SIGTERM instead (_terminate).
    processes = [
        subprocess.Popen([sys.executable, "-m", "gateway", "worker"], start_new_session=True),
        subprocess.Popen(_gunicorn(bind, None), start_new_session=True),
    ]
    # SIGHUP too: a closed terminal no longer reaches them.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: _terminate(processes))
    web = processes[1].wait()  # until gunicorn stops, on a signal to it or to us
    _terminate(processes)
    for process in processes:
        process.wait(timeout=60)
    if web:
        raise SystemExit(web)  # gunicorn could not serve (say, the port is taken): it said why


def _listen_on(bind: str | None) -> None:
    """Make ``--bind`` this process's and its children's GATEWAY_BIND, which callback URLs
    follow when GATEWAY_PUBLIC_URL is not set."""
    if bind:
        os.environ["GATEWAY_BIND"] = bind


def _gunicorn(bind: str | None, workers: int | None) -> list[str]:
    """gunicorn in a process of its own, as ``gunicorn wsgi:app`` runs, with our settings.

    Its gevent workers patch the standard library when they start; a CLI process that has
    already imported ``ssl`` (through the Salesforce client) would leave it unpatched.
    """
    command = [sys.executable, "-m", "gunicorn", "--config", "python:gateway.gunicorn_config"]
    if bind:
        command += ["--bind", bind]
    if workers:
        command += ["--workers", str(workers)]
    return [*command, "gateway.web:create_app()"]


def _terminate(processes: list[subprocess.Popen[bytes]]) -> None:
    """Ask the web server and the worker to stop, each finishing what it holds first.

    Only signals: a signal handler that also waited could deadlock with the wait it interrupts.
    """
    for process in processes:
        if process.poll() is None:
            process.terminate()


# --- mappings ----------------------------------------------------------------------------


@main.group()
def mappings() -> None:
    """Mapping documents."""


@mappings.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--force", is_flag=True, help="load changed files over versions edited in the API or console"
)
def mappings_load(directory: Path, force: bool) -> None:
    """Load or update every mapping file in DIRECTORY.

    A file makes a new version only when it changed since it was last loaded; a changed file
    does not replace a newer version edited in the API or the console unless --force.
    """
    _load_mappings(_gateway(), directory, force)


def _load_mappings(gw: Gateway, directory: Path, force: bool = False) -> None:
    import hashlib

    from gateway.mapping.files import load_mapping_files
    from gateway.mapping_store import VersionSource

    loaded = load_mapping_files(directory)
    if not loaded:
        click.echo(f"no mapping files (.json, .yaml, .yml) in {directory}: nothing loaded")
    with Progress("loading mappings", len(loaded)) as progress:
        for path, document in loaded:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            source = VersionSource("file", str(path.resolve()), digest)
            done = gw.mappings.load_file(document, source, force)
            row = done.row
            progress.echo(f"{path.name}: {row.name} v{row.version} ({done.outcome})")
            if done.outcome == "skipped":
                progress.echo(
                    f"  v{row.version} was saved in the {row.source or 'API or console'} and the"
                    f" file would undo it: not loaded (gateway mappings load --force {directory}"
                    " loads it anyway; gateway mappings export DIR writes the newest versions as"
                    " files)"
                )
            progress.advance()


@mappings.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def mappings_export(directory: Path) -> None:
    """Write the newest version of every mapping as a YAML file in DIRECTORY.

    Loading the directory afterwards makes no new version: the files hold the same documents.
    """
    from gateway.mapping.files import write_mapping_files

    rows = _gateway().mappings.latest()
    paths = write_mapping_files(directory, [row.document for row in rows])
    with Progress("exporting mappings", len(rows)) as progress:
        for row, path in zip(rows, paths, strict=True):
            progress.echo(f"{row.name} v{row.version}: {path}")
            progress.advance()
    if not rows:
        click.echo("no mappings: nothing exported")


# --- events ------------------------------------------------------------------------------


@main.group()
def events() -> None:
    """The event log."""


@events.command("replay")
@click.argument("event_ids", nargs=-1)
@click.option("--group", "group_id", help="only events of this group")
@click.option("--type", "event_type", help="only events of this type")
@click.option(
    "--status",
    "status",
    multiple=True,
    help="only events with this status (repeat it, or comma-separate, for several)",
)
@click.option("--since", help="ISO time")
@click.option("--until", help="ISO time")
@click.option("--all", "every_event", is_flag=True, help="replay without any filter: the whole log")
@click.option("--dry-run", is_flag=True, help="only count the events that match")
def events_replay(
    event_ids: tuple[str, ...],
    group_id: str | None,
    event_type: str | None,
    status: tuple[str, ...],
    since: str | None,
    until: str | None,
    every_event: bool,
    dry_run: bool,
) -> None:
    """Queue events again: the ones named, or every one matching the filters.

    Events delivered, ignored, stale or held are taken only when --status names them. An event
    of a paused group is held again: it runs once the group is resumed.
    """
    from gateway import event_log
    from gateway.models import EventStatus

    filters = {
        "group_id": group_id,
        "type": event_type,
        "status": status,
        "since": since,
        "until": until,
    }
    given = {k: v for k, v in filters.items() if v}
    if event_ids and (given or every_event or dry_run):
        # Replaying the named events regardless would ignore what the admin asked to narrow.
        raise click.UsageError(
            "give event ids or filter options (--group, --type, --status, --since, --until,"
            " --all, --dry-run), not both"
        )
    gw = _gateway()
    if event_ids:
        statuses = []
        with Progress("replaying", len(event_ids), "events") as progress:
            for event_id in event_ids:
                statuses.append(event_log.replay(gw, event_id).status)
                progress.advance()
        done = event_log.Replayed(
            len(statuses),
            statuses.count(EventStatus.IGNORED),
            held=statuses.count(EventStatus.HELD),
        )
    else:
        # One transaction: all the matching events are taken again, or none.
        with Progress("replaying the events that match"):
            done = event_log.replay_matching(gw, given, every_event=every_event, dry_run=dry_run)
    if done.dry_run:
        click.echo(f"would replay {_events(done.matched)} (--dry-run: none replayed)")
        return
    click.echo(f"replayed {_events(done.replayed)}")
    if done.ignored:
        click.echo(f"{done.ignored} stay ignored: their group does not register their type")
    if done.held:
        click.echo(f"{done.held} held: their group is paused; they run once it is resumed")


@events.command("purge")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=0),
    default=None,
    help="default GATEWAY_RETENTION_DAYS",
)
@click.option("--include-failed", is_flag=True, help="also failed and dead events")
@click.option("--dry-run", is_flag=True, help="only count what would be purged")
def events_purge(older_than_days: int | None, include_failed: bool, dry_run: bool) -> None:
    """Delete settled events and their raw deliveries older than the retention age."""
    from datetime import timedelta

    from gateway.retention import purge

    gw = _gateway()
    days = gw.settings.retention_days if older_than_days is None else older_than_days
    with Progress("purging", unit="events and deliveries", step_lines=True) as progress:
        purged = purge(
            gw,
            timedelta(days=days),
            include_failed=include_failed,
            dry_run=dry_run,
            progress=lambda so_far: progress.reached(so_far.events + so_far.deliveries),
        )
    done = "would purge" if dry_run else "purged"
    click.echo(f"{done} {purged.events} events and {purged.deliveries} deliveries")


# --- trying a setup without the provider -------------------------------------------------


@main.command()
@click.argument("group_id")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--event", "event_type", help="event type (picks the connector's sample payload)")
@click.option("--url", help="post here instead of the group's callback URL")
def send(group_id: str, file: Path | None, event_type: str | None, url: str | None) -> None:
    """Sign a payload exactly as the group's connector would and post it to the group.

    Without FILE the connector's sample for --event (default: the group's first registered
    event that has a sample) is sent. With FILE its bytes are sent as they are; --event is then
    only needed by senders that carry the event type in a header (GitHub, Shopify).
    """
    from gateway.errors import Conflict, ValidationFailed
    from gateway.groups import get_group
    from gateway.sample_sends import sample_for, sign_as_sender

    gw = _gateway()
    try:
        group = get_group(gw, group_id)
        profile = gw.connectors.get(group.connector)
        if file is None:
            body, headers = sample_for(profile, group.events, event_type)
        else:
            body, headers = file.read_bytes(), _sender_headers(profile, event_type)
        sign_as_sender(gw, group, body, headers)
        target = url or gw.callback_url(group.token)
    except ValidationFailed as exc:
        raise click.UsageError(f"{exc.message}; give --event TYPE or a FILE") from exc
    except Conflict as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        gw.close()
    try:
        response = requests.post(target, data=body, headers=headers, timeout=30)
    except requests.RequestException as exc:
        raise click.ClickException(f"cannot post to {target}: {exc}") from exc
    click.echo(f"{response.status_code} {response.text.strip()}")
    if response.status_code >= 400:
        sys.exit(1)


def _sender_headers(profile: Any, event_type: str | None) -> dict[str, str]:
    """The headers the connector's sender puts beside a body: type, a fresh id, the time."""
    import uuid
    from datetime import UTC, datetime

    from gateway.connectors import DEFAULT_CONTENT_TYPES

    document = profile.document
    events = document["events"]
    headers = {"Content-Type": document.get("content_types", DEFAULT_CONTENT_TYPES)[0]}
    if "header" in events["type"]:
        if not event_type:
            raise click.UsageError(
                f"{profile.name} sends the event type in the {events['type']['header']} header:"
                " give --event TYPE"
            )
        headers[events["type"]["header"]] = event_type
    if "header" in events.get("id", {}):
        headers[events["id"]["header"]] = str(uuid.uuid4())
    if "header" in events.get("timestamp", {}):
        moment = datetime.now(UTC)
        unit = events["timestamp"]["unit"]
        headers[events["timestamp"]["header"]] = (
            moment.isoformat(timespec="seconds")
            if unit == "iso"
            else str(int(moment.timestamp() * (1000 if unit == "ms" else 1)))
        )
    return headers


@main.command()
def token() -> None:
    """Print the admin token (generated under instance/ when none is configured)."""
    click.echo(_gateway().settings.admin_token)


install_remote_commands(main)
