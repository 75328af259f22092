"""The CLI's admin operations over the admin API, so that they reach a gateway anywhere.

The gateway is ``--url``, else ``GATEWAY_URL``, else the ``url`` of the config file
(``~/.config/gateway/cli.toml``), else the local one as ``gateway token`` knows it. Output is a
table for people and ``--json`` for scripts; errors are the API's own code and message.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import click

from gateway.client import Client, connection, remote_url

#: Statuses an event leaves by itself: anything else is where it ends up until someone acts.
IN_FLIGHT = ("pending", "processing")
EVENT_COLUMNS = ("id", "group_id", "type", "status", "attempts", "received_at")
GROUP_COLUMNS = ("id", "name", "connector", "function", "active", "events")
DELIVERY_COLUMNS = ("id", "group_id", "outcome", "status", "error_code", "received_at", "size")
POLL_S = 1.0

url_option = click.option(
    "--url",
    default=None,
    help="the gateway (default GATEWAY_URL, else the config file's url, else the local one)",
)
json_option = click.option("--json", "as_json", is_flag=True, help="JSON for scripts")
limit_option = click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="at most this many"
)
F = TypeVar("F", bound=Callable[..., Any])


def list_options(command: F) -> F:
    """The options every list takes: its time window, the gateway, the output and the limit."""
    for option in reversed(
        (
            click.option("--since", help="ISO time"),
            click.option("--until", help="ISO time"),
            url_option,
            json_option,
            limit_option,
        )
    ):
        command = option(command)
    return command


def install(main: click.Group) -> None:
    """Add the remote commands to ``gateway``; ``gateway events replay`` learns ``--url``."""
    main.add_command(groups)
    main.add_command(deliveries)
    events = main.commands["events"]
    assert isinstance(events, click.Group)
    for command in (events_list, events_show, events_tail):
        events.add_command(command)
    events.add_command(remote_replay(events.commands["replay"]))


def _client(url: str | None) -> Client:
    return Client(connection(url))


# --- output ------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _table(items: list[dict[str, Any]], columns: Iterable[str]) -> None:
    """A plain aligned table, one row per item, or a line saying there is none."""
    columns = list(columns)
    if not items:
        click.echo("(none)")
        return
    rows = [columns, *([_cell(item.get(c)) for c in columns] for item in items)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _fields(document: dict[str, Any]) -> None:
    """One ``name: value`` line per field; nested values as indented JSON."""
    for name, value in document.items():
        flat = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if isinstance(value, dict | list) and value and not flat:
            text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
            click.echo(f"{name}:\n  {text}")
        else:
            click.echo(f"{name}: {_cell(value)}")


def _emit(payload: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        human()


def _first(items: Iterator[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    return [item for _, item in zip(range(limit), items, strict=False)]


def _show_command(noun: str, path: str, help_text: str) -> click.Command:
    """``show ID``: the API's ``GET path/ID`` as fields, or as JSON."""

    @click.command("show", help=help_text)
    @click.argument("item_id", metavar=f"{noun.upper()}_ID")
    @url_option
    @json_option
    def show(item_id: str, url: str | None, as_json: bool) -> None:
        item = _client(url).get(f"{path}/{item_id}")
        _emit(item, as_json, lambda: _fields(item))

    return show


# --- groups ------------------------------------------------------------------------------


@click.group()
def groups() -> None:
    """Groups of a gateway, through its admin API."""


@groups.command("list")
@url_option
@json_option
@limit_option
def groups_list(url: str | None, as_json: bool, limit: int) -> None:
    """List the groups."""
    items = _first(_client(url).each("/groups"), limit)
    _emit(items, as_json, lambda: _table(items, GROUP_COLUMNS))


groups.add_command(_show_command("group", "/groups", "Show one group."))


@groups.command("create")
@click.option("--name", required=True, help="the group's name, as admins see it")
@click.option("--connector", required=True, help="connector profile, as GET /connectors names it")
@click.option("--function", "function", required=True, help="the connector's function")
@click.option("--event", "events", multiple=True, required=True, help="event type (repeatable)")
@click.option("--external-id", default=None, help="the group's id in the sender's system")
@click.option(
    "--secret-file",
    type=click.File("r"),
    default=None,
    help="read the signing secret from this file ('-' for stdin), never from the command line",
)
@url_option
@json_option
def groups_create(
    name: str,
    connector: str,
    function: str,
    events: tuple[str, ...],
    external_id: str | None,
    secret_file: Any,
    url: str | None,
    as_json: bool,
) -> None:
    """Create a group; prints its callback URL, which the provider is given."""
    body: dict[str, Any] = {
        "name": name,
        "connector": connector,
        "function": function,
        "events": list(events),
    }
    if external_id:
        body["external_id"] = external_id
    if secret_file is not None:
        body["secret"] = secret_file.read().strip()
    group = _client(url).post("/groups", body)
    _emit(group, as_json, lambda: _fields(group))


