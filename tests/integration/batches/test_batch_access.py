"""Batches with API keys and image quotas through the gateway: a batch takes its images from the
deployment's and the key's quotas at once or is refused with nothing stored; a key works with the
zip batches of its deployment only; the batch's images are metered under the key."""

from __future__ import annotations

import io
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from vtp_dice.sample import generate
from vtp_localstack.stack import LocalStack

from ..datasets.conftest import upload
from ..inference.conftest import unique
from .conftest import deploy, rows_of, submit, wait_batch, zip_of

pytestmark = pytest.mark.integration


def create_key(api: httpx.Client, deployment_id: str, **body: Any) -> str:
    response = api.post(f"/api/v1/deployments/{deployment_id}/keys", json={"name": unique("batch-key"), **body})
    assert response.status_code == 201, response.text
    return str(response.json()["secret"])


def test_a_batch_takes_its_images_from_the_quotas_at_once_or_is_refused_and_leaves_nothing(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any],
    images: dict[str, bytes], batch_zip: bytes,
) -> None:  # fmt: skip
    deployment = deploy(stack, admin_token, onnx_export["id"], "batch-quota")
    base = f"/api/v1/deployments/{deployment['id']}"
    assert admin.put(f"{base}/limits", json={"images_per_day": 25}).status_code == 200
    secret = create_key(admin, deployment["id"], limits={"images_per_day": 10})
    five = zip_of(dict(list(images.items())[:5]))
    with httpx.Client(base_url=stack.cfg.gateway_url, headers={"api-key": secret}, timeout=60) as keyed:
        over_key = submit(keyed, deployment["id"], batch_zip)  # 20 images > the key's 10
        assert over_key.status_code == 429, over_key.text
        assert over_key.headers["content-type"].startswith("application/problem+json")
        assert over_key.json()["code"] == "rate_limited" and "key-images-per-day" in over_key.json()["detail"]
        assert int(over_key.headers["Retry-After"]) >= 1

        first = submit(admin, deployment["id"], batch_zip)  # the project token: the deployment's 25
        assert first.status_code == 202, first.text
        assert '"deployment-images-per-day";r=5;' in first.headers["RateLimit"]
        over = submit(admin, deployment["id"], batch_zip)  # 20 more > the 5 left: refused whole
        assert over.status_code == 429 and over.json()["code"] == "rate_limited", over.text
        assert "deployment-images-per-day" in over.json()["detail"] and "20 images" in over.json()["detail"]
        assert '"deployment-images-per-day";r=5;' in over.headers["RateLimit"]  # nothing was taken
        assert [b["id"] for b in admin.get(f"{base}/batches").json()["items"]] == [first.json()["id"]]

        by_key = submit(keyed, deployment["id"], five)  # 5 fit both the key's 10 and the deployment's 5
        assert by_key.status_code == 202, by_key.text
        assert '"key-images-per-day";r=5;' in by_key.headers["RateLimit"]
    one = admin.post(f"{base}/predict", files=[("file", ("a.jpg", next(iter(images.values()))))])
    assert one.status_code == 429 and one.json()["code"] == "rate_limited"  # predicts share the quota
    assert len(admin.get(f"{base}/batches").json()["items"]) == 2


@pytest.fixture(scope="module")
def small_snapshot(stack: LocalStack, admin_token: str, tmp_path_factory: Any) -> dict[str, Any]:
    """A snapshot of a 6-image dataset of the admin's project."""
    root = generate(tmp_path_factory.mktemp("key-snap") / "d", images=6, size=(64, 64), seed=5, tasks=("detection",))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=120) as api:
        response = upload(api, out.getvalue(), unique("key-snap"))
        assert response.status_code == 201, response.text
        created = api.post(f"/api/v1/datasets/{response.json()['id']}/snapshots")
        assert created.status_code == 201, created.text
        return dict(created.json())


def test_a_key_works_with_the_zip_batches_of_its_deployment_only_and_is_metered(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any],
    batch_zip: bytes, small_snapshot: dict[str, Any],
) -> None:  # fmt: skip
    mine = deploy(stack, admin_token, onnx_export["id"], "batch-key")
    other = deploy(stack, admin_token, onnx_export["id"], "batch-key-other")
    began = datetime.now(UTC)
    response = admin.post(f"/api/v1/deployments/{mine['id']}/keys", json={"name": unique("k"), "scopes": ["predict"]})
    assert response.status_code == 201, response.text
    key_id, secret = response.json()["id"], response.json()["secret"]
    base, elsewhere = f"/api/v1/deployments/{mine['id']}/batches", f"/api/v1/deployments/{other['id']}/batches"
    project_snapshot = admin.post(base, json={"snapshot_id": small_snapshot["id"]})
    assert project_snapshot.status_code == 202, project_snapshot.text  # project tokens keep every source
    with httpx.Client(base_url=stack.cfg.gateway_url, headers={"Authorization": f"Bearer {secret}"}, timeout=60) as key:
        created = submit(key, mine["id"], batch_zip, conf="0.001")
        assert created.status_code == 202, created.text
        path = f"{base}/{created.json()['id']}"
        done = wait_batch(key, path)
        assert done["status"] == "succeeded", done
        assert len(rows_of(key, path)) == 20
        assert key.get(f"{path}/results", params={"format": "coco"}).status_code == 200
        assert [b["id"] for b in key.get(base).json()["items"]] == [created.json()["id"]]  # no snapshot batch
        hidden = key.get(f"{base}/{project_snapshot.json()['id']}")
        assert hidden.status_code == 404 and hidden.json()["code"] == "batch_not_found"
        finished = key.post(f"{path}/cancel")
        assert finished.status_code == 409 and finished.json()["code"] == "batch_finished"

        snapshot = key.post(base, json={"snapshot_id": small_snapshot["id"]})
        assert snapshot.status_code == 403 and snapshot.json()["code"] == "credential_not_allowed", snapshot.text
        for refused in (
            submit(key, other["id"], batch_zip),
            key.get(elsewhere),
            key.get(f"{elsewhere}/{created.json()['id']}"),
            key.post(f"{elsewhere}/{created.json()['id']}/cancel"),
        ):
            assert refused.status_code == 403 and refused.json()["code"] == "key_forbidden", refused.text
        for project_route in (f"/api/v1/deployments/{mine['id']}", "/api/v1/deployments", "/api/v1/keys"):
            assert key.get(project_route).json()["code"] == "credential_not_allowed"
    assert {b["id"] for b in admin.get(base).json()["items"]} == {created.json()["id"], project_snapshot.json()["id"]}

    # The batch's 20 images are metered under the key (usage is flushed every few seconds).
    window = {"from": (began - timedelta(hours=1)).isoformat(), "to": (began + timedelta(hours=1)).isoformat()}
    usage = f"/api/v1/deployments/{mine['id']}/usage"
    deadline = time.monotonic() + 90
    while (total := admin.get(usage, params={**window, "key_id": key_id}).json()["total"])["images"] < 20:
        assert time.monotonic() < deadline, total
        time.sleep(1)
    assert total["images"] == 20
