"""An API key sees the batches it submitted, no other key's, through the gateway: another key with
`predict` on the same deployment gets 404 `batch_not_found` for them (get, results, cancel), exactly
as for a batch that does not exist, and its list leaves them out; the project token sees every batch;
a key's successor by rotation keeps its batches."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from vtp_localstack.stack import LocalStack

from ..inference.conftest import unique
from .conftest import deploy, submit

pytestmark = pytest.mark.integration


def _key(admin: httpx.Client, deployment_id: str) -> tuple[str, str]:
    """A key of the deployment with `predict`: (id, secret)."""
    response = admin.post(f"/api/v1/deployments/{deployment_id}/keys", json={"name": unique("owner")})
    assert response.status_code == 201, response.text
    return str(response.json()["id"]), str(response.json()["secret"])


def _not_found(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == "batch_not_found"
    return body


def test_a_batch_is_seen_by_the_key_that_submitted_it_and_the_project_only(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any], batch_zip: bytes
) -> None:
    deployment = deploy(stack, admin_token, onnx_export["id"], "batch-owners")
    base = f"/api/v1/deployments/{deployment['id']}/batches"
    (key_id, first), (_, second) = _key(admin, deployment["id"]), _key(admin, deployment["id"])
    project_wide = admin.post("/api/v1/keys", json={"name": unique("owner-all"), "scopes": ["predict"]})
    assert project_wide.status_code == 201, project_wide.text
    gateway = stack.cfg.gateway_url
    with (
        httpx.Client(base_url=gateway, headers={"api-key": first}, timeout=60) as one,
        httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {second}"}, timeout=60) as two,
        httpx.Client(base_url=gateway, headers={"api-key": project_wide.json()["secret"]}, timeout=60) as every,
    ):
        mine = submit(one, deployment["id"], batch_zip)
        assert mine.status_code == 202, mine.text
        theirs = submit(two, deployment["id"], batch_zip)
        assert theirs.status_code == 202, theirs.text
        mine_id, theirs_id = mine.json()["id"], theirs.json()["id"]
        by_token = admin.post(base, files={"file": ("images.zip", batch_zip)})
        assert by_token.status_code == 202, by_token.text

        assert [b["id"] for b in one.get(base).json()["items"]] == [mine_id]
        assert [b["id"] for b in two.get(base).json()["items"]] == [theirs_id]
        assert every.get(base).json()["items"] == []  # a key reaching every deployment: still none of theirs
        listed = {b["id"] for b in admin.get(base).json()["items"]}
        assert listed == {mine_id, theirs_id, by_token.json()["id"]}
        assert one.get(f"{base}/{mine_id}").status_code == 200

        missing = _not_found(two.get(f"{base}/{uuid.uuid4()}"))
        for other in (two, every):  # another key's batch: the same answer as no batch at all
            for response in (
                other.get(f"{base}/{mine_id}"),
                other.get(f"{base}/{mine_id}/results"),
                other.get(f"{base}/{mine_id}/results", params={"format": "coco"}),
                other.post(f"{base}/{mine_id}/cancel"),
            ):
                assert _not_found(response).keys() == missing.keys()
        _not_found(one.get(f"{base}/{by_token.json()['id']}"))  # the project token's batch: not a key's
        assert admin.get(f"{base}/{mine_id}").json()["cancel_requested"] is False  # their cancel did nothing

        rotated = admin.post(f"/api/v1/deployments/{deployment['id']}/keys/{key_id}/rotate", json={})
        assert rotated.status_code == 201, rotated.text
    with httpx.Client(base_url=gateway, headers={"api-key": rotated.json()["secret"]}, timeout=60) as successor:
        assert [b["id"] for b in successor.get(base).json()["items"]] == [mine_id]  # rotation keeps its batches
        assert successor.get(f"{base}/{mine_id}").status_code == 200
        _not_found(successor.get(f"{base}/{theirs_id}"))
