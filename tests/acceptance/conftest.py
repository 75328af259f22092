"""Real processes: gunicorn serving ``wsgi:app`` and ``gateway worker``, as users run them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests

from gateway.config import Settings
from tests.postgres import _free_port

ROOT = Path(__file__).resolve().parents[2]


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a deployed gateway process would get for this test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_DATABASE_URL=settings.database_url,
        GATEWAY_ADMIN_TOKEN=settings.admin_token or "",
        GATEWAY_SECRET_KEY=settings.secret_key or "",
        GATEWAY_INSTANCE_PATH=str(settings.instance_path),
        GATEWAY_WORKER_POLL_S="0.05",
        GATEWAY_RETRY_BASE_S="0",
        GATEWAY_BATCH_WINDOW_S="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def gunicorn_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a gunicorn serving the gateway from scratch: none of the caller's
    GATEWAY_ settings or PORT, an instance under ``tmp_path``, a free port, then ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "PORT"}
    env.update(
        PYTHONPATH=str(ROOT),
        GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"),
        GATEWAY_BIND=f"127.0.0.1:{_free_port()}",
    )
    env.update(settings)
    return env


def sqlite_settings(path: Path) -> Settings:
    """Settings for a gunicorn of its own on a migrated SQLite database under ``path``."""
    from cryptography.fernet import Fernet

    from gateway.migrate import upgrade
    from gateway.storage import open_storage
    from tests.conftest import ADMIN_TOKEN

    settings = Settings(
        instance_path=path / "instance",
        database_url=f"sqlite:///{path / 'gateway.db'}",
        admin_token=ADMIN_TOKEN,
        secret_key=Fernet.generate_key().decode(),
    )
    database = open_storage(settings.database_url)
    upgrade(database)
    database.dispose()
    return settings


def wait_until_up(url: str, process: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def launch_web(
    settings: Settings,
    started: list[subprocess.Popen[bytes]],
    output: IO[bytes] | None = None,
    **env: str,
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start gunicorn on ``wsgi:app`` with the shipped gunicorn.conf.py, once it answers;
    its output (both streams) to ``output`` if given.

    The process goes into ``started`` before it is waited for, so that the caller stops it
    even when it never comes up.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=process_env(settings, GATEWAY_PUBLIC_URL=url, **env),
        stdout=output,
        stderr=output,
    )
    started.append(process)
    wait_until_up(url, process)
    return url, process


@pytest.fixture
def start_web(settings: Settings) -> Iterator[Callable[..., tuple[str, subprocess.Popen[bytes]]]]:
    """Start gunicorn as :func:`launch_web` does; stopped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(output: IO[bytes] | None = None, **env: str) -> tuple[str, subprocess.Popen[bytes]]:
        return launch_web(settings, started, output, **env)

    yield start
    for process in started:
        stop(process)


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "worker"], cwd=ROOT, env=process_env(settings, **env)
        )
        started.append(process)
        return process

    yield start
    for process in started:
        stop(process)


class Api:
    """The admin API of a served gateway."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def __getattr__(self, method: str) -> Callable[..., Any]:
        def call(path: str, **kwargs: Any) -> requests.Response:
            kwargs.setdefault("timeout", 10)
            return self.session.request(method.upper(), f"{self.url}/api/v1{path}", **kwargs)

        return call
