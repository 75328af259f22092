"""Fixtures for the console: a signed-in test client, a real server and headless Chromium.

The browser is Debian's ``chromium`` with its ``chromium-driver``. When they are missing and this
is root with apt-get, they are installed once per run; otherwise the browser tests skip, saying
how to enable them (and fail under CI, where a silent skip would hide them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from tests.conftest import ADMIN_TOKEN

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ENABLE = (
    "install Debian's browser and driver (as root: apt-get install -y chromium chromium-driver) "
    "and the test extras (pip install -e '.[test]')"
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1280,900",
)


def form_token(html: str) -> str:
    """The CSRF token a page's forms carry."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no form token"
    return match.group(1)


class Console:
    """The console through the Flask test client, signed in, posting forms with their token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def sign_in(self) -> None:
        token = form_token(self.client.get("/admin/sign-in").text)
        response = self.client.post(
            "/admin/sign-in", data={"csrf_token": token, "token": ADMIN_TOKEN}
        )
        assert response.status_code == 303, response.text
        self.token = form_token(self.client.get("/admin/").text)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None) -> Any:
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})})


@pytest.fixture
def console(client: FlaskClient) -> Console:
    signed_in = Console(client)
    signed_in.sign_in()
    return signed_in


# --- the browser -------------------------------------------------------------------------


def _install_browser() -> str | None:
    """Install Chromium and its driver with apt; None when done, else why it was not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root with apt-get, so the browser cannot be installed here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}"
    return None


def _unavailable(reason: str) -> None:
    message = f"browser tests need headless Chromium ({reason}); to enable them, {ENABLE}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> None:
    """Make sure the system browser and driver are there, installing them once if allowed."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        problem = _install_browser()
        if problem or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
            _unavailable(problem or "apt-get did not install /usr/bin/chromium")


@pytest.fixture(scope="session")
def browser(chromium: None) -> Iterator[Any]:
    """One headless Chromium for the whole run, driven through the system chromedriver."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("the selenium package is missing")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app on a real threaded server on 127.0.0.1, over the test's database."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-live-server")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """The browser with no cookies from earlier tests (cookies ignore the port)."""
    browser.delete_all_cookies()
    browser.base_url = live_server
    yield browser
    browser.delete_all_cookies()
