"""Who is calling: the project a token belongs to, and what it may do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class Principal:
    """The caller behind a verified token. Every query is scoped to `project_id`."""

    project_id: UUID
    token_id: UUID
    is_admin: bool = False


class VerifierUnavailable(Exception):
    """The token could not be checked (identity service unreachable)."""


class TokenVerifier(Protocol):
    """Turns a bearer token into a Principal, or None when the token is not valid."""

    async def verify(self, token: str) -> Principal | None: ...
