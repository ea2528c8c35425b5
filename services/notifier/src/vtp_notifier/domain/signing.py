"""Standard Webhooks signatures: secrets, the signed content and the three headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
USER_AGENT = "vtp-notifier/0.1"


def new_secret() -> str:
    """A fresh signing secret in the `whsec_<base64>` form receivers' libraries accept."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret: the bytes its base64 part encodes."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(key: bytes, msg_id: str, timestamp: int, body: str) -> str:
    """`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}` (Standard Webhooks, symmetric)."""
    content = f"{msg_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def webhook_headers(key: bytes, msg_id: str, timestamp: int, body: str) -> dict[str, str]:
    """Headers of one try: the id stays the same across tries so receivers can deduplicate."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
