"""Signing secrets encrypted at rest with AES-GCM (they must be readable again to sign)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_log = logging.getLogger(__name__)
_NONCE_BYTES = 12
_DEV_LABEL = b"vtp-notifier/webhook-secrets/dev-key/v1:"


class MissingSecretKey(RuntimeError):
    """No webhook secret key outside the local stack: the notifier must not start."""


class SecretBox:
    """Encrypts one subscription's secret, bound to its id so ciphertexts cannot be swapped."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the webhook secret key must be 32 bytes")
        self._aead = AESGCM(key)

    @staticmethod
    def from_settings(secret_key: str, database_url: str | None, *, local: bool = False) -> SecretBox:
        """The configured key; without one, on the local stack only, a key derived from the database URL.

        A derived key is as public as the defaults it comes from, so anywhere else a missing key
        stops the service at start-up rather than leaving signing secrets readable.
        """
        if secret_key:
            try:
                key = base64.urlsafe_b64decode(secret_key + "=" * (-len(secret_key) % 4))
            except (binascii.Error, ValueError) as exc:
                raise ValueError("VTP_WEBHOOK_SECRET_KEY is not urlsafe base64") from exc
            return SecretBox(key)
        if not local:
            raise MissingSecretKey(
                "VTP_WEBHOOK_SECRET_KEY is required outside the local stack (VTP_ENVIRONMENT=local): 32 random "
                "bytes, urlsafe base64, e.g. python3 -c 'import base64,os; "
                "print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
            )
        _log.warning("VTP_WEBHOOK_SECRET_KEY is empty: webhook secrets use a derived key, fit for development only")
        return SecretBox(hashlib.sha256(_DEV_LABEL + (database_url or "").encode()).digest())

    def encrypt(self, subscription_id: UUID, secret: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), subscription_id.bytes)

    def decrypt(self, subscription_id: UUID, blob: bytes) -> str:
        nonce, ciphertext = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, subscription_id.bytes).decode()
