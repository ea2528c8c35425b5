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


class SecretBox:
    """Encrypts one subscription's secret, bound to its id so ciphertexts cannot be swapped."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the webhook secret key must be 32 bytes")
        self._aead = AESGCM(key)

    @staticmethod
    def from_settings(secret_key: str, database_url: str | None) -> SecretBox:
        """The configured key; without one a key derived from the database URL (dev only)."""
        if secret_key:
            try:
                key = base64.urlsafe_b64decode(secret_key + "=" * (-len(secret_key) % 4))
            except (binascii.Error, ValueError) as exc:
                raise ValueError("VTP_WEBHOOK_SECRET_KEY is not urlsafe base64") from exc
            return SecretBox(key)
        _log.warning("VTP_WEBHOOK_SECRET_KEY is empty: webhook secrets use a derived key, fit for development only")
        return SecretBox(hashlib.sha256(_DEV_LABEL + (database_url or "").encode()).digest())

    def encrypt(self, subscription_id: UUID, secret: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), subscription_id.bytes)

    def decrypt(self, subscription_id: UUID, blob: bytes) -> str:
        nonce, ciphertext = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, subscription_id.bytes).decode()
