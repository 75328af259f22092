"""With GATEWAY_LOG_FORMAT=json, every line a served gateway logs is one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests

from gateway.config import Settings
from tests.acceptance.conftest import ROOT, process_env, stop, wait_until_up
from tests.postgres import _free_port


def test_gunicorn_and_the_gateway_log_json_lines_alike(settings: Settings, tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=process_env(settings, GATEWAY_PUBLIC_URL=url, GATEWAY_LOG_FORMAT="json"),
            stderr=sink,
        )
        try:
            wait_until_up(url, process)
            assert requests.get(f"{url}/healthz", timeout=10).status_code == 200
        finally:
            stop(process)

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert {"gunicorn.error"} <= {line["logger"] for line in lines}
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