# --- deliveries --------------------------------------------------------------------------


@click.group()
def deliveries() -> None:
    """Deliveries as a gateway received them, through its admin API."""


@deliveries.command("list")
@click.option("--group", "group_id", help="only deliveries to this group")
@click.option(
    "--outcome", type=click.Choice(["accepted", "refused"]), help="only accepted or refused ones"
)
@list_options
def deliveries_list(
    group_id: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
    url: str | None,
    as_json: bool,
    limit: int,
) -> None:
    """List deliveries, newest first."""
    filters = {"group_id": group_id, "outcome": outcome, "since": since, "until": until}
    items = _first(_client(url).each("/deliveries", **filters), limit)
    _emit(items, as_json, lambda: _table(items, DELIVERY_COLUMNS))


# --- events ------------------------------------------------------------------------------


def _statuses(given: Iterable[str]) -> list[str]:
    """``--status`` repeated or comma-separated, as the local commands take it."""
    return [s for value in given for s in value.split(",") if s]


@click.command("list")
@click.option("--group", "group_id", help="only events of this group")
@click.option("--type", "event_type", help="only events of this type")
@click.option("--status", multiple=True, help="only this status (repeat or comma-separate)")
@list_options
def events_list(
    group_id: str | None,
    event_type: str | None,
    status: tuple[str, ...],
    since: str | None,
    until: str | None,
    url: str | None,
    as_json: bool,
    limit: int,
) -> None:
    """List events, newest first (through the admin API)."""
    filters = {
        "group_id": group_id,
        "type": event_type,
        "status": _statuses(status),
        "since": since,
        "until": until,
    }
    items = _first(_client(url).each("/events", **filters), limit)
    _emit(items, as_json, lambda: _table(items, EVENT_COLUMNS))


events_show = _show_command(
    "event",
    "/events",
    "Show one event: payload, headers and processing history (through the admin API).",
)


@click.command("tail")
@click.option("--group", "group_id", help="only events of this group")
@click.option("--type", "event_type", help="only events of this type")
@click.option(
    "--max-seconds", type=click.FloatRange(min=0), default=None, help="stop after this long"
)
@click.option(
    "--max-events",
    type=click.IntRange(min=1),
    default=None,
    help="stop once this many new events have left pending and processing",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=POLL_S,
    show_default=True,
    help="seconds between polls",
)
@url_option
@json_option
def events_tail(
    group_id: str | None,
    event_type: str | None,
    max_seconds: float | None,
    max_events: int | None,
    interval: float,
    url: str | None,
    as_json: bool,
) -> None:
    """Follow new events and their outcomes as they happen, until Ctrl-C.

    One line when an event arrives and one each time its status changes; with --json, each
    line is the event as GET /api/v1/events lists it.
    """
    client = _client(url)
    filters = {"group_id": group_id, "type": event_type}
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    tail = Tail(client, filters)
    try:
        while True:
            for event in tail.changes():
                _tail_line(event, as_json)
            if max_events is not None and len(tail.done) >= max_events:
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return


class Tail:
    """The events newer than when it started, and the status each was last seen with.

    It starts from the newest event's own time on the gateway's clock, not this machine's,
    and leaves out the events already there at that time, in one read.
    """

    def __init__(self, client: Client, filters: dict[str, Any]) -> None:
        self.client = client
        self.filters = filters
        page = client.get("/events", limit=500, **filters)["items"]
        self.since = page[0]["received_at"] if page else None
        self.before = {e["id"] for e in page if e["received_at"] == self.since}
        self.seen: dict[str, str] = {}
        self.done: set[str] = set()

    def _current(self) -> Iterator[dict[str, Any]]:
        return self.client.each("/events", **self.filters, since=self.since, limit=500)

    def changes(self) -> list[dict[str, Any]]:
        """The events that arrived or changed status since the last call, oldest first."""
        changed = []
        for event in self._current():
            if event["id"] in self.before or self.seen.get(event["id"]) == event["status"]:
                continue
            if event["status"] not in IN_FLIGHT:
                self.done.add(event["id"])
            self.seen[event["id"]] = event["status"]
            changed.append(event)
        return changed[::-1]


