"""A weak admin token is warned about once when the web server starts, and still served."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.acceptance.conftest import ROOT, gunicorn_env, stop, wait_until_up
from tests.acceptance.test_bad_configuration import PROCFILE, SERVE

WARNING = "GATEWAY_ADMIN_TOKEN is shorter than 16 characters"


def _served_log(args: list[str], tmp_path: Path, token: str) -> str:
    """What gunicorn with two workers writes from its start until it is stopped."""
    env = gunicorn_env(tmp_path, GATEWAY_WEB_WORKERS="2", GATEWAY_ADMIN_TOKEN=token)
    log = tmp_path / "stderr"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *args],
            cwd=ROOT if args == PROCFILE else tmp_path,  # wsgi.py and gunicorn.conf.py are there
            env=env,
            stderr=stderr,
        )
        try:
            wait_until_up(f"http://{env['GATEWAY_BIND']}", process)
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
