"""`/api/v1/ws`: the live feed over WebSocket, and the tickets browsers use to open it.

A client subscribes (query parameters on connect, or `{"action": "subscribe", ...}`
messages) to job ids and/or message types within its own project. It gets the
history it asked for (`since=<event_id>` to resume, or the jobs' whole history),
then live events, with no gap and no duplicate at the seam.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtp_notifier.adapters import feed_store
from vtp_notifier.adapters.tickets import RedisTicketStore
from vtp_notifier.domain.feed import FeedEvent, FeedFilter
from vtp_notifier.entrypoints.credential_watch import watch_credential
from vtp_notifier.service_layer.hub import ClientFeed, Hub
from vtp_notifier.settings import FeedSettings
from vtp_runtime.auth import Principal, TokenVerifier, current_principal
from vtp_runtime.http.fields import NulFreeStr

MessageType = Literal[
    "job_status", "progress", "metrics", "checkpoint", "log", "error", "export", "deployment", "dataset", "batch"
]
CLOSE_NOT_READY = 1013  # "try again later": this replica is not connected to the fan-out yet


class Subscribe(BaseModel):
    """What a client wants: jobs (none: the whole project), message types (none: all), a resume point."""

    jobs: list[UUID] = Field(default_factory=list, max_length=1000)
    types: list[MessageType] = Field(default_factory=list)
    since: NulFreeStr | None = Field(
        None, min_length=1, max_length=64, description="Last event_id the client received."
    )


class Ticket(BaseModel):
    ticket: str
    expires_in: float = Field(description="Seconds the ticket stays valid; it works once.")


def _problem(code: str, detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "problem", "code": code, "detail": detail, "errors": errors or []}


def _query_subscription(ws: WebSocket) -> dict[str, Any] | None:
    q = ws.query_params
    if not any(k in q for k in ("jobs", "types", "since", "project")):
        return None
    return {"jobs": _csv(q.get("jobs", "")), "types": _csv(q.get("types", "")), "since": q.get("since") or None}


def _covered_from(history: list[FeedEvent], after: int | None, cut: bool) -> int | None:
    """The lowest seq from which `history` held every wanted event."""
    if cut:
        return history[0].seq if history else None
    return 0 if after is None else after + 1


def _csv(value: str) -> list[str]:
    return [item for item in value.split(",") if item]


class FeedSocket:
    """One connection's conversation: subscribe requests and pings in, feed messages out."""

    def __init__(
        self,
        ws: WebSocket,
        principal: Principal,
        hub: Hub,
        sessions: async_sessionmaker[AsyncSession],
        settings: FeedSettings,
    ) -> None:
        self.ws, self.principal, self.hub, self.sessions, self.settings = ws, principal, hub, sessions, settings
        self.client = ClientFeed(ws, principal.project_id, settings.ws_send_buffer)

    async def subscribe(self, request: dict[str, Any]) -> None:
        try:
            sub = Subscribe.model_validate(request)
        except ValidationError as exc:
            errors = [
                {"field": ".".join(map(str, e["loc"])), "code": e["type"], "message": e["msg"]} for e in exc.errors()
            ]
            self.client.send(_problem("invalid_subscription", "The subscription has invalid fields.", errors))
            return
        wanted = FeedFilter(self.principal.project_id, frozenset(sub.jobs), frozenset(sub.types))
        async with self.sessions() as session:
            after = None
            if sub.since is not None:
                after = await feed_store.seq_of(session, self.principal.project_id, sub.since)
                if after is None:
                    self.client.send(_problem("unknown_since", f"No event {sub.since!r} in this project's feed."))
                    return
            self.hub.watch(self.client, wanted)  # from here live events are held, not lost
            replay = after is not None or bool(wanted.job_ids)
            events, cut = (
                await feed_store.history(session, wanted, after, self.settings.feed_history_limit)
                if replay
                else ([], False)
            )
        covered_from = _covered_from(events, after, cut) if replay else None
        events = self.client.unsent(events)  # the same subscription again sends nothing twice
        self.client.send(
            {
                "type": "subscribed",
                "jobs": [str(j) for j in sub.jobs],
                "types": sub.types,
                "since": sub.since,
                "history": len(events),
                "history_truncated": cut,
            }
        )
        sent: set[str] = set()
        for event in events:
            await self.client.send_history(event)
            sent.add(event.event_id)
        self.client.go_live(sent, covered_from)

    async def read(self) -> None:
        while True:
            try:
                text = await self.ws.receive_text()
            except WebSocketDisconnect:
                return
            try:
                message = json.loads(text)
                action = message.get("action") if isinstance(message, dict) else None
            except ValueError:
                action = None
            if action == "ping":
                self.client.send({"type": "pong"})
            elif action == "subscribe":
                await self.subscribe({k: v for k, v in message.items() if k != "action"})
            else:
                self.client.send(
                    _problem("invalid_message", 'Send {"action": "subscribe", ...} or {"action": "ping"}.')
                )

    async def run(self, ready: asyncio.Event, recheck: Callable[[], Awaitable[Principal | None]] | None = None) -> None:
        try:
            await asyncio.wait_for(ready.wait(), 5.0)
        except TimeoutError:
            await self.ws.close(CLOSE_NOT_READY, "live feed not ready; retry shortly")
            return
        self.hub.join(self.client)
        writer = asyncio.create_task(self.client.write())
        reader = asyncio.create_task(self._read_after(_query_subscription(self.ws)))
        tasks = {writer, reader}
        if recheck is not None:
            tasks.add(asyncio.create_task(watch_credential(recheck, self.settings.ws_recheck_seconds, self.client)))
        try:
            await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.hub.leave(self.client)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _read_after(self, initial: dict[str, Any] | None) -> None:
        if initial is not None:
            await self.subscribe(initial)
        await self.read()


def build_router(
    hub: Hub,
    sessions: async_sessionmaker[AsyncSession],
    tickets: RedisTicketStore,
    ready: asyncio.Event,
    settings: FeedSettings,
    verifier: TokenVerifier,
) -> APIRouter:
    router = APIRouter(tags=["feed"])

    @router.post("/api/v1/ws/tickets", status_code=201, summary="A single-use ticket to open the feed from a browser")
    async def issue_ticket(principal: Principal = Depends(current_principal)) -> Ticket:
        return Ticket(ticket=await tickets.issue(principal), expires_in=tickets.ttl_seconds)

    @router.websocket("/api/v1/ws")
    async def feed(ws: WebSocket) -> None:
        principal = ws.scope["state"]["principal"]  # set by AuthMiddleware (token or ticket)
        await ws.accept()
        scheme, _, token = ws.headers.get("authorization", "").partition(" ")
        # A bearer token is re-checked while the socket lives; a ticket was checked when it was issued.
        recheck = (lambda: verifier.verify(token.strip())) if scheme.lower() == "bearer" and token.strip() else None
        await FeedSocket(ws, principal, hub, sessions, settings).run(ready, recheck)

    return router
