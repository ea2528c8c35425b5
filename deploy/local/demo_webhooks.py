"""The demo's webhook receiver: an HTTP server on 127.0.0.1 that verifies every delivery's signature.

`make demo` runs it in a thread; `python deploy/local/demo_webhooks.py SECRET [PORT]` runs it on its
own (docs/getting-started.md), printing each delivery it verified.

Deliveries follow Standard Webhooks (docs/webhooks.md); `standardwebhooks` checks the signature and
the timestamp over the raw body. A delivery that arrives before the secret is known is answered
503, so the notifier tries it again later.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


class Receiver:
    """Counts verified deliveries per event type; refuses (400) any whose signature does not verify."""

    def __init__(self, port: int = 0, echo: bool = False) -> None:
        self.secret: str | None = None
        self.echo = echo
        self.verified: Counter[str] = Counter()
        self.refused = 0
        self.ids: set[str] = set()
        self.duplicates = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver.receive({k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        if self.secret is None:
            return 503
        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            with self._lock:
                self.refused += 1
            return 400
        event = json.loads(body)
        kind = str(event.get("type"))
        if self.echo:
            print(f"verified {headers['webhook-id'][:8]}  {kind:<28} {event.get('subject') or ''}", flush=True)
        with self._lock:
            if headers["webhook-id"] in self.ids:  # at least once: the same event may come again
                self.duplicates += 1
            else:
                self.ids.add(headers["webhook-id"])
                self.verified[kind] += 1
        return 200

    def types(self) -> set[str]:
        with self._lock:
            return set(self.verified)

    def report(self) -> None:
        with self._lock:
            total = sum(self.verified.values())
            print(
                f"{total} events received with a valid signature, {self.refused} refused (bad signature), "
                f"{self.duplicates} duplicate(s) dropped"
            )
            for kind, count in sorted(self.verified.items()):
                print(f"  {count:>4}  {kind}")

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main() -> None:
    """`python deploy/local/demo_webhooks.py SECRET [PORT]`: print each verified delivery as it arrives."""
    import sys
    import time

    receiver = Receiver(port=int(sys.argv[2]) if len(sys.argv) > 2 else 8765, echo=True)
    receiver.secret = sys.argv[1]
    receiver.start()
    print(f"listening on {receiver.url}; Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        receiver.report()
        receiver.stop()


if __name__ == "__main__":
    main()
