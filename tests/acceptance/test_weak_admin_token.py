"""A weak admin token is warned about once when the web server starts, and still served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.conftest import ROOT, stop, wait_until_up
from tests.acceptance.test_bad_configuration import PROCFILE, SERVE
from tests.postgres import _free_port

WARNING = "GATEWAY_ADMIN_TOKEN is shorter than 16 characters"


def _served_log(args: list[str], tmp_path: Path, token: str) -> str:
    """What gunicorn with two workers writes from its start until it is stopped."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "PORT"}
    env.update(
        PYTHONPATH=str(ROOT),
        GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"),
        GATEWAY_BIND=f"127.0.0.1:{port}",
        GATEWAY_WEB_WORKERS="2",
        GATEWAY_ADMIN_TOKEN=token,
    )
    log = tmp_path / "stderr"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *args],
            cwd=ROOT if args == PROCFILE else tmp_path,  # wsgi.py and gunicorn.conf.py are there
            env=env,
            stderr=stderr,
        )
        try:
            wait_until_up(f"http://127.0.0.1:{port}", process)
        finally:
            stop(process)
    return log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("args", [SERVE, PROCFILE], ids=["serve", "procfile"])
def test_a_short_admin_token_is_warned_about_once(tmp_path: Path, args: list[str]) -> None:
    log = _served_log(args, tmp_path, "letmein")

    assert log.count(WARNING) == 1
    assert "[WARNING]" in log
    assert "letmein" not in log


@pytest.mark.slow
def test_a_long_admin_token_is_not(tmp_path: Path) -> None:
    log = _served_log(SERVE, tmp_path, "k" * 32)

    assert "GATEWAY_ADMIN_TOKEN" not in log
