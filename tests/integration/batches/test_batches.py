"""Batch inference through the gateway: results equal the predict API's, COCO, cancel, validation,
metering and the replicas' batch metrics, and another project sees nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from vtp_localstack.stack import LocalStack

from ..inference.conftest import metric_value, scrape_metrics
from .conftest import deploy, predicted, rows_of, same_detections, submit, wait_batch, zip_of

pytestmark = pytest.mark.integration
PARAMS = {"conf": "0.001", "max_det": "50"}  # a one-epoch model's boxes are faint: as low as validation


def test_a_zip_batch_equals_the_predict_api_image_by_image_with_coco_and_usage(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any],
    images: dict[str, bytes], batch_zip: bytes,
) -> None:  # fmt: skip
    deployment = deploy(stack, admin_token, onnx_export["id"], "batch")
    began = datetime.now(UTC)
    response = submit(admin, deployment["id"], batch_zip, **PARAMS)
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["status"] == "queued" and batch["source"]["images"] == 20
    assert batch["parameters"]["conf"] == 0.001 and batch["parameters"]["max_det"] == 50
    path = f"/api/v1/deployments/{deployment['id']}/batches/{batch['id']}"
    done = wait_batch(admin, path)
    assert done["status"] == "succeeded", done
    assert done["progress"] == {
        "total_images": 20, "processed_images": 20, "failed_images": 0,
        "chunk_size": 4, "chunks_done": 5, "total_chunks": 5,
    }  # fmt: skip
    assert done["timings"]["run_seconds"] is not None and done["results"]["jsonl"]["uri"].endswith("results.jsonl")
    listed = admin.get(f"/api/v1/deployments/{deployment['id']}/batches").json()["items"]
    assert [b["id"] for b in listed] == [batch["id"]]

    # /metrics of the replica that ran it: one chunk duration per chunk, the images, the attempt's duration.
    labels = f'deployment="{deployment["id"]}"'
    ended = f'vtp_inference_batch_seconds_count{{{labels},status="succeeded"}} 1'
    deadline = time.monotonic() + 10  # the attempt is observed once its end is recorded: just after the status
    while ended not in "\n".join(texts := scrape_metrics(stack, admin_token)):
        assert time.monotonic() < deadline, "no batch attempt in /metrics"
        time.sleep(0.2)
    assert "# TYPE vtp_inference_batch_chunk_seconds histogram" in "\n".join(texts)
    assert metric_value(texts, f"vtp_inference_batch_chunk_seconds_count{{{labels}}}") == 5
    assert metric_value(texts, f'vtp_inference_batch_chunk_seconds_bucket{{{labels},le="+Inf"}}') == 5
    assert metric_value(texts, f"vtp_inference_batch_images_total{{{labels}}}") == 20

    rows = rows_of(admin, path)
    assert [r["index"] for r in rows] == list(range(20))
    assert [r["file"] for r in rows] == sorted(images)  # relative to the single top folder, as datasets
    found = 0
    for row, name in zip(rows, sorted(images), strict=True):
        answer = predicted(admin, deployment["id"], name, images[name], **PARAMS)
        assert (row["width"], row["height"]) == (answer["width"], answer["height"])
        assert same_detections(row["detections"], answer["detections"]), (name, row, answer)
        found += len(answer["detections"])
    assert found > 0  # the comparison compared boxes, not only empty lists

    coco_response = admin.get(f"{path}/results", params={"format": "coco"})
    assert coco_response.status_code == 200, coco_response.text
    coco = coco_response.json()
    assert [i["file_name"] for i in coco["images"]] == [r["file"] for r in rows]
    assert [c["id"] for c in coco["categories"]] == list(range(len(coco["categories"])))
    assert len(coco["annotations"]) == found
    ids = {i["id"] for i in coco["images"]}
    for ann, det in zip(coco["annotations"], [d for r in rows for d in r["detections"]], strict=True):
        assert ann["image_id"] in ids and ann["category_id"] == det["class_id"] and ann["iscrowd"] == 0
        x1, y1, x2, y2 = det["xyxy"]
        assert ann["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=1e-2)
        assert ann["score"] == pytest.approx(det["confidence"], abs=1e-4)
    assert admin.get(f"{path}/results", params={"format": "xml"}).status_code == 422

    # Metered like predicts: 20 images by the batch and 20 by the reference predicts, each once.
    usage_path = f"/api/v1/deployments/{deployment['id']}/usage"
    window = {"from": (began - timedelta(hours=1)).isoformat(), "to": (began + timedelta(hours=1)).isoformat()}
    deadline = time.monotonic() + 90
    while (total := admin.get(usage_path, params=window).json()["total"])["images"] < 40:
        assert time.monotonic() < deadline, total
        time.sleep(1)
    time.sleep(2)
    assert admin.get(usage_path, params=window).json()["total"]["images"] == 40


def test_cancel_stops_a_batch_and_it_has_no_results(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any], batch_zip: bytes
) -> None:
    deployment = deploy(stack, admin_token, onnx_export["id"], "batch-cancel")
    batch = submit(admin, deployment["id"], batch_zip).json()
    path = f"/api/v1/deployments/{deployment['id']}/batches/{batch['id']}"
    response = admin.post(f"{path}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["cancel_requested"] is True
    done = wait_batch(admin, path)
    assert done["status"] == "cancelled", done
    assert done["progress"]["processed_images"] < 20 or done["progress"]["chunks_done"] == 5
    results = admin.get(f"{path}/results")
    assert results.status_code == 409 and results.json()["code"] == "batch_not_succeeded"
    again = admin.post(f"{path}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "batch_finished"


def test_invalid_batches_are_refused_with_every_problem(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any], images: dict[str, bytes]
) -> None:
    deployment = deploy(stack, admin_token, onnx_export["id"], "batch-invalid")
    url = f"/api/v1/deployments/{deployment['id']}/batches"

    bad = submit(admin, deployment["id"], b"not a zip at all", conf="2", classes="x")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    codes = sorted(e["code"] for e in bad.json()["errors"])
    assert codes == ["invalid_parameter", "invalid_parameter", "not_a_zip"], bad.json()

    first = next(iter(images.values()))
    mixed = zip_of({"a.jpg": first, "broken.jpg": b"\xff\xd8 not really a jpeg", "../escape.jpg": first})
    refused = submit(admin, deployment["id"], mixed)
    assert refused.status_code == 422, refused.text
    assert [(e["pointer"], e["code"]) for e in refused.json()["errors"]] == [("#/file/../escape.jpg", "zip_slip")]

    broken = submit(admin, deployment["id"], zip_of({"a.jpg": first, "broken.jpg": b"\xff\xd8 not an image"}))
    assert broken.status_code == 422
    assert [(e["pointer"], e["code"]) for e in broken.json()["errors"]] == [("#/file/broken.jpg", "image_undecodable")]

    many = submit(admin, deployment["id"], zip_of({f"{i:03d}.jpg": first for i in range(41)}))
    assert many.status_code == 422 and many.json()["code"] == "too_many_images", many.text
    empty = submit(admin, deployment["id"], zip_of({"readme.txt": b"hello"}))
    assert empty.status_code == 422 and empty.json()["code"] == "no_images", empty.text
    no_file = admin.post(url, data={"conf": "0.5"}, files={"other": ("x", b"x")})
    assert no_file.status_code == 422 and no_file.json()["code"] == "source_missing", no_file.text
    unknown = submit(admin, "00000000-0000-0000-0000-000000000000", zip_of({"a.jpg": first}))
    assert unknown.status_code == 404 and unknown.json()["code"] == "deployment_not_found"
    assert admin.get(url).json()["items"] == []  # nothing was created by a refused request


def test_another_project_sees_nothing(
    stack: LocalStack, admin_token: str, admin: httpx.Client, onnx_export: dict[str, Any],
    other_project: dict[str, str], batch_zip: bytes,
) -> None:  # fmt: skip
    deployment = deploy(stack, admin_token, onnx_export["id"], "batch-private")
    batch = submit(admin, deployment["id"], batch_zip).json()
    base = f"/api/v1/deployments/{deployment['id']}/batches"
    path = f"{base}/{batch['id']}"
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=other_project, timeout=60) as other:
        assert other.get(base).status_code == 404
        assert other.get(path).status_code == 404
        assert other.get(f"{path}/results").status_code == 404
        assert other.post(f"{path}/cancel").status_code == 404
        assert submit(other, deployment["id"], batch_zip).status_code == 404
    assert wait_batch(admin, path)["status"] == "succeeded"
