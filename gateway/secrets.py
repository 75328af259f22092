"""Secrets at rest: group signing secrets are stored encrypted and shown only as a hint."""

from __future__ import annotations

import base64
import functools
import logging

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.errors import SecretKeyMismatch

log = logging.getLogger(__name__)


class SecretBox:
    """Encrypts secrets with the gateway's key (``GATEWAY_SECRET_KEY``: see :func:`fernet_key`)."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("GATEWAY_SECRET_KEY is empty")
        self._fernet = Fernet(fernet_key(key))
        # Decrypting on every delivery is wasted work: ciphertexts are immutable, so cache them.
        self.decrypt = functools.lru_cache(maxsize=1024)(self._decrypt)

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def _decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            # A 503, so that senders retry until the right key is back; said loudly, since
            # every delivery to every group fails the same way meanwhile.
            error = SecretKeyMismatch()
            log.error("%s", error.message)
            raise error from exc


def fernet_key(key: str) -> bytes:
    """A Fernet key as given, or one derived from any other passphrase.

    Admins paste all sorts of strings into ``GATEWAY_SECRET_KEY``; rather than refuse to start,
    a passphrase is stretched into a key with HKDF, so the same passphrase always decrypts.
    """
    try:
        Fernet(key.encode())
    except ValueError:
        derived = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"gateway-secrets")
        return base64.urlsafe_b64encode(derived.derive(key.encode()))
    return key.encode()


def hint(secret: str | None) -> str | None:
    """What responses show of a secret: its last four characters at most."""
    if not secret:
        return None
    return "…" + secret[-4:] if len(secret) > 8 else "…"
