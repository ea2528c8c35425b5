"""The live feed: typed events, resume with `since` after a disconnect, exactly once; follow_job's end."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from vtp_client import Client, ConnectionFailed, FeedError
from vtp_client.transport import RetryPolicy

JOB = "44444444-4444-4444-4444-444444444444"


def message(event_id: str, kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": event_id, "seq": int(event_id[1:]), "subject": JOB, "data": data}


SUBSCRIBED = {"type": "subscribed", "history": 0, "history_truncated": False}


def closed(code: int) -> ConnectionClosed:
    return ConnectionClosed(Close(code, "bye"), None)


class FakeSocket:
    """Plays a script of messages (dicts), exceptions to raise, or TimeoutError for a quiet spell."""

    def __init__(self, script: list[Any]) -> None:
        self.script, self.closed = script, False

    def recv(self, timeout: float | None = None) -> str:
        if not self.script:
            raise closed(1012)
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return json.dumps(item)

    def close(self) -> None:
        self.closed = True


class FakeConnect:
    """Hands out one scripted socket (or raises) per connection attempt, recording URLs and headers."""

    def __init__(self, *scripts: list[Any] | BaseException) -> None:
        self.scripts, self.urls, self.headers, self.sockets = (
            list(scripts),
            list[str](),
            list[Any](),
            list[FakeSocket](),
        )

    def __call__(self, uri: str, **kwargs: Any) -> FakeSocket:
        self.urls.append(uri)
        self.headers.append(kwargs.get("additional_headers"))
        script = self.scripts.pop(0)
        if isinstance(script, BaseException):
            raise script
        self.sockets.append(FakeSocket(script))
        return self.sockets[-1]


def job_api(*jobs: dict[str, Any]) -> httpx.MockTransport:
    answers = list(jobs)

    def handler(request: httpx.Request) -> httpx.Response:
        body = answers.pop(0) if len(answers) > 1 else answers[0]
        base = {"id": JOB, "name": "j", "framework": "ultralytics", "task_type": "detect", "model": "yolo11n"}
        return httpx.Response(200, json=base | {"dataset_id": JOB, "snapshot_id": JOB} | body)

    return httpx.MockTransport(handler)


def client(connect: FakeConnect, http: httpx.MockTransport | None = None) -> Client:
    vtp = Client(
        "https://vtp.test", "tok", connect=connect, http_transport=http, retry=RetryPolicy(base_delay=0, max_tries=3)
    )
    vtp.feed._sleep = lambda seconds: None
    return vtp


def take(events: Iterator[Any], n: int) -> list[Any]:
    return [next(events) for _ in range(n)]


def test_events_are_typed_and_the_socket_is_authenticated_by_header() -> None:
    connect = FakeConnect([SUBSCRIBED, {"type": "pong"}, message("e1", "log", lines=["hi"])])
    with client(connect) as vtp:
        (event,) = take(vtp.feed.events(jobs=[JOB], types=["log"]), 1)
    assert (event.type, event.event_id, event.seq, event.subject, event.data) == (
        "log",
        "e1",
        1,
        JOB,
        {"lines": ["hi"]},
    )
    assert connect.urls == [f"wss://vtp.test/api/v1/ws?jobs={JOB}&types=log"]
    assert connect.headers == [{"Authorization": "Bearer tok"}]


def test_a_disconnect_resumes_after_the_event_before_the_last_and_yields_each_message_once() -> None:
    first = [
        SUBSCRIBED,
        message("e1", "job_status", status="started"),
        message("e2", "progress", epoch=1),  # the connection drops between an epoch's two messages
        closed(1012),
    ]
    second = [
        SUBSCRIBED,
        message("e2", "progress", epoch=1),  # replayed after since=e1: already yielded, dropped
        message("e2", "metrics", epoch=1),  # never yielded: kept
        message("e3", "job_status", status="completed"),
    ]
    connect = FakeConnect(first, second)
    with client(connect) as vtp:
        events = take(vtp.feed.events(), 4)
    assert [(e.event_id, e.type) for e in events] == [
        ("e1", "job_status"),
        ("e2", "progress"),
        ("e2", "metrics"),
        ("e3", "job_status"),
    ]
    assert connect.urls[0] == "wss://vtp.test/api/v1/ws?project=true"
    assert connect.urls[1] == "wss://vtp.test/api/v1/ws?project=true&since=e1"
    assert all(s.closed for s in connect.sockets)


def test_refused_connections_are_retried_then_given_up() -> None:
    connect = FakeConnect(ConnectionRefusedError(111, "refused"), [SUBSCRIBED, message("e1", "log")])
    with client(connect) as vtp:
        assert take(vtp.feed.events(since="e0"), 1)[0].event_id == "e1"
    assert connect.urls[0].endswith("since=e0") and connect.urls[1].endswith("since=e0")

    connect = FakeConnect(*[ConnectionRefusedError(111, "refused") for _ in range(8)])
    with client(connect) as vtp, pytest.raises(ConnectionFailed) as caught:
        next(vtp.feed.events())
    assert caught.value.tries == 8


def test_a_revoked_token_a_refused_handshake_and_a_bad_subscription_are_feed_errors() -> None:
    with client(FakeConnect([SUBSCRIBED, closed(4401)])) as vtp, pytest.raises(FeedError) as caught:
        next(vtp.feed.events())
    assert (caught.value.status, caught.value.code, caught.value.close_code) == (401, "token_revoked", 4401)

    refused = InvalidStatus(Response(403, "Forbidden", Headers()))
    with client(FakeConnect(refused)) as vtp, pytest.raises(FeedError) as caught:
        next(vtp.feed.events())
    assert (caught.value.status, caught.value.code) == (403, "feed_refused")

    problem = {"type": "problem", "code": "invalid_subscription", "detail": "bad", "errors": [{"field": "types.0"}]}
    with client(FakeConnect([problem])) as vtp, pytest.raises(FeedError) as caught:
        next(vtp.feed.events(types=["nope"]))
    assert (caught.value.status, caught.value.code) == (400, "invalid_subscription")
    assert caught.value.problems[0].field == "types.0"


def test_follow_job_ends_at_the_current_attempts_end_not_an_earlier_one() -> None:
    script = [
        SUBSCRIBED,
        message("e1", "job_status", status="completed", attempt=1),  # history of the first run
        message("e2", "job_status", status="queued", attempt=2),
        message("e3", "error", status="failed", attempt=2, error={"code": "oom"}),
        message("e4", "log", lines=["never read"]),
    ]
    with client(FakeConnect(script), job_api({"status": "queued", "attempt": 2})) as vtp:
        events = list(vtp.follow_job(JOB))
    assert [e.event_id for e in events] == ["e1", "e2", "e3"]
    assert events[-1].job_status == "failed"


def test_follow_job_asks_the_api_after_a_quiet_spell() -> None:
    script = [
        SUBSCRIBED,
        message("e1", "job_status", status="cancel_requested", attempt=1),
        TimeoutError(),
        TimeoutError(),
    ]
    http = job_api(
        {"status": "queued", "attempt": 1}, {"status": "running", "attempt": 1}, {"status": "cancelled", "attempt": 1}
    )
    with client(FakeConnect(script), http) as vtp:
        events = list(vtp.feed.follow_job(JOB, check_every=0.01))
    assert [e.event_id for e in events] == ["e1"]


@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_a_real_socket_resumes_after_a_server_restart_close() -> None:
    """A websockets server in this process: the client's own connector, headers and close codes."""
    import threading

    from websockets.sync.server import ServerConnection, serve

    paths: list[str] = []

    def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        paths.append(ws.request.path)
        assert ws.request.headers["Authorization"] == "Bearer tok"
        ws.send(json.dumps(SUBSCRIBED))
        if len(paths) == 1:
            ws.send(json.dumps(message("e1", "job_status", status="started")))
            ws.send(json.dumps(message("e2", "progress", epoch=1)))
            ws.close(1012, "restarting")
            return
        for item in (message("e2", "progress", epoch=1), message("e2", "metrics", epoch=1)):
            ws.send(json.dumps(item))
        with contextlib.suppress(ConnectionClosed):
            ws.recv()  # until the client is done and closes

    with serve(handler, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        vtp = Client(f"http://127.0.0.1:{port}", "tok", retry=RetryPolicy(base_delay=0.01))
        with vtp:
            events = vtp.feed.events(jobs=[JOB])
            got = [(e.event_id, e.type) for e in take(events, 3)]
            events.close()
        server.shutdown()
    assert got == [("e1", "job_status"), ("e2", "progress"), ("e2", "metrics")]
    assert paths == [f"/api/v1/ws?jobs={JOB}", f"/api/v1/ws?jobs={JOB}&since=e1"]
