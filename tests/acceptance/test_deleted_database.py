"""The SQLite database file deleted under a served gateway: every worker process answers 503
and is not ready, rather than acknowledging deliveries into a file that is gone at restart."""

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

#: More worker processes than the one that stored the first delivery: the others open their
#: first connection only once the file is gone.
WORKERS = 3
#: Requests on connections of their own, so that they spread over the workers.
TRIES = 12


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    settings = sqlite_settings(tmp_path)
    started: list[subprocess.Popen[bytes]] = []
    try:
        url, _ = launch_web(settings, started, GATEWAY_WEB_WORKERS=str(WORKERS))
        yield url, settings
    finally:
        for process in started:
            stop(process)


def test_a_deleted_database_file_is_answered_503_by_every_worker(
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
