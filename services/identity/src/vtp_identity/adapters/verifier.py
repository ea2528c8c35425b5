"""Token verification against the identity database itself (no HTTP hop)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from vtp_identity.service_layer import handlers
from vtp_identity.service_layer.unit_of_work import IdentityUnitOfWork
from vtp_runtime.auth import Principal, VerifierUnavailable


class DatabaseTokenVerifier:
    def __init__(self, new_uow: Callable[[], IdentityUnitOfWork]) -> None:
        self._new_uow = new_uow

    async def verify(self, token: str) -> Principal | None:
        try:
            return await handlers.verify(self._new_uow(), token)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:  # the database is unreachable: 503, not 500
            raise VerifierUnavailable(f"token store unavailable: {type(exc).__name__}") from exc
