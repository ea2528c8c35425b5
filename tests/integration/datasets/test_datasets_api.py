"""The datasets API on valid data: upload, browse, versions, splits, snapshots, scoping."""

from __future__ import annotations

import copy
import uuid

import httpx
import pytest

from .conftest import upload
from .dice_builder import DiceZip, classification_doc, valid_detection

pytestmark = pytest.mark.integration
DET = "annotations_detection.json"


@pytest.fixture()
def dataset(admin: httpx.Client) -> dict:
    response = upload(admin, valid_detection(20).build(), f"shapes-{uuid.uuid4().hex[:6]}", "twenty boxes")
    assert response.status_code == 201, response.text
    return response.json()


def test_upload_returns_recomputed_statistics(dataset: dict):
    assert dataset["image_count"] == 20 and dataset["head_version"] == 1
    assert len(dataset["content_hash"]) == 64 and dataset["size_bytes"] > 0
    detection = dataset["tasks"]["detection"]
    assert {c["name"]: c["annotation_count"] for c in detection["classes"]} == {"circle": 10, "square": 10}
    stats = dataset["statistics"]
    assert stats["class_distribution"]["detection"] == {"circle": 10, "square": 10}
    assert sum(dataset["split_counts"].values()) == 20 and dataset["split_counts"]["val"] > 0
    assert stats["image_size"] == {"min_width": 64, "max_width": 64, "min_height": 48, "max_height": 48}
    assert stats["annotations_per_image"]["detection"]["mean"] == 1


def test_list_filters_and_search(admin: httpx.Client, dataset: dict):
    found = admin.get("/api/v1/datasets", params={"search": dataset["name"]}).json()
    assert [d["id"] for d in found["items"]] == [dataset["id"]]
    assert admin.get("/api/v1/datasets", params={"search": dataset["name"], "task_type": "pose"}).json()["total"] == 0
    det = admin.get("/api/v1/datasets", params={"search": dataset["name"], "task_type": "detection"}).json()
    assert det["total"] == 1
    bad = admin.get("/api/v1/datasets", params={"task_type": "bogus", "limit": 0})
    assert bad.status_code == 422 and {e["pointer"] for e in bad.json()["errors"]} == {
        "#/query/task_type",
        "#/query/limit",
    }


def test_same_name_twice_is_a_conflict(admin: httpx.Client, dataset: dict):
    response = upload(admin, valid_detection(2).build(), dataset["name"])
    assert response.status_code == 409 and response.json()["code"] == "dataset_name_taken"


def test_other_project_cannot_see_the_dataset(admin: httpx.Client, gateway: httpx.Client, dataset: dict):
    project = admin.post("/api/v1/projects", json={"name": f"other {uuid.uuid4().hex[:6]}"}).json()
    token = admin.post(f"/api/v1/projects/{project['id']}/tokens", json={"name": "t"}).json()["token"]
    other = {"Authorization": f"Bearer {token}"}
    assert gateway.get(f"/api/v1/datasets/{dataset['id']}", headers=other).status_code == 404
    assert gateway.get("/api/v1/datasets", headers=other).json()["total"] == 0
    assert gateway.post(f"/api/v1/datasets/{dataset['id']}/snapshots", headers=other).status_code == 404
    assert gateway.delete(f"/api/v1/datasets/{dataset['id']}", headers=other).status_code == 404


