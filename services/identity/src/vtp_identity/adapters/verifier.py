"""Token verification against the identity database itself (no HTTP hop)."""

from __future__ import annotations

from collections.abc import Callable

from vtp_identity.service_layer import handlers
from vtp_identity.service_layer.unit_of_work import IdentityUnitOfWork
from vtp_runtime.auth import Principal


class DatabaseTokenVerifier:
    def __init__(self, new_uow: Callable[[], IdentityUnitOfWork]) -> None:
        self._new_uow = new_uow

    async def verify(self, token: str) -> Principal | None:
        return await handlers.verify(self._new_uow(), token)
