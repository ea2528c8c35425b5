"""Bearer-token authentication shared by every service."""

from vtp_runtime.auth.cache import CachingVerifier
from vtp_runtime.auth.middleware import AuthMiddleware, ScopedVerifier, current_principal, optional_principal
from vtp_runtime.auth.principal import Principal, TokenVerifier, VerifierUnavailable
from vtp_runtime.auth.remote import RemoteTokenVerifier
from vtp_runtime.auth.tokens import hash_token, new_token

__all__ = [
    "AuthMiddleware",
    "CachingVerifier",
    "Principal",
    "RemoteTokenVerifier",
    "ScopedVerifier",
    "TokenVerifier",
    "VerifierUnavailable",
    "current_principal",
    "hash_token",
    "new_token",
    "optional_principal",
]
