"""``gateway run``, the quickstart: one command serves callbacks and works the queue.

Run as a user runs it, in an empty directory with nothing configured: it must create its
instance, print the admin token, take a delivery, process it with its worker, and stop both
processes on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from gateway.connectors import sample_delivery, shipped_profiles
from gateway.verify import sign
from tests.acceptance.conftest import ROOT, Api, wait_until_up
from tests.acceptance.test_worker_metrics import UNROUTED, counted
from tests.postgres import _free_port

SECRET = "xemelgo-test-secret-0123456789abcdef"
EVENT = "inventory.cycle_count"


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _banner(process: subprocess.Popen[str]) -> dict[str, str]:
    """What ``gateway run`` prints before it serves, by label, up to the admin API's address."""
    assert process.stdout is not None
    shown = {}
    for line in process.stdout:
        label, colon, value = line.partition(":")
        if colon:
            shown[label] = value.strip()
        if label == "admin API":
            return shown
    raise AssertionError(f"gateway run printed no admin API address: {shown}")


def _admin_token(process: subprocess.Popen[str]) -> str:
    return _banner(process)["admin token"]


def _gateway_run(cwd: Path, *options: str, **settings: str) -> subprocess.Popen[str]:
    """``gateway run`` with the shipped mappings, ``options`` and only these GATEWAY_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(settings, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--mappings", str(ROOT / "mappings"), *options],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As a shell starts a job: in a process group of its own, the one Ctrl-C signals.
        start_new_session=True,
    )


def _event_status(api: Api, group_id: str, wanted: str) -> str:
    deadline = time.monotonic() + 30
    status = "none"
    while time.monotonic() < deadline:
        items = api.get("/events", params={"group_id": group_id}).json()["items"]
        status = items[0]["status"] if items else "none"
        if status == wanted:
            break
        time.sleep(0.1)
    return status


def test_gateway_run_serves_works_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # No GATEWAY_PUBLIC_URL: callback URLs follow the address it is told to serve on.
    process = _gateway_run(tmp_path, "--bind", f"127.0.0.1:{port}")
    try:
        banner = _banner(process)
        api = Api(url, banner["admin token"])
        wait_until_up(url, process)
        console = banner["console"].split()[0]
        assert console == f"{url}/admin/"
        page = requests.get(console, timeout=10)  # the sign-in page, until signed in
        assert (page.status_code, page.url.split("?")[0]) == (200, f"{url}/admin/sign-in")
        created = api.post(
            "/groups",
            json={
                "name": "Quickstart",
                "connector": "xemelgo",
                "function": "webhooks",
                "events": [EVENT],
                "secret": SECRET,
            },
        )
        assert created.status_code == 201, created.text
        group = created.json()
        assert group["callback_url"].startswith(f"{url}/hooks/")
        profile = shipped_profiles()["xemelgo"]
        body = sample_delivery(profile, EVENT)[0]
        answer = requests.post(
            group["callback_url"],
            data=body,
            headers={
                "Content-Type": "application/json",
                **sign(profile.verification, SECRET, body),
            },
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 1
        # No webhook record takes it yet: the worker settles it as unrouted.
        assert _event_status(api, group["id"], "unrouted") == "unrouted"
        # Counted by the worker, shown by the web processes: they share a metrics directory.
        assert counted(f"{url}/metrics", UNROUTED) == 1
        processes = [process.pid, *_children(process.pid)]
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)

    assert process.returncode == 0, errors
    assert len(processes) == 3, "gateway run, its worker and its gunicorn"
    assert not [pid for pid in processes if Path(f"/proc/{pid}").exists()], errors
    # gunicorn's gevent workers patch the standard library in a process of its own.
    assert "MonkeyPatchWarning" not in errors
    assert (tmp_path / "instance" / "admin-token").is_file()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "hang-up"])
def test_a_terminal_s_signal_stops_gateway_run_gracefully(tmp_path: Path, signum: int) -> None:
    """Ctrl-C, or closing the terminal, signals the whole foreground process group: gunicorn
    must not take SIGINT as its quick shutdown, which cuts requests off and prints a worker's
    traceback, and nothing may be left running."""
    port = _free_port()
    process = _gateway_run(tmp_path, "--bind", f"127.0.0.1:{port}")
    try:
        _banner(process)
        wait_until_up(f"http://127.0.0.1:{port}", process)
        processes = [process.pid, *_children(process.pid)]
    finally:
        os.killpg(process.pid, signum)
        _, errors = process.communicate(timeout=60)

    assert process.returncode == 0, errors
    assert not [pid for pid in processes if Path(f"/proc/{pid}").exists()], errors
    assert "Traceback" not in errors
    # gunicorn was asked to stop gracefully, and never saw SIGINT, its quick shutdown.
    assert "Handling signal: term" in errors
    assert "Handling signal: int" not in errors


def test_gateway_run_fails_when_it_cannot_serve(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(GATEWAY_BIND=f"127.0.0.1:{port}")
        result = subprocess.run(
            [sys.executable, "-m", "gateway", "run", "--mappings", str(ROOT / "mappings")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert result.returncode != 0
    assert "Address already in use" in result.stderr


def test_gateway_run_does_not_print_a_token_set_in_the_environment(tmp_path: Path) -> None:
    """It is the operator's own, and the output of a service ends up in its logs."""
    port = _free_port()
    token = "fake-operator-token-0123456789abcdef"
    process = _gateway_run(tmp_path, GATEWAY_BIND=f"127.0.0.1:{port}", GATEWAY_ADMIN_TOKEN=token)
    try:
        shown = _admin_token(process)
        wait_until_up(f"http://127.0.0.1:{port}", process)
    finally:
        process.send_signal(signal.SIGTERM)
        output, errors = process.communicate(timeout=30)
    assert shown == "the value of GATEWAY_ADMIN_TOKEN (gateway token prints it)"
    assert token not in output + errors
