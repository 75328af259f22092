"""gunicorn's access log, in both formats: a line per request, and never a callback token.

``/hooks/<token>`` is the only credential of a group without a secret (and the address a
sender's signatures go to): a log line that held it would let whoever reads the logs post into
that group. The log shows the group's id instead.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.config import Settings
from gateway.connectors import shipped_profiles
from gateway.verify import sign
from tests.acceptance.conftest import ROOT, Api, process_env, stop, wait_until_up
from tests.postgres import _free_port

CLIENT = "203.0.113.9"
UNKNOWN_TOKEN = "u" * 32
SECRET = "access-log-test-secret-0123456789"
CYCLE_COUNT = json.dumps(
    {
        "id": "access-log-1",
        "eventTimestamp": 1764900000000,
        "topic": "inventory.cycle_count",
        "data": {"cycleCountId": "access-log-1"},
    }
).encode()


@contextlib.contextmanager
def serving(settings: Settings, log: Path, log_format: str) -> Iterator[str]:
    """gunicorn on ``wsgi:app`` behind one trusted proxy, its output (both streams) in ``log``
    once it has stopped: a request's line is written after its answer, perhaps not yet."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = process_env(
        settings,
        GATEWAY_PUBLIC_URL=url,
        GATEWAY_LOG_FORMAT=log_format,
        GATEWAY_TRUSTED_PROXIES="1",
    )
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=sink,
        )
        try:
            wait_until_up(url, process)
            yield url
        finally:
            stop(process)


def access_lines(log: Path, log_format: str) -> list[str]:
    lines = log.read_text().splitlines()
    if log_format == "text":
        return [line for line in lines if '"' in line and "HTTP/1.1" in line]
    records = [json.loads(line) for line in lines if line.strip()]
    return [r["message"] for r in records if r["logger"] == "gunicorn.access"]


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_callbacks_are_logged_by_group_id_and_client_address_never_by_token(
    log_format: str, settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "web.log"
    with serving(settings, log, log_format) as url:
        group, token = _send_deliveries(url, settings)

    lines = access_lines(log, log_format)
    text = log.read_text()
    assert token not in text and UNKNOWN_TOKEN not in text
    assert any(
        line.startswith(CLIENT) and f'"POST /hooks/group:{group} HTTP/1.1" 200' in line
        for line in lines
    ), lines
    assert any(line.startswith(CLIENT) and '"POST /hooks/- HTTP/1.1" 404' in line for line in lines)
    assert any(f'"POST /hooks/group:{group}?via=- HTTP/1.1"' in line for line in lines)
    assert "encoded" not in text  # a query value may be an API key
    assert any('"GET /readyz HTTP/1.1" 200' in line for line in lines)


def _send_deliveries(url: str, settings: Settings) -> tuple[str, str]:
    """A signed delivery and one to an unknown token, both through the proxy, one to the token
    percent-encoded, one to a path below it, and a readiness check; the group's id and token."""
    api = Api(url, settings.admin_token or "")
    group = api.post(
        "/groups",
        json={
            "name": "Logged",
            "connector": "xemelgo",
            "function": "webhooks",
            "secret": SECRET,
            "events": ["inventory.cycle_count"],
        },
    ).json()
    callback = group["callback_url"]
    token = callback.rsplit("/", 1)[1]
    forwarded = {"X-Forwarded-For": CLIENT}
    signed = sign(shipped_profiles()["xemelgo"].verification, SECRET, CYCLE_COUNT)
    headers = {"Content-Type": "application/json", **forwarded, **signed}

    accepted = requests.post(callback, data=CYCLE_COUNT, headers=headers, timeout=10)
    refused = requests.post(f"{url}/hooks/{UNKNOWN_TOKEN}", json={}, headers=forwarded, timeout=10)
    requests.post(f"{url}/%68ooks/{token}?via=encoded", json={}, timeout=10)
    requests.post(f"{url}/hooks/{token}/more", json={}, timeout=10)  # not a callback: 404
    requests.get(f"{url}/readyz", timeout=10)
    assert (accepted.status_code, refused.status_code) == (200, 404)
    return group["id"], token


@pytest.mark.slow
def test_json_logs_hold_no_alembic_set_up_lines(settings: Settings, tmp_path: Path) -> None:
    """Alembic tells of its plugins as each process starts, and of its migration context at
    every readiness check: the log of a gateway asked /readyz every few seconds was mostly that."""
    log = tmp_path / "web.log"
    with serving(settings, log, "json") as url:
        for _ in range(3):
            assert requests.get(f"{url}/readyz", timeout=10).status_code == 200

    loggers = {json.loads(line)["logger"] for line in log.read_text().splitlines() if line}
    assert "gunicorn.access" in loggers
    assert not any(name.startswith("alembic") for name in loggers), loggers