def _tail_line(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(event, ensure_ascii=False))
        return
    error = f"  {event['last_error']}" if event.get("last_error") else ""
    click.echo(
        f"{event['received_at']}  event {event['id']}  {event['type']}  {event['status']}{error}"
    )


# --- replay: local or remote -------------------------------------------------------------


def remote_replay(local: click.Command) -> click.Command:
    """``gateway events replay`` acting on the local database as before, or through the admin
    API of the gateway ``--url``, ``GATEWAY_URL`` or the config file names, or when --follow
    or --json asks for what only the API tells."""
    if local.callback is None:
        raise TypeError("gateway events replay has no callback")
    act_locally = local.callback

    def replay(url: str | None, follow: bool, as_json: bool, **given: Any) -> None:
        if not (follow or as_json) and remote_url(url, os.environ) is None:
            act_locally(**given)
            return
        _replay_remote(_client(url), given, follow, as_json)

    remote = click.Command(
        local.name,
        callback=replay,
        params=[*local.params, *_replay_options()],
        help=(local.help or "")
        + "\n\nWith --url (or GATEWAY_URL, or a url in the config file) it goes through that"
        " gateway's admin API instead of the local database; so does --follow, which shows"
        " the replayed events until each has settled, and --json.",
        short_help=local.short_help,
    )
    return remote


def _replay_options() -> list[click.Parameter]:
    return [
        click.Option(["--url"], default=None, help="replay on this gateway, over its admin API"),
        click.Option(
            ["--follow"], is_flag=True, help="show progress until the replayed events settle"
        ),
        click.Option(["--json", "as_json"], is_flag=True, help="JSON for scripts"),
    ]


def _replay_remote(client: Client, given: dict[str, Any], follow: bool, as_json: bool) -> None:
    event_ids = list(given.get("event_ids") or ())
    filters = {
        "group_id": given.get("group_id"),
        "type": given.get("event_type"),
        "status": _statuses(given.get("status") or ()),
        "since": given.get("since"),
        "until": given.get("until"),
        "all": given.get("every_event"),
        "dry_run": given.get("dry_run"),
    }
    filters = {k: v for k, v in filters.items() if v}
    if event_ids and filters:
        raise click.UsageError("give event ids or filter options, not both")
    if event_ids:
        answers = [client.post(f"/events/{event_id}/replay") for event_id in event_ids]
        done: dict[str, Any] = {
            "replayed": len(answers),
            "ignored": sum(a["status"] == "ignored" for a in answers),
            "held": sum(a["status"] == "held" for a in answers),
        }
    else:
        wanted = {k: v for k, v in filters.items() if k not in ("all", "dry_run")}
        if follow:
            event_ids = [e["id"] for e in client.each("/events", **wanted, limit=500)]
        done = client.post("/events/replay", filters)
    if follow and not filters.get("dry_run"):
        done["outcomes"] = _follow(client, event_ids, quiet=as_json)
    _emit(done, as_json, lambda: _replay_summary(done))


def _replay_summary(done: dict[str, Any]) -> None:
    for name, value in done.items():
        if name == "outcomes":
            counts = ", ".join(f"{n} {status}" for status, n in sorted(value.items()))
            click.echo(f"settled: {counts or 'nothing to follow'}")
        else:
            click.echo(f"{name}: {value}")


def _on_terminal() -> bool:
    """Whether a person watches the output, who a rewritten progress line serves."""
    return sys.stdout.isatty()


def _follow(client: Client, event_ids: list[str], *, quiet: bool) -> dict[str, int]:
    """Poll the events until none is pending or processing; a count of where they ended.

    On a terminal one line keeps being rewritten; otherwise a plain line per settled event.
    """
    on_terminal = _on_terminal() and not quiet
    waiting = list(event_ids)
    outcomes: dict[str, int] = {}
    while waiting:
        still = []
        for event_id in waiting:
            status = client.get(f"/events/{event_id}")["status"]
            if status in IN_FLIGHT:
                still.append(event_id)
                continue
            outcomes[status] = outcomes.get(status, 0) + 1
            if not (on_terminal or quiet):
                click.echo(f"event {event_id} {status}")
        waiting = still
        if on_terminal:
            settled = len(event_ids) - len(waiting)
            click.echo(f"\rsettled {settled}/{len(event_ids)}", nl=not waiting)
        if waiting:
            time.sleep(POLL_S)
    return outcomes
