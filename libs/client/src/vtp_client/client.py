"""`Client(url, token)`: one object with a namespace per resource group (`client.jobs.create(...)`)."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx

from vtp_client._base import Resource
from vtp_client.batches import Batches
from vtp_client.config import resolve
from vtp_client.datasets import Datasets
from vtp_client.deployments import Deployments
from vtp_client.exports import Exports
from vtp_client.feed import Connect, Feed, FeedEvent
from vtp_client.hooks import Subscriptions
from vtp_client.jobs import Jobs, Trainers
from vtp_client.keys import Keys
from vtp_client.projects import Projects, Tokens, WhoAmI
from vtp_client.transport import DEFAULT_URL, RetryPolicy, Transport
from vtp_client.usage import UsageApi

__all__ = ["Client", "Health"]


class Health(Resource):
    """`status` (`ok` or `down`); `services` and `dependencies` only for an admin token."""

    status: str
    services: dict[str, Any] = {}
    dependencies: dict[str, Any] = {}


class Client:
    """The platform's public API.

    >>> with Client("http://127.0.0.1:8080", token) as vtp:
    ...     job = vtp.jobs.create(dataset_id, name="demo", config={"epochs": 3})
    ...     for event in vtp.follow_job(job.id):
    ...         print(event.type, event.data)

    `max_tries` bounds the tries of one request (see `vtp_client.transport` for what is retried);
    `http_transport` and `connect` replace the HTTP transport and the WebSocket connector (tests).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        max_tries: int = 4,
        retry: RetryPolicy | None = None,
        http_transport: httpx.BaseTransport | None = None,
        connect: Connect | None = None,
    ) -> None:
        policy = retry or RetryPolicy(max_tries=max_tries)
        self.transport = Transport(url, token, timeout=timeout, retry=policy, http_transport=http_transport)
        self.projects = Projects(self.transport)
        self.tokens = Tokens(self.transport)
        self.datasets = Datasets(self.transport)
        self.jobs = Jobs(self.transport)
        self.trainers = Trainers(self.transport)
        self.exports = Exports(self.transport)
        self.deployments = Deployments(self.transport)
        self.keys = Keys(self.transport)
        self.batches = Batches(self.transport)
        self.usage = UsageApi(self.transport)
        self.subscriptions = Subscriptions(self.transport)
        self.hooks = self.subscriptions
        self.feed = Feed(self.transport, connect=connect)

    @classmethod
    def from_config(cls, url: str | None = None, token: str | None = None, **kwargs: Any) -> Client:
        """Arguments, else `VTP_URL` / `VTP_TOKEN`, else the saved config (`vtp_client.config`)."""
        settings = resolve(url, token)
        return cls(settings.url, settings.token, **kwargs)

    @property
    def url(self) -> str:
        return self.transport.url

    def whoami(self) -> WhoAmI:
        return self.tokens.whoami()

    def health(self) -> Health:
        """The platform's health; an unhealthy platform answers too (`status: down`), it is not an error."""

        def once() -> httpx.Response:
            response = self.transport.http.get("/api/v1/health")
            try:
                report = response.json()
            except ValueError:
                report = None
            # 503 with a report is an unhealthy platform; anything else (a proxy's page, a problem) an error
            if response.status_code not in (200, 503) or not isinstance(report, dict) or "code" in report:
                raise self.transport.error(response)
            return response

        return Health.model_validate(self.transport.with_retries(once, True).json())

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every public route."""
        document: dict[str, Any] = self.transport.json("GET", "/api/v1/openapi.json")
        return document

    def follow_job(self, job_id: UUID | str, **kwargs: Any) -> Iterator[FeedEvent]:
        """Shortcut for `feed.follow_job`: the job's events until it is finished."""
        return self.feed.follow_job(job_id, **kwargs)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
