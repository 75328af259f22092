"""Secrets at rest: group signing secrets are stored encrypted and shown only as a hint."""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts secrets with the gateway's key (``GATEWAY_SECRET_KEY``, a Fernet key)."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except ValueError as exc:
            raise ValueError(
                "GATEWAY_SECRET_KEY must be a Fernet key (32 url-safe base64-encoded bytes)"
            ) from exc
        # Decrypting on every delivery is wasted work: ciphertexts are immutable, so cache them.
        self.decrypt = functools.lru_cache(maxsize=1024)(self._decrypt)

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def _decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("a stored secret cannot be decrypted with GATEWAY_SECRET_KEY") from exc


def hint(secret: str | None) -> str | None:
    """What responses show of a secret: its last four characters at most."""
    if not secret:
        return None
    return "…" + secret[-4:] if len(secret) > 8 else "…"
