"""Retries with exponential backoff and jitter: what is retried, how long each wait is, Retry-After."""

from __future__ import annotations

import random
from collections.abc import Callable

import httpx
import pytest

from vtp_client import ApiError, Client, ConnectionFailed
from vtp_client.transport import RetryPolicy

UNAVAILABLE = {"status": 503, "code": "dependency_unavailable", "title": "Service unavailable"}
JOB_ID = "11111111-1111-1111-1111-111111111111"
EXPORT = {
    "id": "22222222-2222-2222-2222-222222222222",
    "job_id": JOB_ID,
    "version": 1,
    "name": "v1",
    "format": "onnx",
    "task_type": "detect",
    "status": "queued",
}


class Script:
    """A hand-written fake server: answers (or raises) from a list, recording each request."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]) -> None:
        self.answers, self.requests = list(answers), list[httpx.Request]()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer


def make(script: Script, sleeps: list[float], **policy: float | int) -> Client:
    retry = RetryPolicy(rng=random.Random(0), **policy)  # type: ignore[arg-type]
    vtp = Client("http://vtp.test", "t", http_transport=httpx.MockTransport(script), retry=retry)
    vtp.transport._sleep = sleeps.append
    return vtp


def ok(body: object) -> httpx.Response:
    return httpx.Response(200, json=body)


def test_a_get_is_retried_on_503_with_growing_jittered_waits() -> None:
    script, sleeps = Script(httpx.Response(503, json=UNAVAILABLE), httpx.Response(503, json=UNAVAILABLE), ok([])), []
    with make(script, sleeps, base_delay=1.0, jitter=0.5) as vtp:
        assert vtp.projects.list() == []
    assert len(script.requests) == 3
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0  # base * 2**n, times a factor in [0.5, 1]


def test_waits_are_capped_and_the_last_error_is_raised_after_max_tries() -> None:
    script, sleeps = Script(*[httpx.Response(503, json=UNAVAILABLE) for _ in range(5)]), []
    vtp = make(script, sleeps, max_tries=5, base_delay=1.0, max_delay=3.0, jitter=0.0)
    with vtp, pytest.raises(ApiError) as caught:
        vtp.jobs.get(JOB_ID)
    assert caught.value.status == 503 and len(script.requests) == 5
    assert sleeps == [1.0, 2.0, 3.0, 3.0]


def test_429_is_retried_for_any_method_after_retry_after() -> None:
    limited = httpx.Response(429, json={"status": 429, "code": "rate_limited"}, headers={"Retry-After": "7"})
    job = {"id": JOB_ID, "name": "j", "status": "queued", "attempt": 1, "framework": "ultralytics"}
    job |= {"task_type": "detect", "model": "yolo11n", "dataset_id": JOB_ID, "snapshot_id": JOB_ID}
    script, sleeps = Script(limited, httpx.Response(201, json=job)), []
    with make(script, sleeps) as vtp:
        assert vtp.jobs.create(JOB_ID, name="j").status == "queued"
    assert sleeps == [7.0]
    assert [r.method for r in script.requests] == ["POST", "POST"]


def test_a_retry_after_longer_than_the_limit_is_not_waited_for() -> None:
    limited = httpx.Response(429, json={"status": 429, "code": "quota_exceeded"}, headers={"Retry-After": "3600"})
    script, sleeps = Script(limited, ok([])), []
    vtp = make(script, sleeps, max_retry_after=10.0)
    with vtp, pytest.raises(ApiError) as caught:
        vtp.projects.list()
    assert (caught.value.code, caught.value.retry_after, sleeps) == ("quota_exceeded", 3600.0, [])


def test_a_post_that_may_have_been_applied_is_not_retried() -> None:
    script, sleeps = Script(httpx.Response(503, json=UNAVAILABLE)), []
    with make(script, sleeps) as vtp, pytest.raises(ApiError):
        vtp.jobs.create(JOB_ID, name="j")
    assert len(script.requests) == 1 and sleeps == []

    script = Script(httpx.ReadError("connection reset"))
    with make(script, sleeps) as vtp, pytest.raises(ConnectionFailed) as caught:
        vtp.jobs.create(JOB_ID, name="j")
    assert caught.value.tries == 1 and "may have been applied" in str(caught.value)


def test_a_post_that_never_left_is_retried() -> None:
    job = {"id": JOB_ID, "name": "j", "status": "queued", "attempt": 1, "framework": "ultralytics"}
    job |= {"task_type": "detect", "model": "yolo11n", "dataset_id": JOB_ID, "snapshot_id": JOB_ID}
    script, sleeps = Script(httpx.ConnectError("refused"), httpx.Response(201, json=job)), []
    with make(script, sleeps) as vtp:
        vtp.jobs.create(JOB_ID, name="j")
    assert len(script.requests) == 2 and len(sleeps) == 1


def test_safe_posts_are_retried_like_reads() -> None:
    script, sleeps = Script(httpx.Response(503, json=UNAVAILABLE), httpx.ReadTimeout("slow"), ok(EXPORT)), []
    with make(script, sleeps) as vtp:
        assert vtp.exports.create(JOB_ID, "onnx").format == "onnx"
    assert len(script.requests) == 3


def test_requests_carry_the_token_and_drop_unset_parameters() -> None:
    page = {"items": [EXPORT], "total": 1, "limit": 50, "offset": 0}
    script, sleeps = Script(ok(page)), []
    with make(script, sleeps) as vtp:
        result = vtp.exports.list(job_id=JOB_ID, default=True)
    request = script.requests[0]
    assert request.headers["authorization"] == "Bearer t"
    assert dict(request.url.params) == {"job_id": JOB_ID, "default": "true", "limit": "50", "offset": "0"}
    assert result.items[0].status == "queued"


def test_unknown_fields_of_a_resource_are_kept() -> None:
    script, sleeps = Script(ok(EXPORT | {"new_field": {"a": 1}})), []
    with make(script, sleeps) as vtp:
        export = vtp.exports.get(EXPORT["id"])
    assert export.model_extra == {"new_field": {"a": 1}}
