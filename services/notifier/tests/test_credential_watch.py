"""An open feed socket is closed (4401) once its bearer token stops verifying."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from vtp_notifier.entrypoints.ws import build_router
from vtp_notifier.service_layer.hub import Hub
from vtp_notifier.settings import FeedSettings
from vtp_runtime.auth import Principal, VerifierUnavailable
from vtp_runtime.http.app import AppParts, build_app

TOKEN = "vtp_" + "t" * 43
PROJECT = uuid.uuid4()


class RevocableVerifier:
    """Knows one token until it is revoked; can pretend identity is unreachable."""

    def __init__(self) -> None:
        self.revoked = False
        self.down = False

    async def verify(self, token: str) -> Principal | None:
        if self.down:
            raise VerifierUnavailable("identity down")
        return None if self.revoked or token != TOKEN else Principal(PROJECT, uuid.uuid4())


def _client(verifier: RevocableVerifier) -> TestClient:
    ready = asyncio.Event()
    ready.set()
    tickets: Any = None  # not used by these sockets
    sessions: Any = None  # no subscription, so no history query
    router = build_router(Hub(), sessions, tickets, ready, FeedSettings(ws_recheck_seconds=0.05), verifier)
    return TestClient(build_app(AppParts("notifier", "test", verifier, routers=[router])))


def test_socket_closes_once_its_token_is_revoked_but_survives_identity_outages() -> None:
    verifier = RevocableVerifier()
    with _client(verifier).websocket_connect("/api/v1/ws", headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        verifier.down = True  # identity unreachable: keep serving
        time.sleep(0.3)  # several re-checks fail meanwhile
        ws.send_text('{"action": "ping"}')
        assert ws.receive_json()["type"] == "pong"
        verifier.down, verifier.revoked = False, True
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401
