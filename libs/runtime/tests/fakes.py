"""Hand-written fakes shared by the runtime's unit tests."""

from __future__ import annotations

import uuid

from vtp_runtime.auth import Principal, VerifierUnavailable

PROJECT = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
GOOD_TOKEN = "vtp_" + "g" * 43
ADMIN_TOKEN = "vtp_" + "a" * 43


class FakeVerifier:
    """Knows one good token and one admin token; counts lookups; can pretend to be unreachable."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    async def verify(self, token: str) -> Principal | None:
        self.calls += 1
        if self.down:
            raise VerifierUnavailable("identity down")
        if token not in (GOOD_TOKEN, ADMIN_TOKEN):
            return None
        return Principal(PROJECT, uuid.uuid4(), is_admin=token == ADMIN_TOKEN)
