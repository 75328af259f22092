"""gunicorn started on a bad configuration stops at once with one line, not a traceback.

Both ways of starting it: ``gateway serve``'s config module with the app factory, and the
``gunicorn wsgi:app`` of the Procfile with the shipped ``gunicorn.conf.py``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.services import Gateway
from tests.acceptance.conftest import ROOT, gunicorn_env

SERVE = [
    "--config",
    "python:gateway.gunicorn_config",
    "gateway.web:create_app()",
]
PROCFILE = ["wsgi:app"]


def _gunicorn(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", *args],
        cwd=ROOT if args == PROCFILE else tmp_path,  # wsgi.py and gunicorn.conf.py are there
        env=gunicorn_env(tmp_path, **{"GATEWAY_WEB_WORKERS": "1", **env}),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
@pytest.mark.parametrize("args", [SERVE, PROCFILE], ids=["serve", "procfile"])
@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        # read by gunicorn's master, before it listens
        ("GATEWAY_WEB_WORKERS", "abc", "GATEWAY_WEB_WORKERS must be a whole number, not 'abc'"),
        # read by the app each worker loads
        (
            "GATEWAY_TARGET",
            "nowhere",
            "GATEWAY_TARGET must be local, salesforce, salesforce:<profile>, "
            "http or http:<profile>, not 'nowhere'",
        ),
        ("GATEWAY_MAX_BODY_BYTES", "0", "GATEWAY_MAX_BODY_BYTES must be at least 1, not '0'"),
    ],
)
def test_gunicorn_on_a_bad_setting_fails_to_boot_naming_it(
    tmp_path: Path, args: list[str], variable: str, value: str, line: str
) -> None:
    ran = _gunicorn(args, tmp_path, **{variable: value})

    assert ran.returncode != 0
    assert f"Error: configuration_error: {line}\n" in ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.slow
def test_gunicorn_on_an_unusable_instance_path_fails_to_boot_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")

    ran = _gunicorn(SERVE, tmp_path, GATEWAY_INSTANCE_PATH=str(tmp_path / "a-file"))

    assert ran.returncode != 0
    assert (
        "Error: configuration_error: GATEWAY_INSTANCE_PATH: cannot create the directory"
        f" {tmp_path / 'a-file'}: File exists\n"
    ) in ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.slow
def test_gunicorn_with_another_secret_key_fails_to_boot_naming_the_expected_one(
    tmp_path: Path, settings: Settings, gw: Gateway, group_factory: Callable[..., Any]
) -> None:
    group_factory()  # a secret encrypted with the test's key

    ran = _gunicorn(
        PROCFILE,
        tmp_path,
        GATEWAY_DATABASE_URL=settings.database_url,
        GATEWAY_SECRET_KEY="another passphrase",
    )

    assert ran.returncode != 0
    assert f"the key whose fingerprint is {gw.box.fingerprint}" in ran.stderr
    assert "Traceback" not in ran.stderr
