"""A local webhook receiver that verifies every delivery with the `standardwebhooks` package.

Each test gets its own endpoint (a path) with a plan of answers: fail the first tries, fail
always, or hold a request until released (to kill the notifier mid-try).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Endpoint:
    """What one subscription's URL answers; the secret is set once the subscription exists."""

    url: str
    fail_first: int = 0
    status_when_failing: int = 500
    always_fail: bool = False
    hold_first: bool = False
    secret: str | None = None
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            n = len(self.received) + 1
            verified = self._verify(headers, body)
            if not verified:
                status = 400
            elif self.always_fail or n <= self.fail_first:
                status = self.status_when_failing
            else:
                status = 200
            self.received.append(Received(headers, body, verified, status))
        if n == 1 and self.hold_first:
            self.release.wait(60)
        return status

    def _verify(self, headers: dict[str, str], body: bytes) -> bool:
        if self.secret is None:
            return False
        try:
            Webhook(self.secret).verify(body, headers)
            return True
        except WebhookVerificationError:
            return False

    def ok(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.status == 200]

    def count(self) -> int:
        with self.lock:
            return len(self.received)


class Receiver:
    """An HTTP server on 127.0.0.1 in a thread, serving any number of endpoints."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                endpoint = receiver.endpoints.get(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = endpoint.answer(headers, body) if endpoint else 404
                reply = json.dumps({"status": status, "note": "x" * 2000}).encode()  # longer than an excerpt
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the notifier went away mid-request (the restart test kills it)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.release.set()
        self._server.shutdown()
        self._server.server_close()

    def endpoint(self, **plan: Any) -> Endpoint:
        path = f"/hooks/{uuid.uuid4().hex}"
        endpoint = Endpoint(self.base + path, **plan)
        self.endpoints[path] = endpoint
        return endpoint
