"""WebSockets pass the same auth middleware: bearer header, or a query ticket where a service allows it."""

from __future__ import annotations

import pytest
from fakes import GOOD_TOKEN, PROJECT, FakeVerifier
from fastapi import APIRouter, WebSocket
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from vtp_runtime.auth import Principal
from vtp_runtime.http.app import AppParts, build_app

TICKET = "wst_good"


class FakeTickets:
    async def verify(self, token: str) -> Principal | None:
        return Principal(project_id=PROJECT, token_id=PROJECT) if token == TICKET else None


def _app(with_tickets: bool) -> TestClient:
    router = APIRouter()

    @router.websocket("/api/v1/ws")
    async def feed(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json({"project": str(ws.scope["state"]["principal"].project_id)})
        await ws.close()

    parts = AppParts(
        "ws", "1.0", FakeVerifier(), routers=[router], ticket_verifier=FakeTickets() if with_tickets else None
    )
    return TestClient(build_app(parts))


def test_bearer_header_opens_a_socket() -> None:
    with _app(False).websocket_connect("/api/v1/ws", headers={"Authorization": f"Bearer {GOOD_TOKEN}"}) as ws:
        assert ws.receive_json() == {"project": str(PROJECT)}


def test_query_ticket_opens_a_socket_only_where_tickets_are_enabled() -> None:
    with _app(True).websocket_connect(f"/api/v1/ws?ticket={TICKET}") as ws:
        assert ws.receive_json() == {"project": str(PROJECT)}
    for client, url in ((_app(True), "/api/v1/ws?ticket=wst_bad"), (_app(False), f"/api/v1/ws?ticket={TICKET}")):
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(url):
            pass
        assert closed.value.code == 4401
