"""gunicorn's settings: read from the same environment as the gateway's, ``.env`` included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ServerSettings, environment
from gateway.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
#: Prints what gunicorn would read from the config module ``gateway serve`` gives it.
READ = "from gateway import gunicorn_config as c; print(c.bind, c.workers, c.worker_connections)"


def _gunicorn_config(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Import the config module as gunicorn's master does, in ``cwd``, with just ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "PORT"}
    return subprocess.run(
        [sys.executable, "-c", READ],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "bind"),
    [
        ({}, "127.0.0.1:8000"),  # loopback unless told otherwise
        ({"PORT": "5000"}, "0.0.0.0:5000"),  # the platform's port, on every interface
        ({"PORT": ""}, "127.0.0.1:8000"),  # empty is unset
        ({"GATEWAY_BIND": "127.0.0.1:9000", "PORT": "5000"}, "127.0.0.1:9000"),  # ours wins
    ],
)
def test_where_gunicorn_listens(env: dict[str, str], bind: str) -> None:
    assert ServerSettings.from_env(env).bind == bind


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_WEB_WORKERS": "abc"}, "GATEWAY_WEB_WORKERS must be a whole number, not 'abc'"),
        ({"GATEWAY_WEB_WORKERS": "0"}, "GATEWAY_WEB_WORKERS must be at least 1, not '0'"),
        ({"GATEWAY_WEB_CONNECTIONS": "x"}, "GATEWAY_WEB_CONNECTIONS must be a whole number"),
        ({"GATEWAY_WEB_CONNECTIONS": "-1"}, "GATEWAY_WEB_CONNECTIONS must be at least 1"),
        ({"GATEWAY_BODY_TIMEOUT_S": "0"}, "GATEWAY_BODY_TIMEOUT_S must be more than 0, not '0'"),
        ({"GATEWAY_BODY_MIN_RATE": "-1"}, "GATEWAY_BODY_MIN_RATE must be at least 0, not '-1'"),
        ({"GATEWAY_BODY_MIN_RATE": "1.5"}, "GATEWAY_BODY_MIN_RATE must be a whole number"),
        ({"PORT": "http"}, "PORT must be a whole number, not 'http'"),
        ({"PORT": "0"}, "PORT must be at least 1, not '0'"),
        ({"PORT": "65536"}, "PORT must be at most 65535, not '65536'"),
    ],
)
def test_a_bad_server_setting_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        ServerSettings.from_env(env)

    assert raised.value.message.startswith(message)


def test_the_environment_overlays_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("GATEWAY_BIND=127.0.0.1:1\nGATEWAY_WEB_WORKERS=3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_WEB_WORKERS", "5")

    env = environment()

    assert (env["GATEWAY_BIND"], env["GATEWAY_WEB_WORKERS"]) == ("127.0.0.1:1", "5")


def test_an_empty_variable_leaves_the_one_in_dotenv_in_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("GATEWAY_ADMIN_TOKEN=from-dotenv-0123456789\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "")
    monkeypatch.setenv("SALESFORCE_SECURITY_TOKEN", "")

    env = environment()

    assert env["GATEWAY_ADMIN_TOKEN"] == "from-dotenv-0123456789"
    assert env["SALESFORCE_SECURITY_TOKEN"] == ""  # nothing in .env: empty, as set


def test_gunicorn_reads_dotenv_like_the_gateway(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "GATEWAY_BIND=127.0.0.1:8123\nGATEWAY_WEB_WORKERS=3\nGATEWAY_WEB_CONNECTIONS=40\n"
    )

    read = _gunicorn_config(tmp_path, GATEWAY_WEB_WORKERS="4")

    assert read.stdout.split() == ["127.0.0.1:8123", "4", "40"], read.stderr


def test_gunicorn_binds_the_platforms_port_when_told_no_address(tmp_path: Path) -> None:
    read = _gunicorn_config(tmp_path, PORT="5000")

    assert read.stdout.split() == ["0.0.0.0:5000", "2", "16"], read.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("GATEWAY_WEB_CONNECTIONS", "x", "must be a whole number, not 'x'"),
        ("GATEWAY_WEB_WORKERS", "abc", "must be a whole number, not 'abc'"),
    ],
)
def test_gunicorns_config_stops_on_a_bad_value_with_one_line(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    read = _gunicorn_config(tmp_path, **{variable: value})

    assert read.returncode == 1
    assert read.stderr == f"Error: configuration_error: {variable} {message}\n"
