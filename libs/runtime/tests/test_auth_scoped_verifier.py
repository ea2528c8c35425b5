"""A second credential kind accepted on some paths only (inference API keys on serving routes)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from fakes import GOOD_TOKEN, PROJECT, FakeVerifier
from fastapi import APIRouter, Depends

from vtp_runtime.auth import Principal, ScopedVerifier, current_principal
from vtp_runtime.http.app import AppParts, build_app

KEY = "key_" + "k" * 40
KEY_ID = uuid.UUID("00000000-0000-0000-0000-0000000000bb")


class KeyVerifier:
    async def verify(self, token: str) -> Principal | None:
        return Principal(PROJECT, KEY_ID) if token == KEY else None


def _client() -> httpx.AsyncClient:
    router = APIRouter()

    @router.get("/serve/{name}")
    @router.get("/manage")
    async def who(caller: Principal = Depends(current_principal)) -> dict[str, str]:
        return {"token_id": str(caller.token_id)}

    scoped = ScopedVerifier(
        claims=lambda c: c.startswith("key_"),
        verifier=KeyVerifier(),
        paths=lambda p: p.startswith("/serve/"),
        header="api-key",
    )
    parts = AppParts(service="t", version="0", verifier=FakeVerifier(), routers=[router], scoped_verifier=scoped)
    transport = httpx.ASGITransport(app=build_app(parts), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def test_keys_only_on_their_paths_tokens_everywhere():
    async def run() -> None:
        async with _client() as client:
            bearer = await client.get("/serve/m", headers={"Authorization": f"Bearer {KEY}"})
            assert bearer.status_code == 200 and bearer.json()["token_id"] == str(KEY_ID)
            header = await client.get("/serve/m", headers={"api-key": KEY})
            assert header.status_code == 200 and header.json()["token_id"] == str(KEY_ID)
            for headers in ({"Authorization": f"Bearer {KEY}"}, {"api-key": KEY}):
                refused = await client.get("/manage", headers=headers)
                assert refused.status_code == 403 and refused.json()["code"] == "credential_not_allowed"
            unknown = await client.get("/serve/m", headers={"api-key": "key_" + "x" * 40})
            assert unknown.status_code == 401 and unknown.json()["code"] == "invalid_token"
            # A token in `api-key` is not a credential: only the scoped kind travels in that header.
            assert (await client.get("/serve/m", headers={"api-key": GOOD_TOKEN})).status_code == 401
            for path in ("/serve/m", "/manage"):
                ok = await client.get(path, headers={"Authorization": f"Bearer {GOOD_TOKEN}"})
                assert ok.status_code == 200 and ok.json()["token_id"] != str(KEY_ID)

    asyncio.run(run())
