"""The CLI's admin operations over the admin API of a gateway served on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask, request, request_finished
from werkzeug.serving import make_server

from gateway import remote_commands
from gateway.cli import main
from tests.conftest import ADMIN_TOKEN
from tests.integration.test_worker import ITEM_MAPPING, SECRET, moved
from tests.postgres import _free_port


def serve(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def url(app: Flask) -> Iterator[str]:
    yield from serve(app)


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., Result]:
    """``gateway ARGS`` with the admin token in the environment and no config file of the
    user's in the way."""

    def run(*args: str, **env: str | None) -> Result:
        environment = {
            "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "GATEWAY_URL": None,
            "GATEWAY_CLI_CONFIG": str(tmp_path / "absent.toml"),
            **env,
        }
        return CliRunner().invoke(main, list(args), env=environment)

    return run


@pytest.fixture
def answered(app: Flask) -> Iterator[Callable[..., threading.Event]]:
    """``answered(path, method)``: an Event set once the server has answered such a request."""
    receivers: list[Callable[..., None]] = []

    def watch(path: str, method: str = "GET") -> threading.Event:
        done = threading.Event()

        def note(sender: Flask, **extra: Any) -> None:
            if request.path == f"/api/v1{path}" and request.method == method:
                done.set()

        receivers.append(note)
        request_finished.connect(note, app)
        return done

    yield watch
    for receiver in receivers:
        request_finished.disconnect(receiver, app)


def in_background(wait_for: threading.Event, action: Callable[[], Any]) -> threading.Thread:
    def run() -> None:
        assert wait_for.wait(30)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture
def setup(admin: Any, group_factory: Any) -> dict[str, Any]:
    """A Xemelgo group whose inventory.moved events become Item__c records."""
    assert admin.put("/mappings/items", ITEM_MAPPING).status_code == 201
    group = group_factory(secret=SECRET, events=["inventory.moved"])
    response = admin.post(
        f"/webhooks/{group['template_webhook_id']}/clone",
        {"label": "Moves", "events": ["inventory.moved"], "mapping": "items"},
    )
    assert response.status_code == 201
    return group


