"""API token format and hashing.

Tokens are 256 random bits, so a plain SHA-256 digest is a safe stored form
(no salt or slow hash needed, unlike passwords) and allows lookup by digest.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "vtp_"


def new_token() -> str:
    """A fresh API token, e.g. ``vtp_3q0...``; shown to its owner once."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(token: str) -> bool:
    """Cheap shape check before any lookup, so junk never reaches the database."""
    return token.startswith(TOKEN_PREFIX) and 20 <= len(token) <= 200 and token.isascii()
