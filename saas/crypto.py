"""Encryption at rest for secrets we must be able to read back (channel credentials).

AES-256-GCM with associated data: a ciphertext is bound to the row it was
written for (e.g. "channel:<tenant>:<id>"), so copying it into another tenant's
row makes it fail to open instead of handing over the token.

Keys come from ENCRYPTION_KEYS (comma-separated, base64 of 32 bytes, newest
first). New values are sealed with the newest key; any listed key opens old
ones; `flask --app wsgi rotate-keys` re-seals everything with the newest, in
batches, while the app runs (see README, "Rotating encryption keys").
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"


class DecryptionError(ValueError):
    """The value cannot be opened: wrong row, unknown key, or tampered."""


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[bytes, ...]  # newest first

    @classmethod
    def from_config(cls, encoded: str) -> KeyRing:
        keys = []
        for part in encoded.split(","):
            part = part.strip()
            if not part:
                continue
            key = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            if len(key) != 32:
                raise ValueError("each ENCRYPTION_KEYS entry must be 32 bytes, base64-encoded")
            keys.append(key)
        if not keys:
            raise ValueError("ENCRYPTION_KEYS is empty")
        return cls(tuple(keys))

    @staticmethod
    def key_id(key: bytes) -> str:
        return hashlib.sha256(key).hexdigest()[:8]

    def seal(self, plaintext: bytes, bound_to: str) -> str:
        key = self.keys[0]
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext, bound_to.encode())
        return f"{VERSION}.{self.key_id(key)}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, token: str, bound_to: str) -> bytes:
        try:
            version, key_id, payload = token.split(".", 2)
        except ValueError:
            raise DecryptionError("not a sealed value") from None
        if version != VERSION:
            raise DecryptionError(f"unknown format {version!r}")
        key = next((k for k in self.keys if self.key_id(k) == key_id), None)
        if key is None:
            raise DecryptionError("sealed with a key that is no longer in ENCRYPTION_KEYS")
        raw = base64.urlsafe_b64decode(payload)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], bound_to.encode())
        except InvalidTag:
            raise DecryptionError("the value does not belong to this record or was altered") from None

    def reseal(self, token: str, bound_to: str) -> str:
        """The same value sealed with the newest key (DecryptionError if no listed key opens it)."""
        return self.seal(self.open(token, bound_to), bound_to)

    def newest_prefix(self) -> str:
        """What every value sealed with the newest key starts with (rotation finds the others by it)."""
        return f"{VERSION}.{self.key_id(self.keys[0])}."


def new_key() -> str:
    """A fresh key in the ENCRYPTION_KEYS format."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def dev_key(secret_key: str) -> str:
    """A stable development key derived from SECRET_KEY (production must set ENCRYPTION_KEYS)."""
    return base64.urlsafe_b64encode(
        hashlib.sha256(b"multipost-dev-encryption:" + secret_key.encode()).digest()
    ).decode()