def test_groups_create_list_and_show(url: str, cli: Callable[..., Result], tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("remote-cli-secret-0123456789\n")
    created = cli(
        "groups", "create", "--url", url, "--name", "Dock doors", "--connector", "xemelgo",
        "--function", "webhooks", "--event", "inventory.moved", "--secret-file", str(secret),
        "--json",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    group = json.loads(created.output)
    assert group["secret_hint"].endswith("6789")

    listed = cli("groups", "list", "--url", url)
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.splitlines()
    assert header.split() == ["id", "name", "connector", "function", "active", "events"]
    assert row.startswith(group["id"]) and "Dock doors" in row and "inventory.moved" in row

    shown = cli("groups", "show", group["id"], "--url", url)
    assert f"callback_url: {group['callback_url']}" in shown.output.splitlines()
    assert json.loads(cli("groups", "list", "--url", url, "--json").output) == [
        json.loads(cli("groups", "show", group["id"], "--url", url, "--json").output)
    ]


def test_events_list_and_show(
    url: str, cli: Callable[..., Result], setup: dict[str, Any], deliver: Any, worker: Any
) -> None:
    deliver(setup, moved("A-1", "Dock 3", 1765572297000))
    worker.drain()

    listed = json.loads(cli("events", "list", "--url", url, "--json").output)
    assert [(e["type"], e["status"]) for e in listed] == [("inventory.moved", "delivered")]
    table = cli("events", "list", "--url", url, "--status", "delivered").output.splitlines()
    assert table[0].split() == ["id", "group_id", "type", "status", "attempts", "received_at"]
    assert table[1].split()[:4] == [listed[0]["id"], setup["id"], "inventory.moved", "delivered"]
    assert cli("events", "list", "--url", url, "--status", "failed").output == "(none)\n"

    shown = cli("events", "show", listed[0]["id"], "--url", url)
    assert shown.exit_code == 0, shown.output
    assert "status: delivered" in shown.output.splitlines()
    assert '"itemId": "A-1"' in shown.output


def test_an_api_error_is_shown_as_its_code_and_message(
    url: str, cli: Callable[..., Result]
) -> None:
    result = cli("groups", "show", "no-such-group", "--url", url)
    assert result.exit_code == 1
    assert result.output.startswith("Error: not_found: ")
    assert "Traceback" not in result.output


def test_a_wrong_token_is_the_api_s_401(url: str, cli: Callable[..., Result]) -> None:
    result = cli("groups", "list", "--url", url, GATEWAY_ADMIN_TOKEN="not-the-token")
    assert result.exit_code == 1
    assert result.output.startswith("Error: unauthorized")


def test_a_remote_gateway_without_a_token_is_refused_before_any_call(
    cli: Callable[..., Result],
) -> None:
    result = cli("groups", "list", "--url", "http://127.0.0.1:9", GATEWAY_ADMIN_TOKEN=None)
    assert result.exit_code == 1
    assert result.output.startswith("Error: configuration_error: no admin token for http")


def test_an_unreachable_gateway_is_one_line(cli: Callable[..., Result]) -> None:
    result = cli("events", "list", "--url", f"http://127.0.0.1:{_free_port()}")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith("Error: unreachable: cannot reach http://127.0.0.1:")


@pytest.mark.parametrize(
    ("mode", "works"),
    [
        (0o600, True),  # the owner's alone, as ssh wants a private key
        (0o640, False),  # the group may read the token
        (0o644, False),  # everyone may read it
    ],
)
def test_a_token_file_others_may_read_is_refused(
    url: str, cli: Callable[..., Result], tmp_path: Path, mode: int, works: bool
) -> None:
    config = tmp_path / "cli.toml"
    config.write_text(f'url = "{url}"\ntoken = "{ADMIN_TOKEN}"\n')
    config.chmod(mode)
    result = cli("groups", "list", GATEWAY_CLI_CONFIG=str(config), GATEWAY_ADMIN_TOKEN=None)
    assert (result.exit_code == 0) is works, result.output
    if not works:
        assert f"chmod 600 {config}" in result.output


def test_tail_follows_a_new_event_through_to_delivered(
    answered: Callable[..., threading.Event],
    url: str,
    cli: Callable[..., Result],
    setup: dict[str, Any],
    deliver: Any,
    worker: Any,
) -> None:
    deliver(setup, moved("OLD-1", "Dock 1", 1765572290000))
    worker.drain()
    started = answered("/events")

    def new_event() -> None:
        deliver(setup, moved("NEW-1", "Dock 2", 1765572297000))
        worker.drain()

    thread = in_background(started, new_event)
    result = cli("events", "tail", "--url", url, "--max-events", "1", "--interval", "0.05")
    thread.join()

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1].endswith("inventory.moved  delivered")
    assert all(line.split()[1:3] == ["event", lines[-1].split()[2]] for line in lines)
    assert len(lines) <= 3  # pending and processing may pass between two polls


def test_tail_stops_after_max_seconds_with_nothing_new(
    url: str, cli: Callable[..., Result]
) -> None:
    result = cli("events", "tail", "--url", url, "--max-seconds", "0", "--json")
    assert (result.exit_code, result.output) == (0, "")


@pytest.mark.parametrize(
    ("on_terminal", "progress"),
    [
        (False, r"event {id} delivered\n"),  # plain lines for logs and pipes
        (True, r"(\rsettled 0/1)*\rsettled 1/1\n"),  # one line rewritten in place for a person
    ],
)
def test_replay_follow_shows_the_replayed_event_settle(
    answered: Callable[..., threading.Event],
    url: str,
    cli: Callable[..., Result],
    setup: dict[str, Any],
    deliver: Any,
    worker: Any,
    admin: Any,
    monkeypatch: pytest.MonkeyPatch,
    on_terminal: bool,
    progress: str,
) -> None:
    monkeypatch.setattr(remote_commands, "_on_terminal", lambda: on_terminal)
    deliver(setup, moved("A-1", "Dock 3", 1765572297000))
    worker.drain()
    event_id = admin.get("/events").get_json()["items"][0]["id"]
    thread = in_background(answered(f"/events/{event_id}/replay", "POST"), worker.drain)

    result = cli("events", "replay", event_id, "--url", url, "--follow")
    thread.join()

    assert result.exit_code == 0, result.output
    summary = "replayed: 1\nignored: 0\nheld: 0\nsettled: 1 delivered\n"
    assert re.fullmatch(progress.format(id=event_id) + summary, result.output)
    assert len(admin.get(f"/events/{event_id}").get_json()["history"]) == 2  # processed again


def test_replay_with_filters_over_the_api_in_json(
    answered: Callable[..., threading.Event],
    url: str,
    cli: Callable[..., Result],
    setup: dict[str, Any],
    deliver: Any,
    worker: Any,
) -> None:
    for item in ("A-1", "A-2"):
        deliver(setup, moved(item, "Dock 3", 1765572297000))
    worker.drain()
    thread = in_background(answered("/events/replay", "POST"), worker.drain)

    result = cli(
        "events", "replay", "--group", setup["id"], "--status", "delivered", "--follow", "--json",
        GATEWAY_URL=url,
    )  # fmt: skip
    thread.join()

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "replayed": 2,
        "ignored": 0,
        "matched": 2,
        "dry_run": False,
        "held": 0,
        "outcomes": {"delivered": 2},
    }


