"""The live feed over WebSocket (`/api/v1/ws`, docs/live-feed.md), resumed with `since` after a disconnect.

A dropped connection (network, a notifier restart, close codes 1012/1013, a slow-reader 4008)
is opened again with `since` set so that every event arrives exactly once, in order. An epoch is
two messages with one `event_id` (`progress`, then `metrics`), so the feed resumes after the event
*before* the last one and drops the messages of the last one it already yielded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode
from uuid import UUID

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from vtp_client._base import Group, Resource
from vtp_client.errors import ConnectionFailed, FeedError, Problem
from vtp_client.jobs import TERMINAL_JOB_STATUSES, Job
from vtp_client.transport import Transport

__all__ = ["Feed", "FeedEvent", "Ticket"]

CLOSE_REVOKED = 4401
MESSAGE_TYPES = ("job_status", "progress", "metrics", "checkpoint", "log", "error", "export", "deployment", "dataset")


class FeedEvent(Resource):
    """One feed message: `type` (see MESSAGE_TYPES), the event's id and order, its subject, its data."""

    type: str
    event_id: str
    seq: int | None = None
    time: datetime | None = None
    subject: str | None = None
    data: dict[str, Any] = {}

    @property
    def job_status(self) -> str | None:
        """`queued`, `started`, `completed`, `failed`, ... for job_status and error messages."""
        return str(self.data["status"]) if self.type in ("job_status", "error") and "status" in self.data else None


class Ticket(Resource):
    ticket: str
    expires_in: float


class Socket(Protocol):
    """What the feed needs of a WebSocket connection (websockets' sync ClientConnection)."""

    def recv(self, timeout: float | None = None) -> str | bytes: ...

    def close(self) -> None: ...


Connect = Callable[..., Socket]


def _default_connect(uri: str, **kwargs: Any) -> Socket:
    from websockets.sync.client import connect

    connection = connect(uri, **kwargs)
    # Entered as the context manager websockets wants; the feed closes it (`close`) when done with it.
    socket: Socket = connection.__enter__()
    return socket


class _Cursor:
    """Where to resume, and which messages of the last event were already yielded."""

    def __init__(self, since: str | None) -> None:
        self.since = since
        self.last: str | None = None
        self.before_last: str | None = None
        self.last_types: set[str] = set()

    def fresh(self, event_id: str, kind: str) -> bool:
        """True the first time this message is seen; remembers it."""
        if event_id == self.last:
            if kind in self.last_types:
                return False
            self.last_types.add(kind)
            return True
        self.before_last, self.last, self.last_types = self.last, event_id, {kind}
        return True

    def resume_from(self, job_scoped: bool) -> str | None:
        if self.before_last is not None:
            return self.before_last
        if self.last is None or job_scoped:
            return self.since  # job-scoped with no since replays the jobs' whole history: nothing is lost
        return self.last


