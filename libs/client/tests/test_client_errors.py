"""Problem documents become one ApiError with status, code, title, detail and the problem list."""

from __future__ import annotations

import httpx
import pytest

from vtp_client import ApiError, Client, ConnectionFailed
from vtp_client.transport import RetryPolicy

DATASET_INVALID = {
    "type": "https://vtp.dev/problems/dataset_invalid",
    "title": "The dataset is not valid",
    "status": 422,
    "code": "dataset_invalid",
    "detail": "2 problem(s); nothing was stored.",
    "errors": [
        {
            "file": "annotations_detection.json",
            "pointer": "/annotations/0/bbox",
            "code": "bbox_outside",
            "message": "x",
        },
        {"file": "labels/a.txt", "line": 3, "code": "class_unknown", "message": "class 9"},
    ],
}


def client_answering(status: int, body: object, content_type: str = "application/problem+json") -> Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers={"content-type": "text/html"})
        return httpx.Response(status, json=body, headers={"content-type": content_type})

    return Client("http://vtp.test", "tok", http_transport=httpx.MockTransport(handler), max_tries=1)


def test_a_problem_document_is_one_api_error_with_every_field() -> None:
    with client_answering(422, DATASET_INVALID) as vtp, pytest.raises(ApiError) as caught:
        vtp.datasets.upload(b"PK", "bad")
    error = caught.value
    assert (error.status, error.code, error.title) == (422, "dataset_invalid", "The dataset is not valid")
    assert error.detail == "2 problem(s); nothing was stored."
    assert [(p.file, p.pointer, p.line, p.code) for p in error.problems] == [
        ("annotations_detection.json", "/annotations/0/bbox", None, "bbox_outside"),
        ("labels/a.txt", None, 3, "class_unknown"),
    ]
    text = str(error)
    assert text.splitlines()[0].startswith("422 dataset_invalid: The dataset is not valid (2 problem(s)")
    assert "POST http://vtp.test/api/v1/datasets" in text
    assert "  - annotations_detection.json/annotations/0/bbox: bbox_outside: x" in text
    assert "  - labels/a.txt:3: class_unknown: class 9" in text


def test_unknown_fields_of_a_problem_are_kept() -> None:
    body = {"status": 404, "code": "job_not_found", "title": "Job not found", "errors": [{"code": "c", "extra": 1}]}
    with client_answering(404, body) as vtp, pytest.raises(ApiError) as caught:
        vtp.jobs.get("00000000-0000-0000-0000-000000000000")
    assert caught.value.problems[0].model_extra == {"extra": 1}
    assert caught.value.body["code"] == "job_not_found"


def test_an_answer_that_is_no_problem_document_still_has_its_status() -> None:
    with client_answering(502, "<html>Bad gateway</html>") as vtp, pytest.raises(ApiError) as caught:
        vtp.projects.list()
    assert (caught.value.status, caught.value.code, caught.value.title) == (502, "http_502", "HTTP 502")
    assert caught.value.detail == "<html>Bad gateway</html>"


def test_no_answer_is_connection_failed_with_a_hint() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    policy = RetryPolicy(max_tries=2, base_delay=0)
    vtp = Client("http://vtp.test", http_transport=httpx.MockTransport(refuse), retry=policy)
    with vtp, pytest.raises(ConnectionFailed) as caught:
        vtp.whoami()
    assert caught.value.tries == 2
    assert "cannot reach http://vtp.test: ConnectError: [Errno 111] Connection refused (after 2 tries)" in str(
        caught.value
    )
    assert "make up" in str(caught.value)


def test_an_unhealthy_platform_is_a_report_not_an_error() -> None:
    down = {"status": "down", "services": {"jobs": {"status": "down"}}}
    with client_answering(503, down, "application/json") as vtp:
        assert vtp.health().services["jobs"]["status"] == "down"
    with client_answering(502, "<html>Bad gateway</html>") as vtp, pytest.raises(ApiError) as caught:
        vtp.health()
    assert caught.value.status == 502
