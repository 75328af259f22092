"""The command line: replaying events and loading mappings as admins do from a shell."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway import cli
from gateway.services import Gateway
from tests.postgres import _free_port

SECRET = "cli-test-secret-0123456789abcdef"


def test_db_upgrade_says_whether_it_applied_migrations(
    run: Any, gw: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = Gateway(gw.settings.with_overrides({"database_url": f"sqlite:///{tmp_path}/new.db"}))
    monkeypatch.setattr(cli, "_gateway", lambda: empty)

    first = run("db", "upgrade").output
    again = run("db", "upgrade").output

    head = first.strip().rsplit(" ", 1)[-1]
    assert "upgraded from revision none to " in first
    assert again.strip().endswith(f"is up to date (revision {head})")


def test_replay_by_status_queues_every_matching_event(
    run: Any, admin: Any, failed_events: list[str]
) -> None:
    result = run("events", "replay", "--status", "failed")

    assert "replayed 2 events" in result.output
    statuses = sorted(e["status"] for e in admin.get("/events").get_json()["items"])
    assert statuses == ["pending", "pending", "unrouted"]


def test_replay_by_id_queues_just_those(run: Any, admin: Any, failed_events: list[str]) -> None:
    result = run("events", "replay", failed_events[0])

    assert "replayed 1 event" in result.output
    assert admin.get(f"/events/{failed_events[0]}").get_json()["status"] == "pending"
    assert admin.get(f"/events/{failed_events[1]}").get_json()["status"] == "failed"


@pytest.mark.parametrize(
    "options",
    [
        ["--status", "failed"],
        ["--group", "g"],
        ["--type", "inventory.moved"],
        ["--since", "2026-01-01T00:00:00Z"],
        ["--until", "2026-01-01T00:00:00Z"],
        ["--all"],
        ["--dry-run"],
    ],
)
def test_replaying_ids_and_filters_at_once_is_refused(
    gw: Any,
    monkeypatch: pytest.MonkeyPatch,
    admin: Any,
    failed_events: list[str],
    options: list[str],
) -> None:
    monkeypatch.setattr(cli, "_gateway", lambda: gw)
    before = admin.get("/events").get_json()["items"]

    result = CliRunner().invoke(cli.main, ["events", "replay", failed_events[0], *options])

    assert result.exit_code == 2
    assert (
        "Error: give event ids or filter options (--group, --type, --status, --since, --until,"
        " --all, --dry-run), not both" in result.output
    )
    assert admin.get("/events").get_json()["items"] == before


def test_replaying_an_unknown_event_is_a_clear_error(gw: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(cli, "_gateway", lambda: gw)

    result = CliRunner().invoke(cli.main, ["events", "replay", "424242"])

    assert result.exit_code == 1
    assert "Error: not_found: no event '424242'" in result.output


@pytest.mark.parametrize("by_id", [True, False], ids=["by id", "by status"])
def test_replay_keeps_an_event_ignored_while_its_group_does_not_register_its_type(
    run: Any, admin: Any, group_factory: Any, deliver: Any, by_id: bool
) -> None:
    group = group_factory(secret=SECRET, events=["inventory.cycle_count"])
    body = {"id": "m-1", "eventTimestamp": 1, "topic": "inventory.moved", "data": {}}
    deliver(group, json.dumps(body).encode())
    (event,) = admin.get("/events").get_json()["items"]

    result = run("events", "replay", *([event["id"]] if by_id else ["--status", "ignored"]))

    assert result.output.splitlines() == [
        "replayed 1 event",
        "1 stay ignored: their group does not register their type",
    ]
    assert admin.get(f"/events/{event['id']}").get_json()["status"] == "ignored"


# --- loading mappings --------------------------------------------------------------------

STOCK = {
    "upserts": [
        {
            "key": "balance",
            "object": "Stock__c",
            "external_id_field": "Product_Number__c",
            "external_id": "payload.ProductNumber",
            "fields": {"Quantity__c": "number(payload.Quantity)"},
        }
    ]
}


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "mappings"
    directory.mkdir()
    (directory / "stock.json").write_text(json.dumps(STOCK), encoding="utf-8")
    return directory


def test_loading_mappings_makes_a_version_only_when_a_file_changed(
    run: Any, mappings_dir: Path
) -> None:
    first = run("mappings", "load", str(mappings_dir))
    again = run("mappings", "load", str(mappings_dir))

    assert first.output == "stock.json: stock v1 (new version)\n"
    assert again.output == "stock.json: stock v1 (unchanged)\n"


def _edited(admin: Any, quantity: str) -> dict[str, Any]:
    """STOCK with another Quantity__c expression, saved through the admin API."""
    edit = json.loads(json.dumps(STOCK))
    edit["upserts"][0]["fields"]["Quantity__c"] = quantity
    response = admin.put("/mappings/stock", edit)
    assert response.status_code == 200, response.get_json()
    return edit


def test_reloading_files_keeps_a_mapping_edited_in_the_api(
    run: Any, admin: Any, mappings_dir: Path
) -> None:
    """As a restart of ``gateway run`` does: the file is the one it loaded before the edit."""
    run("mappings", "load", str(mappings_dir))
    _edited(admin, "number(payload.Count)")

    again = run("mappings", "load", str(mappings_dir))

    assert again.output == "stock.json: stock v2 (unchanged)\n"
    assert admin.get("/mappings/stock").get_json()["version"] == 2


def test_a_changed_file_does_not_replace_an_api_edit_unless_forced(
    run: Any, admin: Any, mappings_dir: Path
) -> None:
    run("mappings", "load", str(mappings_dir))
    _edited(admin, "number(payload.Count)")
    changed = json.loads(json.dumps(STOCK))
    changed["upserts"][0]["fields"]["Quantity__c"] = "number(payload.Qty)"
    (mappings_dir / "stock.json").write_text(json.dumps(changed), encoding="utf-8")

    skipped = run("mappings", "load", str(mappings_dir)).output
    assert admin.get("/mappings/stock").get_json()["version"] == 2
    forced = run("mappings", "load", "--force", str(mappings_dir)).output

    assert skipped.splitlines()[0] == "stock.json: stock v2 (skipped)"
    assert "v2 was saved in the api and the file would undo it: not loaded" in skipped
    assert "--force" in skipped
    assert forced == "stock.json: stock v3 (new version)\n"
    stored = admin.get("/mappings/stock").get_json()
    assert stored["upserts"][0]["fields"]["Quantity__c"] == "number(payload.Qty)"


def test_a_file_changed_after_it_was_loaded_makes_a_new_version(
    run: Any, admin: Any, mappings_dir: Path
) -> None:
    run("mappings", "load", str(mappings_dir))
    changed = json.loads(json.dumps(STOCK))
    changed["upserts"][0]["fields"]["Quantity__c"] = "number(payload.Qty)"
    (mappings_dir / "stock.json").write_text(json.dumps(changed), encoding="utf-8")

    result = run("mappings", "load", str(mappings_dir))

    assert result.output == "stock.json: stock v2 (new version)\n"


def test_exported_mappings_load_back_unchanged(
    run: Any, admin: Any, mappings_dir: Path, tmp_path: Path
) -> None:
    import yaml

    run("mappings", "load", str(mappings_dir))
    # Text YAML would read as something else, a JMESPath literal and a key YAML reads as true.
    edit = _edited(admin, "`42`")
    edit["upserts"][0]["fields"]["on"] = "'yes'"
    assert admin.put("/mappings/stock", edit).status_code == 200
    exported = tmp_path / "exported"

    result = run("mappings", "export", str(exported))
    again = run("mappings", "load", str(exported))

    assert result.output == f"stock v3: {exported / 'stock.yaml'}\n"
    assert again.output == "stock.yaml: stock v3 (unchanged)\n"
    document = admin.get("/mappings/stock").get_json()["document"]
    text = (exported / "stock.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(text) == document


def test_loading_a_directory_without_mapping_files_says_nothing_was_loaded(
    run: Any, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("not a mapping", encoding="utf-8")

    result = run("mappings", "load", str(tmp_path))

    assert result.output == f"no mapping files (.json, .yaml, .yml) in {tmp_path}: nothing loaded\n"


def test_gateway_run_refuses_a_mappings_directory_that_is_not_one(
    gw: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli, "_gateway", lambda: gw)

    result = CliRunner().invoke(cli.main, ["run", "--mappings", str(tmp_path / "mapings")])

    assert result.exit_code == 2
    assert "Invalid value for --mappings:" in result.output
    assert "is not a directory" in result.output


def test_loading_mappings_names_every_problem_of_every_bad_file_and_loads_none(
    gw: Any, monkeypatch: pytest.MonkeyPatch, admin: Any, mappings_dir: Path
) -> None:
    monkeypatch.setattr(cli, "_gateway", lambda: gw)
    (mappings_dir / "broken.yaml").write_text("name: broken\nupserts: [\n", encoding="utf-8")
    typo = json.loads(json.dumps(STOCK))
    typo["upserts"][0]["fields"]["Quantity__c"] = "numbr(payload.Quantity)"
    del typo["upserts"][0]["object"]
    (mappings_dir / "typo.json").write_text(json.dumps(typo), encoding="utf-8")

    result = CliRunner().invoke(cli.main, ["mappings", "load", str(mappings_dir)])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: validation_failed: 2 of 3 mapping files cannot be loaded, so none was loaded.",
        "  broken.yaml: cannot be parsed: line 3, column 1: while parsing a flow node,"
        " expected the node content, but found '<stream end>'",
        "  typo.json: upserts[0].object: is required",
        "  typo.json: upserts[0].fields.Quantity__c: unknown function numbr()",
    ]
    assert admin.get("/mappings").get_json()["items"] == []


def test_a_file_the_admin_api_would_refuse_stops_the_whole_load(
    gw: Any, monkeypatch: pytest.MonkeyPatch, admin: Any, mappings_dir: Path
) -> None:
    monkeypatch.setattr(cli, "_gateway", lambda: gw)
    (mappings_dir / "zz-empty.json").write_text('{"upserts": []}', encoding="utf-8")

    result = CliRunner().invoke(cli.main, ["mappings", "load", str(mappings_dir)])

    assert result.exit_code == 1
    assert "  zz-empty.json: upserts: must not be empty" in result.output.splitlines()
    assert admin.get("/mappings").get_json()["items"] == []  # not even the good stock.json


def test_a_jmespath_syntax_error_keeps_its_pointer_under_the_expression(
    gw: Any, monkeypatch: pytest.MonkeyPatch, mappings_dir: Path
) -> None:
    monkeypatch.setattr(cli, "_gateway", lambda: gw)
    broken = json.loads(json.dumps(STOCK))
    broken["upserts"][0]["external_id"] = "payload.["
    (mappings_dir / "stock.json").write_text(json.dumps(broken), encoding="utf-8")

    result = CliRunner().invoke(cli.main, ["mappings", "load", str(mappings_dir)])

    assert result.output.splitlines()[1:] == [
        "  stock.json: upserts[0].external_id: not a valid JMESPath expression: it ends too early",
        '    "payload.["',
        "              ^",
    ]


# --- configuration -----------------------------------------------------------------------

#: Every command, as an admin types it; each must refuse to start on a bad configuration.
COMMANDS = [
    ["token"],
    ["db", "upgrade"],
    ["worker", "--once"],
    ["mappings", "load", "."],
    ["events", "replay", "--status", "failed"],
    ["events", "purge"],
    ["send", "some-group"],
]


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Invoke ``gateway ...`` in an empty directory with just the GATEWAY_* variables given."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("GATEWAY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_INSTANCE_PATH", str(tmp_path / "instance"))

    def invoke(args: list[str], **env: str) -> Any:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return CliRunner().invoke(cli.main, args)

    return invoke


def _refused(result: Any) -> list[str]:
    """The lines of a command that stopped with a message, not with a traceback."""
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    return list(result.output.splitlines())


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_every_command_stops_on_a_bad_setting_with_one_line_naming_it(
    configured: Any, args: list[str]
) -> None:
    result = configured(args, GATEWAY_MAX_BODY_BYTES="abc")

    assert _refused(result) == [
        "Error: configuration_error: GATEWAY_MAX_BODY_BYTES must be a whole number, not 'abc'"
    ]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_help_still_works_on_a_bad_setting_so_that_it_can_be_fixed(
    configured: Any, args: list[str]
) -> None:
    result = configured([*args[:2], "--help"], GATEWAY_MAX_BODY_BYTES="abc")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_RETENTION_DAYS": "x"}, "GATEWAY_RETENTION_DAYS must be a whole number"),
        ({"GATEWAY_WORKER_BATCH_SIZE": "0"}, "GATEWAY_WORKER_BATCH_SIZE must be at least 1"),
        ({"GATEWAY_LOG_FORMAT": "xml"}, "GATEWAY_LOG_FORMAT must be text or json"),
        (
            {"GATEWAY_TARGET": "nowhere"},
            "GATEWAY_TARGET must be local, salesforce, salesforce:<profile>, http or",
        ),
        # only serving uses these, yet a bad one stops every command all the same
        ({"PORT": "70000"}, "PORT must be at most 65535, not '70000'"),
        ({"GATEWAY_WEB_WORKERS": "0"}, "GATEWAY_WEB_WORKERS must be at least 1, not '0'"),
        ({"GATEWAY_DATABASE_URL": "notaurl"}, "GATEWAY_DATABASE_URL cannot be read as a"),
        (
            {"GATEWAY_DATABASE_URL": "postgresql+psycopg2://u:pw@127.0.0.1/db"},
            "GATEWAY_DATABASE_URL names postgresql+psycopg2://; use postgresql+psycopg://",
        ),
        (
            {"GATEWAY_DATABASE_URL": "mysql://u:pw@127.0.0.1/db"},
            "GATEWAY_DATABASE_URL names mysql://; only sqlite:///PATH and"
            " postgresql+psycopg://user:password@host/db are supported",
        ),
    ],
)
def test_a_bad_setting_is_named_with_what_it_should_be(
    configured: Any, env: dict[str, str], message: str
) -> None:
    (line,) = _refused(configured(["token"], **env))

    assert line.startswith(f"Error: configuration_error: {message}")


def test_settings_in_the_dotenv_file_are_checked_too(configured: Any, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GATEWAY_MAX_ATTEMPTS=0\n", encoding="utf-8")

    (line,) = _refused(configured(["token"]))

    assert line == "Error: configuration_error: GATEWAY_MAX_ATTEMPTS must be at least 1, not '0'"


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("a-file", "cannot create the directory {path}: File exists"),
        ("a-file/instance", "cannot create the directory {path}: Not a directory"),
        ("/proc/gateway-instance", "cannot create the directory {path}: No such file or directory"),
        # refused to root too (EPERM), and to others (EACCES)
        ("/sys/gateway-instance", "cannot create the directory {path}: "),
        # it exists, but nothing can be created in it
        ("/proc", "cannot create {path}/admin-token: No such file or directory"),
    ],
)
def test_an_instance_path_that_cannot_hold_the_instance_is_named(
    configured: Any, tmp_path: Path, where: str, reason: str
) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    path = tmp_path / where

    (line,) = _refused(configured(["token"], GATEWAY_INSTANCE_PATH=str(path)))

    assert line.startswith(
        f"Error: configuration_error: GATEWAY_INSTANCE_PATH: {reason.format(path=path)}"
    )


@pytest.mark.parametrize(
    ("name", "variable"),
    [("admin-token", "GATEWAY_ADMIN_TOKEN"), ("secret-key", "GATEWAY_SECRET_KEY")],
)
def test_an_empty_generated_file_is_named_with_the_way_out(
    configured: Any, tmp_path: Path, name: str, variable: str
) -> None:
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / name).write_text("", encoding="utf-8")

    (line,) = _refused(configured(["token"]))

    assert line.startswith(
        f"Error: configuration_error: {tmp_path / 'instance' / name} is empty;"
        f" delete it to have a new one generated, or set {variable}"
    )


def test_db_upgrade_names_the_database_it_cannot_reach_without_its_password(
    configured: Any,
) -> None:
    where = f"postgresql+psycopg://gateway:***@127.0.0.1:{_free_port()}/gateway"

    lines = _refused(
        configured(["db", "upgrade"], GATEWAY_DATABASE_URL=where.replace("***", "hunter2"))
    )

    assert lines[0] == f"Error: database_unavailable: the database at {where} cannot be reached"
    assert "Connection refused" in "\n".join(lines[1:])  # the driver's reason, indented
    assert all(line.startswith("  ") for line in lines[1:])
    assert "hunter2" not in "\n".join(lines)


def test_db_upgrade_names_a_sqlite_file_it_cannot_open(configured: Any) -> None:
    lines = _refused(configured(["db", "upgrade"], GATEWAY_DATABASE_URL="sqlite:////proc/gw.db"))

    assert lines == [
        "Error: database_unavailable: the database at sqlite:////proc/gw.db cannot be opened",
        "  unable to open database file",
    ]


def test_a_sqlite_directory_that_cannot_be_created_is_named(configured: Any) -> None:
    (line,) = _refused(configured(["token"], GATEWAY_DATABASE_URL="sqlite:////proc/gw/gw.db"))

    assert line == (
        "Error: configuration_error: GATEWAY_DATABASE_URL: cannot create the directory"
        " /proc/gw: No such file or directory"
    )


def test_db_upgrade_to_a_revision_that_does_not_exist_is_refused(configured: Any) -> None:
    lines = _refused(configured(["db", "upgrade", "--revision", "bogus"]))

    assert lines == [
        "Error: migration_failed: cannot upgrade the database to revision 'bogus':"
        " Can't locate revision identified by 'bogus'"
    ]
