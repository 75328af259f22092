"""Secrets at rest: encrypted, decryptable with the same key or passphrase, shown as a hint."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from gateway.errors import SecretKeyMismatch
from gateway.secrets import UNRECORDED, SecretBox, fernet_key, fingerprint, hint


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


def test_a_ciphertext_names_the_fingerprint_of_its_key_and_nothing_of_the_key() -> None:
    key = Fernet.generate_key().decode()
    box = SecretBox(key)

    recorded, _, token = box.encrypt("shh").partition(":")

    assert recorded == fingerprint(key) == box.fingerprint
    assert key not in recorded and recorded not in key
    assert Fernet(key.encode()).decrypt(token.encode()) == b"shh"


@pytest.mark.parametrize(
    ("stored_with", "opened_with", "needs"),
    [
        ("one passphrase", "one passphrase", None),  # the same key
        ("one passphrase", "another passphrase", fingerprint("one passphrase")),  # it is named
    ],
)
def test_a_box_names_the_key_a_ciphertext_needs_when_it_is_not_its_own(
    stored_with: str, opened_with: str, needs: str | None
) -> None:
    ciphertext = SecretBox(stored_with).encrypt("shh")

    assert SecretBox(opened_with).foreign_key(ciphertext) == needs


@pytest.mark.parametrize(
    ("opened_with", "needs"),
    [
        ("one passphrase", None),  # it decrypts: the same key
        ("another passphrase", UNRECORDED),  # it does not, and says nothing of its key
    ],
)
def test_ciphertexts_without_a_fingerprint_are_told_apart_by_decrypting(
    opened_with: str, needs: str | None
) -> None:
    """What earlier releases stored: the Fernet token alone; still decrypted as it is."""
    legacy = Fernet(fernet_key("one passphrase")).encrypt(b"shh").decode()

    assert SecretBox(opened_with).foreign_key(legacy) == needs
    assert SecretBox("one passphrase").decrypt(legacy) == "shh"
