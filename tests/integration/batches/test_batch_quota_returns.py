"""A batch that ends cancelled or failed gives the images it never processed back to the quotas it
took them from (the deployment's and the key's, day and month), once; usage counts only what it
processed. Through the gateway: the `RateLimit` fields of a predict after the batch show the images
back, the batch's `quota` says how many, and the key's usage holds the processed images only."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from vtp_localstack.stack import LocalStack

from ..inference.conftest import unique
from .conftest import deploy, submit, wait_batch

pytestmark = pytest.mark.integration
POLICIES = ("deployment-images-per-day", "key-images-per-day", "key-images-per-month")


def _left(response: httpx.Response) -> dict[str, int]:
    """The remaining images per quota policy, from the `RateLimit` field."""
    found = re.findall(r'"([a-z-]+)";r=(\d+);', response.headers["RateLimit"])
    return {name: int(r) for name, r in found if name in POLICIES}


def _setup(stack: LocalStack, admin_token: str, admin: httpx.Client, export_id: str) -> tuple[dict[str, Any], str, str]:
    deployment = deploy(stack, admin_token, export_id, "batch-returns")
    assert admin.put(f"/api/v1/deployments/{deployment['id']}/limits", json={"images_per_day": 500}).status_code == 200
    limits = {"images_per_day": 100, "images_per_month": 1000}
    response = admin.post(
        f"/api/v1/deployments/{deployment['id']}/keys", json={"name": unique("returns"), "limits": limits}
    )
    assert response.status_code == 201, response.text
    return deployment, response.json()["id"], response.json()["secret"]


def _returned(batch: dict[str, Any]) -> bool:
    unprocessed = batch["progress"]["total_images"] - batch["progress"]["processed_images"]
    return batch["status"] in ("cancelled", "failed") and batch["quota"]["images_returned"] == unprocessed


def _predict_one(key: httpx.Client, deployment_id: str, image: bytes) -> dict[str, int]:
    response = key.post(f"/api/v1/deployments/{deployment_id}/predict", files=[("file", ("a.jpg", image))])
    assert response.status_code == 200, response.text
    return _left(response)


def test_a_cancelled_batch_gives_back_what_it_did_not_process_and_usage_counts_what_it_did(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any],
    images: dict[str, bytes], batch_zip: bytes,
) -> None:  # fmt: skip
    deployment, key_id, secret = _setup(stack, admin_token, admin, onnx_export["id"])
    began = datetime.now(UTC)
    with httpx.Client(base_url=stack.cfg.gateway_url, headers={"api-key": secret}, timeout=60) as key:
        created = submit(key, deployment["id"], batch_zip)
        assert created.status_code == 202, created.text
        taken = _left(created)
        assert taken == {"deployment-images-per-day": 480, "key-images-per-day": 80, "key-images-per-month": 980}
        assert created.json()["quota"] == {"images_taken": 20, "images_returned": 0}
        path = f"/api/v1/deployments/{deployment['id']}/batches/{created.json()['id']}"
        cancelled = key.post(f"{path}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        done = wait_batch(key, path, _returned)
        processed = done["progress"]["processed_images"]
        assert done["status"] == "cancelled" and done["quota"]["images_returned"] == 20 - processed, done
        again = key.post(f"{path}/cancel")  # the end is not taken twice: nothing more comes back
        assert again.status_code == 409 and again.json()["code"] == "batch_finished"
        left = _predict_one(key, deployment["id"], next(iter(images.values())))
        assert left == {name: r + (20 - processed) - 1 for name, r in taken.items()}, (left, processed)

    window = {"from": (began - timedelta(hours=1)).isoformat(), "to": (began + timedelta(hours=1)).isoformat()}
    usage = f"/api/v1/deployments/{deployment['id']}/usage"
    deadline = time.monotonic() + 90
    while (total := admin.get(usage, params={**window, "key_id": key_id}).json()["total"])["images"] < processed + 1:
        assert time.monotonic() < deadline, total
        time.sleep(1)
    time.sleep(6)  # another flush: nothing more arrives
    assert admin.get(usage, params={**window, "key_id": key_id}).json()["total"]["images"] == processed + 1


def test_a_failed_batch_gives_back_every_image_it_did_not_process(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any],
    images: dict[str, bytes], batch_zip: bytes,
) -> None:  # fmt: skip
    deployment, _, secret = _setup(stack, admin_token, admin, onnx_export["id"])
    base = f"/api/v1/deployments/{deployment['id']}"
    with httpx.Client(base_url=stack.cfg.gateway_url, headers={"api-key": secret}, timeout=60) as key:
        for _ in range(3):  # the deployment is deactivated before the worker loads it (else it succeeds: again)
            created = submit(key, deployment["id"], batch_zip)
            assert created.status_code == 202, created.text
            assert admin.post(f"{base}/deactivate").status_code == 200
            done = wait_batch(key, f"{base}/batches/{created.json()['id']}")
            assert admin.post(f"{base}/activate").status_code == 200
            if done["status"] == "failed":
                break
        assert done["status"] == "failed" and done["error"]["code"] == "DEPLOYMENT_NOT_READY", done
        done = wait_batch(key, f"{base}/batches/{done['id']}", _returned)
        assert done["quota"] == {"images_taken": 20, "images_returned": 20 - done["progress"]["processed_images"]}
        left = _predict_one(key, deployment["id"], next(iter(images.values())))
        assert left == {name: r + done["quota"]["images_returned"] - 1 for name, r in _left(created).items()}