def test_snapshots_are_idempotent_and_tagged(admin: httpx.Client, dataset: dict):
    url = f"/api/v1/datasets/{dataset['id']}/snapshots"
    first = admin.post(url)
    assert first.status_code == 201 and first.json()["version_tag"] == "v1"
    again = admin.post(url, json={"version_tag": "release"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert first.json()["content_hash"] == dataset["content_hash"]
    assert [s["id"] for s in admin.get(url).json()] == [first.json()["id"]]
    one = admin.get(f"{url}/{first.json()['id']}")
    assert one.status_code == 200 and one.json()["image_count"] == 20


def test_new_version_leaves_snapshots_untouched(admin: httpx.Client, dataset: dict):
    url = f"/api/v1/datasets/{dataset['id']}"
    v1 = admin.post(f"{url}/snapshots").json()
    more = valid_detection(5, prefix="more")
    more.docs[DET]["images"] = copy.deepcopy(valid_detection(20).docs[DET]["images"]) + more.docs[DET]["images"]
    for i, image in enumerate(more.docs[DET]["images"]):
        image["id"] = i + 1
        for ann in image["annotations"]:
            ann["image_id"] = i + 1
    response = admin.post(f"{url}/versions", files={"file": ("more.zip", more.build(), "application/zip")})
    assert response.status_code == 201, response.text
    assert response.json()["head_version"] == 2 and response.json()["image_count"] == 25
    v2 = admin.post(f"{url}/snapshots", json={"version_tag": "with-more"})
    assert v2.status_code == 201 and v2.json()["image_count"] == 25
    assert admin.get(f"{url}/snapshots/{v1['id']}").json()["image_count"] == 20
    dup = admin.post(f"{url}/snapshots", json={"version_tag": "with-more"})
    assert dup.status_code == 200  # same content: the existing snapshot, whatever the tag
    diff = admin.get(f"{url}/snapshots/{v1['id']}/compare/{v2.json()['id']}").json()
    assert diff["images"]["added"] == 5 and diff["images"]["removed"] == 0
    assert sum(diff["class_distribution_delta"]["detection"].values()) == 5


def test_adding_a_task_file(admin: httpx.Client, dataset: dict):
    doc = classification_doc(copy.deepcopy(valid_detection(20).docs[DET]["images"]))
    for image in doc["images"]:
        for ann in image["annotations"]:
            for key in ("bbox", "bbox_format", "area", "iscrowd"):
                ann.pop(key)
    extra = DiceZip({"annotations_classification.json": doc})
    response = admin.post(
        f"/api/v1/datasets/{dataset['id']}/versions", files={"file": ("cls.zip", extra.build(), "application/zip")}
    )
    assert response.status_code == 201, response.text
    assert set(response.json()["tasks"]) == {"detection", "classification"}
    assert response.json()["image_count"] == 20


def test_version_tag_conflict_and_validation(admin: httpx.Client, dataset: dict):
    url = f"/api/v1/datasets/{dataset['id']}/snapshots"
    assert admin.post(url, json={"version_tag": "bad tag!"}).status_code == 422
    assert admin.post(url, json={"version_tag": "v7"}).status_code == 201


def test_split_can_be_read_and_changed(admin: httpx.Client, dataset: dict):
    url = f"/api/v1/datasets/{dataset['id']}/split"
    default = admin.get(url).json()
    assert default["method"] == "partial" and default["seed"] == 42 and sum(default["counts"].values()) == 20
    changed = admin.put(url, json={"method": "auto", "train": 0.5, "val": 0.25, "test": 0.25, "seed": 7})
    assert changed.status_code == 200, changed.text
    assert changed.json()["counts"] == {"train": 10, "val": 5, "test": 5}
    assert admin.get(url).json()["counts"] == changed.json()["counts"]
    again = admin.put(url, json={"method": "auto", "train": 0.5, "val": 0.25, "test": 0.25, "seed": 7})
    assert again.json()["counts"] == changed.json()["counts"]
    bad = admin.put(url, json={"method": "auto", "train": 0.9, "val": 0.9, "test": 0.0})
    assert bad.status_code == 422 and bad.json()["errors"][0]["code"] == "split_ratios_invalid"
    manual = admin.put(url, json={"method": "manual", "assignments": {"img/000.jpg": "val"}})
    assert manual.status_code == 422 and manual.json()["code"] == "split_invalid"
    assert admin.get(url).json()["method"] == "auto", "a rejected split is not stored"


def test_split_numbers_are_numbers_not_booleans(admin: httpx.Client, dataset: dict):
    # Found by schemathesis: `"seed": false` was coerced to 0 and stored.
    url = f"/api/v1/datasets/{dataset['id']}/split"
    response = admin.put(url, json={"method": "auto", "train": True, "val": 0, "test": 0, "seed": False})
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {"#/body/train", "#/body/seed"}
    assert admin.get(url).json()["method"] == "partial", "nothing was stored"


def test_delete_is_soft_and_snapshots_stay_readable(admin: httpx.Client, dataset: dict):
    url = f"/api/v1/datasets/{dataset['id']}"
    snap = admin.post(f"{url}/snapshots").json()
    assert admin.delete(url).status_code == 204
    assert admin.get(url).status_code == 404
    assert admin.get(f"{url}/snapshots/{snap['id']}").status_code == 200
    assert admin.get(f"{url}/snapshots").status_code == 200
    assert admin.delete(url).status_code == 404