class Feed(Group):
    """`client.feed`: iterate live events; `follow_job` until a job is finished."""

    def __init__(
        self,
        transport: Transport,
        *,
        connect: Connect | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_reconnects: int = 8,
        open_timeout: float = 15.0,
    ) -> None:
        super().__init__(transport)
        self._connect = connect or _default_connect
        self._sleep, self.max_reconnects, self.open_timeout = sleep, max_reconnects, open_timeout

    def ticket(self) -> Ticket:
        """A single-use ticket to open the feed where no header can be set (browsers): `?ticket=...`."""
        return Ticket.model_validate(self._t.json("POST", "/api/v1/ws/tickets"))

    def url(self, jobs: Sequence[UUID | str] = (), types: Sequence[str] = (), since: str | None = None) -> str:
        query: dict[str, str] = {"jobs": ",".join(str(j) for j in jobs)} if jobs else {"project": "true"}
        if types:
            query["types"] = ",".join(types)
        if since:
            query["since"] = since
        return f"{self._t.ws_url}/api/v1/ws?{urlencode(query, safe=',')}"

    def events(
        self, *, jobs: Sequence[UUID | str] = (), types: Sequence[str] = (), since: str | None = None
    ) -> Iterator[FeedEvent]:
        """Events of the given jobs (none: the whole project) and types, forever, reconnecting as needed.

        With `jobs` and no `since`, the jobs' history comes first; project-wide, only what happens
        from now (or after `since`). Raises `FeedError` for a refused handshake (403), a revoked token
        (401) or a refused subscription (400), `ConnectionFailed` after `max_reconnects` failed tries.
        """
        for event in self._stream(jobs, types, since, tick=None):
            if event is not None:
                yield event

    def follow_job(
        self, job_id: UUID | str, *, types: Sequence[str] = (), attempt: int | None = None, check_every: float = 15.0
    ) -> Iterator[FeedEvent]:
        """The job's events (its history first) until it is completed, failed or cancelled.

        Ends on the terminal event of the job's current attempt (`attempt`, read from the API when not
        given, so a restarted job's earlier ending does not end it), or when the API says the job
        finished after `check_every` quiet seconds (a job cancelled before any runner took it).
        `types`, when given, should include `job_status` and `error` to end promptly.
        """
        if attempt is None:
            attempt = self._job(job_id).attempt
        for event in self._stream([job_id], types, None, tick=check_every):
            if event is None:
                job = self._job(job_id)
                if job.finished and job.attempt >= attempt:
                    return
                continue
            yield event
            status = event.job_status
            if status in TERMINAL_JOB_STATUSES and int(event.data.get("attempt") or attempt) >= attempt:
                return

    def _job(self, job_id: UUID | str) -> Job:
        return Job.model_validate(self._t.json("GET", f"/api/v1/jobs/{job_id}"))

    def _stream(
        self, jobs: Sequence[UUID | str], types: Sequence[str], since: str | None, tick: float | None
    ) -> Iterator[FeedEvent | None]:
        """Events, and None after each `tick` quiet seconds; reconnects with `since` until it gives up."""
        cursor, failures = _Cursor(since), 0
        headers = {"Authorization": f"Bearer {self._t.token}"} if self._t.token else {}
        while True:
            url = self.url(jobs, types, cursor.resume_from(bool(jobs)))
            try:
                socket = self._connect(url, additional_headers=headers, open_timeout=self.open_timeout)
            except InvalidStatus as exc:
                status = exc.response.status_code
                raise FeedError(status, "feed_refused", f"the handshake was refused with HTTP {status}") from exc
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                failures += 1
                if isinstance(exc, InvalidURI) or failures >= self.max_reconnects:
                    raise ConnectionFailed(url, f"{type(exc).__name__}: {exc}", failures) from exc
                self._sleep(self._t.retry.delay(failures))
                continue
            try:
                for message in self._messages(socket, tick):
                    if message is None:
                        yield None
                        continue
                    if message.get("type") == "subscribed":
                        failures = 0  # a working connection: the reconnect budget starts again
                        continue
                    event = FeedEvent.model_validate(message)
                    if cursor.fresh(event.event_id, event.type):
                        yield event
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code == CLOSE_REVOKED:
                    raise FeedError(401, "token_revoked", "the token was revoked", close_code=code) from exc
                failures += 1
                if failures >= self.max_reconnects:
                    raise ConnectionFailed(url, f"closed ({code})", failures) from exc
                self._sleep(self._t.retry.delay(failures))
            finally:
                socket.close()

    @staticmethod
    def _messages(socket: Socket, tick: float | None) -> Iterator[dict[str, Any] | None]:
        """Parsed event messages (pongs skipped; problems raised), and None when `tick` passed quietly."""
        while True:
            try:
                raw = socket.recv(timeout=tick)
            except TimeoutError:
                yield None
                continue
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "problem":
                problems = [Problem.model_validate(e) for e in message.get("errors") or []]
                raise FeedError(400, str(message.get("code")), str(message.get("detail")), problems)
            if kind == "subscribed" or message.get("event_id"):
                yield message
