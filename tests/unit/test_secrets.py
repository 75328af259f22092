"""Secrets at rest: encrypted, decryptable with the same key or passphrase, shown as a hint."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from gateway.errors import SecretKeyMismatch
from gateway.secrets import SecretBox, hint


@pytest.mark.parametrize(
    "key",
    [
        Fernet.generate_key().decode(),  # a proper Fernet key is used as it is
        "any passphrase an admin chose",  # anything else is stretched into one
    ],
)
def test_secrets_round_trip_and_are_not_stored_in_clear(key: str) -> None:
    ciphertext = SecretBox(key).encrypt("shh-0123456789")

    assert "shh" not in ciphertext
    assert SecretBox(key).decrypt(ciphertext) == "shh-0123456789"


def test_another_key_cannot_decrypt() -> None:
    ciphertext = SecretBox("one passphrase").encrypt("shh")

    with pytest.raises(SecretKeyMismatch, match="cannot be decrypted") as caught:
        SecretBox("another passphrase").decrypt(ciphertext)
    assert caught.value.status == 503  # senders retry until the right key is back


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        (None, None),  # no secret, no hint
        ("short", "…"),  # too short to show any of it
        ("whsec_abcdef0123f2a9", "…f2a9"),  # the last four characters
    ],
)
def test_hint_shows_at_most_the_last_four_characters(secret: str | None, shown: str | None) -> None:
    assert hint(secret) == shown
