"""How the browser tests get their browser: installed when allowed, else skipped saying how."""

from __future__ import annotations

import os

import pytest

from tests.console import conftest


def test_without_root_nothing_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert conftest._install_browser() == (
        "not root with apt-get, so the browser cannot be installed here"
    )


def test_a_missing_browser_skips_saying_how_to_enable_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium chromium-driver"):
        conftest._unavailable("no browser")


def test_under_ci_a_missing_browser_fails_rather_than_hide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no browser"):
        conftest._unavailable("no browser")
