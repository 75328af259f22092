"""A gateway refuses to start with a secret key that cannot open the secrets already stored.

Started with another key (a second host given none generates its own), it would answer 503 to
every signed delivery and encrypt secrets set meanwhile with a key no other host has.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from gateway import cli
from gateway.config import Settings
from gateway.errors import ConfigurationError
from gateway.models import Group
from gateway.secrets import fernet_key, fingerprint
from gateway.services import Gateway
from gateway.web import create_app


@pytest.fixture
def start_with(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., None]:
    """Configure this process's environment as a host of the test's database would be."""

    def configure(**env: str) -> None:
        for name in ("GATEWAY_SECRET_KEY", "GATEWAY_ADMIN_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.chdir(tmp_path)  # no .env of the checkout
        monkeypatch.setenv("GATEWAY_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("GATEWAY_INSTANCE_PATH", str(tmp_path / "another-host"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return configure


def gateway_token() -> Result:
    return CliRunner().invoke(cli.main, ["token"])


@pytest.fixture
def stored_secret(group_factory: Callable[..., dict[str, Any]]) -> None:
    group_factory()


@pytest.mark.usefixtures("stored_secret")
def test_a_command_refuses_another_key_naming_the_expected_one_and_where_its_key_came_from(
    gw: Gateway, start_with: Callable[..., None]
) -> None:
    other_key = Fernet.generate_key().decode()
    start_with(GATEWAY_SECRET_KEY=other_key)

    result = gateway_token()

    assert result.exit_code == 1
    assert f"the key whose fingerprint is {gw.box.fingerprint}" in result.output
    assert f"read from GATEWAY_SECRET_KEY has the fingerprint {fingerprint(other_key)}" in (
        result.output
    )
    assert other_key not in result.output
    assert gw.settings.secret_key not in result.output


@pytest.mark.usefixtures("stored_secret")
def test_a_host_given_no_key_does_not_start_with_one_it_generated(
    gw: Gateway, start_with: Callable[..., None], tmp_path: Path
) -> None:
    start_with()

    result = gateway_token()

    assert result.exit_code == 1
    generated = tmp_path / "another-host" / "secret-key"
    assert f"read from {generated} (GATEWAY_SECRET_KEY is not set)" in result.output
    assert f"the key whose fingerprint is {gw.box.fingerprint}" in result.output


@pytest.mark.usefixtures("stored_secret")
def test_the_app_does_not_start_with_another_key(
    gw: Gateway, start_with: Callable[..., None]
) -> None:
    start_with(GATEWAY_SECRET_KEY="some other passphrase")

    with pytest.raises(ConfigurationError) as refused:
        create_app()

    assert gw.box.fingerprint in refused.value.message


@pytest.mark.usefixtures("stored_secret")
def test_the_key_the_secrets_were_stored_with_starts(
    gw: Gateway, start_with: Callable[..., None]
) -> None:
    start_with(GATEWAY_SECRET_KEY=gw.settings.secret_key or "")

    assert gateway_token().exit_code == 0
    started = create_app().extensions["gateway"]
    started.close()
    assert started.box.fingerprint == gw.box.fingerprint


def test_target_credentials_are_checked_too(gw: Gateway, settings: Settings) -> None:
    gw.credentials.put("salesforce", {"SALESFORCE_USERNAME": "someone@example.com"})

    with pytest.raises(ConfigurationError, match=gw.box.fingerprint):
        _started_with(settings, "another passphrase")


def test_secrets_stored_before_fingerprints_were_recorded_are_checked_by_decrypting(
    gw: Gateway, settings: Settings, stored_secret: None
) -> None:
    """Their key cannot be named, but it can still be told apart from the one given."""
    _forget_fingerprints(gw)

    with pytest.raises(ConfigurationError, match="its fingerprint was not recorded"):
        _started_with(settings, "another passphrase")
    _started_with(settings, settings.secret_key or "")


def test_a_database_without_secrets_takes_any_key(gw: Gateway, settings: Settings) -> None:
    _started_with(settings, "a first passphrase")


def test_a_database_not_migrated_yet_takes_any_key(settings: Settings, tmp_path: Path) -> None:
    fresh = settings.with_overrides({"database_url": f"sqlite:///{tmp_path / 'new.db'}"})

    _started_with(fresh, "a first passphrase")

    assert not (tmp_path / "new.db").exists()  # nothing created only to be checked


def _started_with(settings: Settings, key: str) -> None:
    gw = Gateway(settings.with_overrides({"secret_key": key}))
    try:
        gw.check_secret_key()
    finally:
        gw.close()


def _forget_fingerprints(gw: Gateway) -> None:
    """Store the group secrets as releases without fingerprints did: the Fernet token alone."""
    legacy = Fernet(fernet_key(gw.settings.secret_key or ""))
    with gw.db.session() as session:
        for group_id, ciphertext in session.execute(select(Group.id, Group.secret_ciphertext)):
            token = legacy.encrypt(gw.box.decrypt(ciphertext).encode()).decode()
            session.execute(
                update(Group).where(Group.id == group_id).values(secret_ciphertext=token)
            )
