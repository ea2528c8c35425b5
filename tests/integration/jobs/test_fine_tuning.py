"""Fine-tuning from an earlier job's recorded checkpoint, through the public API and a real runner."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.stack import LocalStack
from vtp_runtime.settings import StorageSettings
from vtp_runtime.storage import ObjectStore, store_from_settings

from ..datasets.conftest import upload

pytestmark = pytest.mark.integration
# A few epochs that really learn: at 128 px the shapes are visible at the model's strides, every batch
# takes an optimizer step (the default accumulates gradients over 64 images: one step in three epochs
# here) and there is no warm-up (by default 100 steps of a near-zero learning rate).
CONFIG = {"epochs": 4, "imgsz": 128, "batch": 8, "workers": 0, "seed": 0}
ADVANCED = {"nbs": 8, "warmup_epochs": 0}
TIMEOUT = 600  # a loaded 2-core machine; a CI runner takes a fraction of it


@pytest.fixture(scope="module")
def api(stack: LocalStack, admin_token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, timeout=30, headers=headers) as client:
        yield client


@pytest.fixture(scope="module")
def dataset_id(api: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("fine-tune-data")
    data = zip_dataset(generate(root / "d", images=24, size=(96, 96), seed=7), root / "d.zip").read_bytes()
    response = upload(api, data, f"fine-tune-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="module")
def store(stack: LocalStack) -> ObjectStore:
    """The stack's object store, as the services see it."""
    cfg = stack.cfg
    settings = StorageSettings(
        s3_endpoint=cfg.s3_endpoint,
        s3_access_key=cfg.s3_access_key,
        s3_secret_key=cfg.s3_secret_key,
        s3_secure=cfg.s3_secure,
        s3_region=cfg.s3_region,
        storage_bucket=cfg.storage_bucket,
        storage_dir=str(cfg.run_path / "data" / "objects"),
    )
    return store_from_settings(settings)


def _body(dataset_id: str, model: Any, **config: Any) -> dict[str, Any]:
    return {
        "name": "fine-tune",
        "task_type": "detect",
        "model": model,
        "dataset_id": dataset_id,
        "config": CONFIG | config,
        "advanced_config": ADVANCED,
    }


@pytest.fixture(scope="module")
def source(api: httpx.Client, dataset_id: str) -> dict[str, Any]:
    """Job A: trained from scratch, so its first epoch is also the from-scratch baseline."""
    response = api.post("/api/v1/jobs", json=_body(dataset_id, "yolo11n"))
    assert response.status_code == 201, response.text
    done = _finished(api, response.json()["id"])
    assert done["status"] == "completed", done["error"]
    assert {"best", "last"} <= done["checkpoints"].keys()
    return done