def test_replay_without_a_remote_gateway_acts_on_the_local_database(
    cli: Callable[..., Result], settings: Any, setup: dict[str, Any], deliver: Any, admin: Any
) -> None:
    deliver(setup, moved("A-1", "Dock 3", 1765572297000))
    event_id = admin.get("/events").get_json()["items"][0]["id"]

    result = cli(
        "events", "replay", event_id,
        GATEWAY_DATABASE_URL=settings.database_url,
        GATEWAY_SECRET_KEY=settings.secret_key,
    )  # fmt: skip

    assert (result.exit_code, result.output) == (0, "replayed 1 event\n")


def test_deliveries_list(
    url: str,
    cli: Callable[..., Result],
    admin: Any,
    group_factory: Callable[..., dict[str, Any]],
    deliver: Callable[..., Any],
) -> None:
    group = group_factory()
    other = group_factory(name="Other group")
    body = b'{"id": "c-1", "topic": "inventory.cycle_count", "eventTimestamp": 1765572297000}'
    assert deliver(group, body).status_code == 200
    assert deliver(group, body, secret="not-the-secret").status_code == 401
    assert deliver(other, body, secret="not-the-secret").status_code == 401

    table = cli("deliveries", "list", "--url", url, "--outcome", "refused", "--group", group["id"])
    everything = cli("deliveries", "list", "--url", url, "--json")

    (header, row) = table.output.splitlines()
    (refused,) = admin.get(
        "/deliveries", query_string={"outcome": "refused", "group_id": group["id"]}
    ).get_json()["items"]
    assert header.split() == list(remote_commands.DELIVERY_COLUMNS)
    assert row.split() == [
        refused["id"], group["id"], "refused", "401", "signature_mismatch",
        refused["received_at"], str(len(body)),
    ]  # fmt: skip
    listed = json.loads(everything.output)
    assert listed == admin.get("/deliveries").get_json()["items"]
    assert [(d["group_id"], d["outcome"]) for d in listed] == [
        (other["id"], "refused"),
        (group["id"], "refused"),
        (group["id"], "accepted"),
    ]
