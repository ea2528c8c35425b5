"""Hand-written fakes shared by the runtime's unit tests."""

from __future__ import annotations

import uuid

from vtp_runtime.auth import Principal, VerifierUnavailable

PROJECT = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
GOOD_TOKEN = "vtp_" + "g" * 43


class FakeVerifier:
    """Knows one good token; counts lookups; can pretend to be unreachable."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    async def verify(self, token: str) -> Principal | None:
        self.calls += 1
        if self.down:
            raise VerifierUnavailable("identity down")
        return Principal(PROJECT, uuid.uuid4()) if token == GOOD_TOKEN else None