def _finished(api: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while (job := api.get(f"/api/v1/jobs/{job_id}").json())["status"] not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"job never finished: {job}"
        time.sleep(0.5)
    return job


def _first_epoch_loss(api: httpx.Client, job_id: str) -> float:
    [attempt] = api.get(f"/api/v1/jobs/{job_id}/metrics").json()["attempts"]
    return float(sum(attempt["epochs"][0]["train_losses"].values()))


def _requested(stack: LocalStack) -> list[dict[str, Any]]:
    """Every `job.requested.v1` command on the broker so far."""

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            "job.requested.v1",
            bootstrap_servers=stack.cfg.kafka_bootstrap,
            group_id=f"t-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=3000, max_records=100000)
            return [json.loads(r.value) for records in batches.values() for r in records]
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_fine_tune_starts_from_the_earlier_jobs_weights(
    stack: LocalStack, api: httpx.Client, dataset_id: str, source: dict[str, Any]
):
    last = source["checkpoints"]["last"]
    body = _body(dataset_id, {"job_id": source["id"], "checkpoint": "last"}, epochs=1)
    response = api.post("/api/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    tuned = response.json()
    assert tuned["model"] == source["id"]
    assert tuned["base_checkpoint"] == {
        "job_id": source["id"],
        "checkpoint": "last",
        "epoch": last["epoch"],
        "uri": last["uri"],
        "sha256": last["sha256"],
        "size_bytes": last["size_bytes"],
    }
    done = _finished(api, tuned["id"])
    assert done["status"] == "completed", done["error"]
    [command] = [c for c in _requested(stack) if c["job_id"] == tuned["id"]]
    assert command["base_checkpoint"] == {k: last[k] for k in ("uri", "sha256", "size_bytes")}
    scratch, fine = _first_epoch_loss(api, source["id"]), _first_epoch_loss(api, tuned["id"])
    # Measured: 0.69 (9.76 against 14.09); a run that ignored the checkpoint would start where A started (ratio 1).
    assert fine < 0.8 * scratch, (fine, scratch)


def test_another_project_cannot_name_the_job(
    stack: LocalStack, api: httpx.Client, gateway: httpx.Client, dataset_id: str, source: dict[str, Any]
):
    project = api.post("/api/v1/projects", json={"name": f"q {uuid.uuid4().hex[:6]}"}).json()
    token = api.post(f"/api/v1/projects/{project['id']}/tokens", json={"name": "t"}).json()["token"]
    other = {"Authorization": f"Bearer {token}"}
    missing = str(uuid.uuid4())
    answers = []
    for model in (source["id"], missing, {"job_id": source["id"], "checkpoint": "last"}):
        response = gateway.post("/api/v1/jobs", headers=other, json=_body(dataset_id, model))
        assert response.status_code == 422, response.text
        answers.append(json.dumps(response.json()["errors"]).replace(source["id"], "ID").replace(missing, "ID"))
        assert {e["code"] for e in response.json()["errors"] if e["pointer"] == "#/body/model"} == {
            "checkpoint_not_found"
        }
    assert answers[0] == answers[1] == answers[2], "another project's job reads exactly like a missing one"
    assert gateway.get("/api/v1/jobs", headers=other).json()["total"] == 0
    # No command names project Q, so no runner downloads anything for it.
    assert not [c for c in _requested(stack) if c["project_id"] == project["id"]]


def test_what_cannot_be_fine_tuned_from_is_refused(api: httpx.Client, dataset_id: str, source: dict[str, Any]):
    def errors(model: Any, **overrides: Any) -> set[tuple[str, str]]:
        response = api.post("/api/v1/jobs", json=_body(dataset_id, model) | overrides)
        assert response.status_code == 422, response.text
        return {(e["pointer"], e["code"]) for e in response.json()["errors"]}

    # The object itself, even the caller's own: only checkpoints the platform resolves are loaded.
    assert errors(source["checkpoints"]["best"]["uri"]) == {("#/body/model", "model_uri_not_allowed")}
    assert errors(source["id"], task_type="segment") == {("#/body/model", "checkpoint_incompatible")}
    assert errors({"job_id": source["id"], "checkpoint": "middle"}) == {("#/body/model/checkpoint", "literal_error")}
    queued = api.post("/api/v1/jobs", json=_body(dataset_id, "yolo11n", epochs=1)).json()
    try:
        assert errors(queued["id"]) == {("#/body/model", "checkpoint_not_found")}  # not finished
    finally:
        api.post(f"/api/v1/jobs/{queued['id']}/cancel")
    # Every problem at once: the checkpoint and the dataset.
    assert errors(str(uuid.uuid4()), dataset_id=str(uuid.uuid4())) == {
        ("#/body/model", "checkpoint_not_found"),
        ("#/body/dataset_id", "dataset_not_found"),
    }


def test_a_checkpoint_changed_after_it_was_recorded_is_not_loaded(
    api: httpx.Client, dataset_id: str, source: dict[str, Any], store: ObjectStore
):
    best = source["checkpoints"]["best"]
    asyncio.run(store.put_bytes(store.parse_uri(best["uri"]), b"not the weights that were recorded"))
    response = api.post("/api/v1/jobs", json=_body(dataset_id, source["id"], epochs=1))  # a bare id: its best
    assert response.status_code == 201, response.text
    assert response.json()["base_checkpoint"]["checkpoint"] == "best"
    done = _finished(api, response.json()["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "CHECKPOINT_INTEGRITY", done["error"]
    assert best["sha256"] in done["error"]["message"]
