"""Inputs an outsider may send are refused with 422, and a bug never costs the next request.

Found by fuzzing the OpenAPI documents: huge offsets and NUL characters used to reach
PostgreSQL and answer 500, and each 500 closed the service's keep-alive connection, so the
gateway's next POST on it answered an empty 502.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from vtp_localstack.stack import LocalStack
from vtp_runtime.http.fields import MAX_OFFSET

from .notifier.conftest import next_message, open_feed

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"
BUG = {"X-VTP-Failpoint": "http.bug"}  # see tests/conftest.py: the service raises, as a bug would
MISSING = uuid.uuid4()
COLLECTIONS = ["/api/v1/jobs", "/api/v1/datasets", "/api/v1/subscriptions"]
PAGINATED = [*COLLECTIONS, f"/api/v1/jobs/{MISSING}/logs", f"/api/v1/subscriptions/{MISSING}/deliveries"]


def _errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    return {e["pointer"]: e["code"] for e in response.json()["errors"]}


@pytest.mark.parametrize("offset", [MAX_OFFSET + 1, 2**63 - 1, 2**63, 2**64])
@pytest.mark.parametrize("path", PAGINATED)
def test_an_offset_out_of_range_is_422(admin: httpx.Client, path: str, offset: int):
    assert "#/query/offset" in _errors(admin.get(path, params={"offset": offset}))


@pytest.mark.parametrize("path", COLLECTIONS)
def test_the_largest_offset_is_an_empty_page(admin: httpx.Client, path: str):
    response = admin.get(path, params={"offset": MAX_OFFSET})
    assert response.status_code == 200, response.text
    assert response.json()["items"] == [] and response.json()["offset"] == MAX_OFFSET


def test_nul_in_project_and_token_names_is_422_and_stores_nothing(admin: httpx.Client):
    before = admin.get("/api/v1/projects").json()
    assert _errors(admin.post("/api/v1/projects", json={"name": "a\x00b"})) == {"#/body/name": "nul_character"}
    assert admin.get("/api/v1/projects").json() == before
    project_id = before[0]["id"]
    tokens = admin.get(f"/api/v1/projects/{project_id}/tokens").json()
    response = admin.post(f"/api/v1/projects/{project_id}/tokens", json={"name": "\x00"})
    assert _errors(response) == {"#/body/name": "nul_character"}
    assert admin.get(f"/api/v1/projects/{project_id}/tokens").json() == tokens


def test_nul_in_dataset_name_description_and_search_is_422(admin: httpx.Client):
    before = admin.get("/api/v1/datasets").json()["total"]
    response = admin.post(
        "/api/v1/datasets",
        data={"name": "shapes\x00", "description": "about\x00"},
        files={"file": ("dataset.zip", b"PK\x05\x06" + b"\x00" * 18, "application/zip")},
    )
    assert _errors(response) == {"#/form/name": "nul_character", "#/form/description": "nul_character"}
    assert admin.get("/api/v1/datasets").json()["total"] == before
    assert _errors(admin.get("/api/v1/datasets", params={"search": "a\x00b"})) == {"#/query/search": "nul_character"}


def test_nul_in_subscription_url_and_description_is_422(admin: httpx.Client):
    before = admin.get("/api/v1/subscriptions").json()["total"]
    response = admin.post("/api/v1/subscriptions", json={"url": "http://127.0.0.1:9/\x00", "description": "\x00"})
    assert _errors(response) == {"#/body/url": "nul_character", "#/body/description": "nul_character"}
    assert admin.get("/api/v1/subscriptions").json()["total"] == before
    created = admin.post("/api/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook", "description": "fine"})
    assert created.status_code == 201, created.text
    url = f"/api/v1/subscriptions/{created.json()['id']}"
    try:
        patch = admin.patch(url, json={"url": "http://127.0.0.1:9/\x00x", "description": "x\x00"})
        assert _errors(patch) == {"#/body/url": "nul_character", "#/body/description": "nul_character"}
        stored = admin.get(url).json()
        assert stored["url"] == "http://127.0.0.1:9/hook" and stored["description"] == "fine"
    finally:
        admin.delete(url)


def test_nul_in_job_name_and_cancel_reason_is_422(admin: httpx.Client):
    before = admin.get("/api/v1/jobs").json()["total"]
    job = {"name": "train\x00", "task_type": "detect", "model": "yolo11n", "dataset_id": str(MISSING)}
    assert _errors(admin.post("/api/v1/jobs", json=job)).get("#/body/name") == "nul_character"
    assert admin.get("/api/v1/jobs").json()["total"] == before
    cancel = admin.post(f"/api/v1/jobs/{MISSING}/cancel", json={"reason": "because\x00"})
    assert _errors(cancel) == {"#/body/reason": "nul_character"}


async def test_nul_in_the_feeds_resume_point_is_an_invalid_subscription(stack: LocalStack, admin_token: str):
    async with open_feed(stack.cfg.gateway_url, {"Authorization": f"Bearer {admin_token}"}) as ws:
        await ws.send(json.dumps({"action": "subscribe", "since": "evt\x00"}))
        problem = await next_message(ws)
        assert problem["code"] == "invalid_subscription"
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [("since", "nul_character")]
        await ws.send(json.dumps({"action": "subscribe", "project": True}))
        assert (await next_message(ws))["type"] == "subscribed"  # the socket lives on


# One POST route per service (identity, jobs, datasets, export, inference, notifier, gateway app).
POSTS = [
    "/api/v1/projects",
    "/api/v1/jobs",
    "/api/v1/datasets",
    "/api/v1/exports",
    "/api/v1/deployments",
    "/api/v1/subscriptions",
    "/api/v1/nowhere",
]


@pytest.mark.parametrize("path", POSTS)
def test_after_a_bug_the_next_post_on_the_same_connection_works(admin: httpx.Client, path: str):
    # httpx keeps one connection to the gateway, which keeps its own to the service: before the
    # fix the service closed it after each 500 and the gateway's next POST answered an empty 502.
    for _ in range(10):
        bug = admin.post(path, json={"name": "x"}, headers=BUG)
        assert bug.status_code == 500 and bug.headers["content-type"] == PROBLEM, bug.text
        assert bug.json()["code"] == "internal_error" and "failpoint" not in bug.text
        after = admin.post(path, json={})
        assert 400 <= after.status_code < 500, after.text
        assert after.headers["content-type"] == PROBLEM
