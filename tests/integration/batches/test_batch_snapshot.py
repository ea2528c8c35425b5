"""A batch over a dataset snapshot through the gateway: one row per image of the split, equal to the
predict API on the snapshot's bytes, COCO with the snapshot's image ids; the source rules; privacy."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from vtp_dice.sample import generate
from vtp_localstack.stack import LocalStack

from ..datasets.conftest import upload
from .conftest import deploy, predicted, rows_of, same_detections, submit, wait_batch, zip_of

pytestmark = pytest.mark.integration
PARAMS = {"conf": 0.001, "max_det": 50}


@pytest.fixture(scope="module")
def dataset_zip(tmp_path_factory: Any) -> bytes:
    """A generated detection dataset of 41 images: one more than a batch takes (tests/conftest.py)."""
    root = generate(
        tmp_path_factory.mktemp("snap") / "d", images=41, size=(96, 96), seed=31, tasks=("detection",),
        background_fraction=0.0,
    )  # fmt: skip
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    return out.getvalue()


def snapshot_of(api: httpx.Client, data: bytes) -> dict[str, Any]:
    """A snapshot of an uploaded dataset, with its manifest and frozen split."""
    response = upload(api, data, f"batch-snap-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 201, response.text
    dataset = response.json()
    created = api.post(f"/api/v1/datasets/{dataset['id']}/snapshots")
    assert created.status_code == 201, created.text
    snap = dict(created.json())
    content = api.get(f"/api/v1/datasets/{dataset['id']}/snapshots/{snap['id']}/manifest").json()
    return {**snap, "manifest": content["manifest"], "splits": content["splits"]}


@pytest.fixture(scope="module")
def snapshot(stack: LocalStack, admin_token: str, dataset_zip: bytes) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=120) as api:
        return snapshot_of(api, dataset_zip)


def test_a_snapshot_batch_predicts_the_split_like_the_predict_api(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any], snapshot: dict[str, Any],
) -> None:  # fmt: skip
    deployment = deploy(stack, admin_token, onnx_export["id"], "batch-snap")
    url = f"/api/v1/deployments/{deployment['id']}/batches"
    response = admin.post(url, json={"snapshot_id": snapshot["id"], "split": "val", **PARAMS})
    assert response.status_code == 202, response.text
    batch = response.json()
    chosen = sorted(n for n, s in snapshot["splits"].items() if s == "val")
    assert 0 < len(chosen) < len(snapshot["manifest"]["images"])  # the split chose some, not all
    assert batch["source"]["kind"] == "snapshot" and batch["source"]["images"] == len(chosen)
    path = f"{url}/{batch['id']}"
    done = wait_batch(admin, path)
    assert done["status"] == "succeeded", done
    assert done["progress"]["processed_images"] == len(chosen) and done["progress"]["failed_images"] == 0

    rows = rows_of(admin, path)
    assert [r["file"] for r in rows] == chosen and [r["index"] for r in rows] == list(range(len(chosen)))
    sha = {image[0]: image[1] for image in snapshot["manifest"]["images"]}
    blobs = f"/api/v1/datasets/{snapshot['dataset_id']}/snapshots/{snapshot['id']}/blobs"
    found = 0
    for row in rows:
        data = admin.get(f"{blobs}/{sha[row['file']]}").content
        answer = predicted(admin, deployment["id"], row["file"].rsplit("/", 1)[-1], data, **PARAMS)
        assert (row["width"], row["height"]) == (answer["width"], answer["height"])
        assert same_detections(row["detections"], answer["detections"]), (row, answer)
        found += len(answer["detections"])
    assert found > 0

    coco = admin.get(f"{path}/results", params={"format": "coco"}).json()
    doc = admin.get(f"{blobs}/{snapshot['manifest']['annotations']['detection']}").json()
    ids = {image["file_name"]: image["id"] for image in doc["images"]}
    assert [(i["id"], i["file_name"]) for i in coco["images"]] == [(ids[n], n) for n in chosen]
    assert len(coco["annotations"]) == found


def test_snapshot_source_rules_and_another_projects_snapshot(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any],
    snapshot: dict[str, Any], other_project: dict[str, str], images: dict[str, bytes], dataset_zip: bytes,
) -> None:  # fmt: skip
    deployment = deploy(stack, admin_token, onnx_export["id"], "batch-snap-rules")
    url = f"/api/v1/deployments/{deployment['id']}/batches"

    def errors(response: httpx.Response) -> list[tuple[str, str]]:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        return sorted((e["pointer"], e["code"]) for e in response.json()["errors"])

    unknown = admin.post(url, json={"snapshot_id": str(uuid.uuid4()), "split": "most", "conf": 2})
    assert errors(unknown) == [
        ("#/body/snapshot_id", "snapshot_not_found"), ("#/body/split", "invalid_parameter"),
        ("#/conf", "invalid_parameter"),
    ]  # fmt: skip
    assert errors(admin.post(url, json={"conf": 0.5})) == [("#/body", "source_missing")]
    assert errors(admin.post(url, data={"conf": "0.5"}, files={"other": ("x", b"x")})) == [("#/body", "source_missing")]
    first = next(iter(images.values()))
    both = submit(admin, deployment["id"], zip_of({"a.jpg": first}), snapshot_id=snapshot["id"])
    assert errors(both) == [("#/body", "source_conflict")]
    many = admin.post(url, json={"snapshot_id": snapshot["id"], "split": "all"})  # 41 images, 40 at most
    assert errors(many) == [("#/body/snapshot_id", "too_many_images")]
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=other_project, timeout=120) as other:
        theirs = snapshot_of(other, dataset_zip)
        assert other.post(url, json={"snapshot_id": snapshot["id"]}).status_code == 404  # nor our deployment
    assert errors(admin.post(url, json={"snapshot_id": theirs["id"]})) == [("#/body/snapshot_id", "snapshot_not_found")]
    empty = admin.post(url, data={"snapshot_id": snapshot["id"], "split": "test"})  # a form; no test split
    assert errors(empty) == [("#/body/split", "no_images")]
    assert admin.get(url).json()["items"] == []  # refusals created nothing
