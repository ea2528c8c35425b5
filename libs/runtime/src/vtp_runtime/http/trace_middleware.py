"""Every request's trace context: the caller's ``traceparent`` (or a new trace), answered back."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vtp_runtime.telemetry import server_span
from vtp_runtime.tracing import CURRENT, HEADER, STATE_HEADER, TraceContext, parse


class TraceMiddleware:
    """Sets the request's trace context and answers it in a ``traceparent`` response header.

    Events the request stages carry a child span of it (:func:`vtp_runtime.messaging.tracing.outgoing_trace`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        state = headers.get(STATE_HEADER.encode())
        parent = parse(headers.get(HEADER.encode(), b"").decode("latin-1"), state.decode("latin-1") if state else None)
        name = f"{scope.get('method', 'WEBSOCKET')} {scope['path']}"
        with server_span(name, parent) as context:
            await self._serve(context, scope, receive, send)

    async def _serve(self, context: TraceContext, scope: Scope, receive: Receive, send: Send) -> None:
        token = CURRENT.set(context)

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER.encode()]
                message = {**message, "headers": [*headers, (HEADER.encode(), context.traceparent.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            CURRENT.reset(token)
