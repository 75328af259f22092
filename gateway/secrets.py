"""Secrets at rest: group signing secrets are stored encrypted and shown only as a hint."""

from __future__ import annotations

import base64
import functools
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.errors import SecretKeyMismatch

log = logging.getLogger(__name__)


#: Between the fingerprint of the key a secret was encrypted with and its Fernet token, whose
#: base64url alphabet has no colon. Secrets stored by earlier releases have no fingerprint.
FINGERPRINT_SEPARATOR = ":"
#: What a mismatch names as the expected key when the stored secret does not record it.
UNRECORDED = "not recorded"


def fingerprint(key: str) -> str:
    """A short name of a key that gives nothing of it away, the same wherever the key is used:
    what messages show so that an admin can tell keys apart."""
    digest = hashlib.sha256(b"gateway secret key fingerprint\x00" + fernet_key(key)).hexdigest()
    return digest[:16]


class SecretBox:
    """Encrypts secrets with the gateway's key (``GATEWAY_SECRET_KEY``: see :func:`fernet_key`).

    Each ciphertext starts with the key's fingerprint, so that a gateway started with another key
    can say at once which key the stored secrets need (:meth:`foreign_key`).
    """

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("GATEWAY_SECRET_KEY is empty")
        self._fernet = Fernet(fernet_key(key))
        self.fingerprint = fingerprint(key)
        # Decrypting on every delivery is wasted work: ciphertexts are immutable, so cache them.
        self.decrypt = functools.lru_cache(maxsize=1024)(self._decrypt)

    def encrypt(self, secret: str) -> str:
        token = self._fernet.encrypt(secret.encode()).decode()
        return f"{self.fingerprint}{FINGERPRINT_SEPARATOR}{token}"

    def foreign_key(self, ciphertext: str) -> str | None:
        """The fingerprint of the key ``ciphertext`` needs (UNRECORDED if it does not say), or
        None when it is this box's key."""
        recorded, separator, token = ciphertext.rpartition(FINGERPRINT_SEPARATOR)
        if separator:
            return None if recorded == self.fingerprint else recorded
        try:
            self._fernet.decrypt(token.encode())
        except InvalidToken:
            return UNRECORDED
        return None

    def _decrypt(self, ciphertext: str) -> str:
        token = ciphertext.rpartition(FINGERPRINT_SEPARATOR)[2]
        try:
            return self._fernet.decrypt(token.encode()).decode()
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
