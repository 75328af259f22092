"""The SQLite database file deleted under a served gateway: it answers 503 and is not ready,
rather than acknowledging deliveries into a file that is gone at restart, and makes no new one.

One web process: gunicorn starts its workers one after the other, and the test could not tell
when the last has opened the database. That a process opened before the deletion and connecting
only after it makes no new file is tests/integration/test_readiness.py's.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

from gateway.config import Settings
from tests.acceptance import senders
from tests.acceptance.conftest import Api, launch_web, sqlite_settings, stop

#: Requests on connections of their own.
TRIES = 6


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    settings = sqlite_settings(tmp_path)
    started: list[subprocess.Popen[bytes]] = []
    try:
        url, _ = launch_web(settings, started, GATEWAY_WEB_WORKERS="1")
        yield url, settings
    finally:
        for process in started:
            stop(process)


def test_a_deleted_database_file_is_answered_503_and_not_made_anew(
    served: tuple[str, Settings],
) -> None:
    url, settings = served
    group = senders.create_group(Api(url, settings.admin_token or ""))
    path = Path(str(make_url(settings.database_url).database))
    assert _post(group, "before").status_code == 200
    assert requests.get(f"{url}/readyz", timeout=10).status_code == 200

    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        name.unlink()
    answers = [_post(group, f"after-{n}") for n in range(TRIES)]
    readiness = [requests.get(f"{url}/readyz", timeout=10) for _ in range(TRIES)]

    for answer in answers + readiness:
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "database_unavailable"
        assert "was deleted" in answer.json()["error"]["message"]
    assert all(answer.headers["Retry-After"] for answer in answers)
    assert not path.exists()  # no worker made a new, empty one in its place


def _post(group: dict[str, str], count_id: str) -> requests.Response:
    with requests.Session() as session:  # a connection of its own
        return senders.post(session, group["callback_url"], senders.body(count_id), timeout=10)
