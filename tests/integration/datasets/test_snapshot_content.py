"""A snapshot's content leaves the platform intact: DICE round trip, YOLO, COCO, trainers, events."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import os
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from vtp_dice.materialize import MARKER, materialize
from vtp_dice.remote import RestSnapshotSource
from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.stack import LocalStack

from .conftest import upload
from .dice_builder import classification_doc, valid_detection

pytestmark = pytest.mark.integration
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "0")


@pytest.fixture(scope="module")
def sample_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("sample")
    dataset = generate(root / "shapes", images=40, seed=3)
    return zip_dataset(dataset, root / "shapes.zip").read_bytes()


@pytest.fixture(scope="module")
def snapshot(stack: LocalStack, admin_token: str, sample_zip: bytes) -> dict:
    with httpx.Client(base_url=stack.cfg.gateway_url, headers={"Authorization": f"Bearer {admin_token}"}) as api:
        dataset = upload(api, sample_zip, f"sample-{uuid.uuid4().hex[:6]}")
        assert dataset.status_code == 201, dataset.text
        snap = api.post(f"/api/v1/datasets/{dataset.json()['id']}/snapshots")
        assert snap.status_code == 201, snap.text
        return {"dataset": dataset.json(), **snap.json()}


def _download(admin: httpx.Client, snapshot: dict, **params: str) -> bytes:
    url = f"/api/v1/datasets/{snapshot['dataset_id']}/snapshots/{snapshot['id']}/download"
    response = admin.get(url, params=params, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return response.content


def test_dice_zip_round_trips_to_the_same_content_hash(admin: httpx.Client, snapshot: dict):
    data = _download(admin, snapshot, format="dice")
    again = upload(admin, data, f"roundtrip-{uuid.uuid4().hex[:6]}")
    assert again.status_code == 201, again.text
    assert again.json()["content_hash"] == snapshot["content_hash"] == snapshot["dataset"]["content_hash"]


def test_yolo_export_loads_in_ultralytics(admin: httpx.Client, snapshot: dict, tmp_path: Path):
    from ultralytics.data.utils import check_det_dataset

    zipfile.ZipFile(io.BytesIO(_download(admin, snapshot, format="yolo", task="detection"))).extractall(tmp_path)
    data = check_det_dataset(str(tmp_path / "data.yaml"))
    assert set(data["names"].values()) == {"circle", "square", "triangle"}
    labels = list((tmp_path / "labels").rglob("*.txt"))
    assert len(labels) == 40
    boxes = sum(len(p.read_text().splitlines()) for p in labels)
    assert boxes == snapshot["statistics"]["tasks"]["detection"]["annotation_count"]


def test_coco_export_loads_in_pycocotools(admin: httpx.Client, snapshot: dict, tmp_path: Path):
    from pycocotools.coco import COCO

    zipfile.ZipFile(io.BytesIO(_download(admin, snapshot, format="coco", task="segmentation"))).extractall(tmp_path)
    total = 0
    for path in (tmp_path / "annotations").glob("instances_*.json"):
        total += len(COCO(str(path)).getAnnIds())
    assert total == snapshot["statistics"]["tasks"]["segmentation"]["annotation_count"]


def test_yolo_of_classification_is_the_imagefolder_layout_trainers_use(
    stack: LocalStack, admin_token: str, admin: httpx.Client, snapshot: dict, tmp_path: Path
):
    # It used to answer 200 and abort the stream with 0 bytes (the YOLO planner has no classify layout).
    data = _download(admin, snapshot, format="yolo", task="classification")
    names = {n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if not n.endswith("/")}
    source = RestSnapshotSource(stack.cfg.gateway_url, admin_token, snapshot["dataset_id"], snapshot["id"])
    trained_on = materialize(source, "classification", tmp_path / "cache", source.splits())
    files = {str(p.relative_to(trained_on)) for p in trained_on.rglob("*") if p.is_file() and p.name != MARKER}
    assert names == files
    assert {n.split("/")[0] for n in names if "/" in n} >= {"train", "val"}


def test_a_layout_the_annotations_cannot_take_is_422_before_any_byte(admin: httpx.Client):
    # Class names "a/b" and "a_b" would share one ImageFolder folder: refused, not a broken stream.
    dataset = valid_detection(4)
    doc = classification_doc(copy.deepcopy(dataset.docs["annotations_detection.json"]["images"]))
    doc["classes"][0]["name"], doc["classes"][1]["name"] = "a/b", "a_b"
    for image in doc["images"]:
        image["annotations"] = [
            {"id": a["id"], "image_id": a["image_id"], "class_id": a["class_id"], "attributes": {}}
            | {"class_name": doc["classes"][a["class_id"]]["name"]}
            for a in image["annotations"]
        ]
    dataset.docs = {"annotations_classification.json": doc}
    created = upload(admin, dataset.build(), f"collide-{uuid.uuid4().hex[:6]}")
    assert created.status_code == 201, created.text
    snap = admin.post(f"/api/v1/datasets/{created.json()['id']}/snapshots")
    assert snap.status_code == 201, snap.text
    url = f"/api/v1/datasets/{created.json()['id']}/snapshots/{snap.json()['id']}/download"
    response = admin.get(url, params={"format": "yolo", "task": "classification"})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "format_not_possible"


def test_export_needs_a_task_the_snapshot_has(admin: httpx.Client, snapshot: dict):
    url = f"/api/v1/datasets/{snapshot['dataset_id']}/snapshots/{snapshot['id']}/download"
    response = admin.get(url, params={"format": "yolo", "task": "pose"})
    assert response.status_code == 422 and response.json()["code"] == "task_not_in_snapshot"
    assert admin.get(url, params={"format": "tfrecord"}).status_code == 422


def test_without_a_task_a_snapshot_of_several_tasks_asks_which(admin: httpx.Client, snapshot: dict):
    # It answered task_not_in_snapshot ("yolo needs one of the snapshot's tasks") for every snapshot.
    url = f"/api/v1/datasets/{snapshot['dataset_id']}/snapshots/{snapshot['id']}/download"
    for fmt, choices in (
        ("yolo", ["classification", "detection", "segmentation"]),
        ("coco", ["detection", "segmentation"]),
    ):
        response = admin.get(url, params={"format": fmt})
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "task_required" and ", ".join(choices) in problem["detail"]
        assert problem["errors"] == [
            {"pointer": "#/query/task", "code": "task_required", "message": f"one of: {', '.join(choices)}"}
            | {"allowed": choices}
        ]


def test_without_a_task_a_snapshot_of_one_task_downloads_it(admin: httpx.Client, tmp_path: Path):
    # One task, and not detection: the download writes that task (COCO too), named after it.
    root = generate(tmp_path / "seg", images=6, size=(64, 64), seed=5, tasks=("segmentation",))
    created = upload(admin, zip_dataset(root, tmp_path / "seg.zip").read_bytes(), f"seg-{uuid.uuid4().hex[:6]}")
    assert created.status_code == 201, created.text
    snap = admin.post(f"/api/v1/datasets/{created.json()['id']}/snapshots")
    assert snap.status_code == 201, snap.text
    snapshot = snap.json()
    url = f"/api/v1/datasets/{snapshot['dataset_id']}/snapshots/{snapshot['id']}/download"
    response = admin.get(url, params={"format": "yolo"}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].endswith(f'{snapshot["version_tag"]}-yolo-segmentation.zip"')
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    labels = [n for n in archive.namelist() if n.startswith("labels/") and n.endswith(".txt")]
    assert "data.yaml" in archive.namelist() and labels
    rows = [line.split() for n in labels for line in archive.read(n).decode().splitlines() if line.strip()]
    assert rows and all(len(row) > 5 for row in rows)  # a class and a polygon, never a box
    coco = admin.get(url, params={"format": "coco"}, timeout=60)
    assert coco.status_code == 200 and "coco-segmentation" in coco.headers["content-disposition"]
    classify = admin.get(url, params={"format": "yolo", "task": "classification"})
    assert classify.status_code == 422 and classify.json()["code"] == "task_not_in_snapshot"


def test_blobs_outside_the_snapshot_are_not_served(admin: httpx.Client, snapshot: dict):
    url = f"/api/v1/datasets/{snapshot['dataset_id']}/snapshots/{snapshot['id']}/blobs/{'0' * 64}"
    response = admin.get(url)
    assert response.status_code == 404 and response.json()["code"] == "blob_not_in_snapshot"


def test_trainer_materialises_the_snapshot_over_rest(
    stack: LocalStack, admin_token: str, snapshot: dict, tmp_path: Path
):
    source = RestSnapshotSource(stack.cfg.gateway_url, admin_token, snapshot["dataset_id"], snapshot["id"])
    cold = materialize(source, "detection", tmp_path / "cache", source.splits())
    assert (cold / "data.yaml").exists()
    assert len(list((cold / "images").rglob("*.jpg"))) == 40
    classify = materialize(source, "classification", tmp_path / "cache", source.splits())
    assert {p.name for p in classify.iterdir() if p.is_dir()} >= {"train", "val"}
    assert materialize(source, "detection", tmp_path / "cache", source.splits()) == cold


async def test_snapshot_creation_is_published(stack: LocalStack, snapshot: dict):
    consumer = AIOKafkaConsumer(
        "dataset.snapshot-created.v1",
        bootstrap_servers=stack.cfg.kafka_bootstrap,
        group_id=f"test-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while True:
                record = await consumer.getone()
                data = json.loads(record.value)
                if data["snapshot_id"] == snapshot["id"]:
                    break
    finally:
        await consumer.stop()
    headers = {k: v.decode() for k, v in record.headers}
    assert record.key.decode() == snapshot["dataset_id"] == headers["ce_subject"]
    assert headers["ce_type"] == "ai.vtp.dataset.snapshot-created.v1"
    assert data["content_hash"] == snapshot["content_hash"] and data["image_count"] == 40
    assert sorted(data["task_types"]) == ["classify", "detect", "segment"]
