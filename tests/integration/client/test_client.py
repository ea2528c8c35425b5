"""The Python client against the real stack: every route group walked through `vtp_client`.

One short job (1 epoch, 64 px) carries the journey: project and token, a generated dataset
uploaded with progress, a snapshot, training followed on the live feed (and resumed with `since`),
an ONNX export, a deployment answering predictions, signed webhooks of the chain, and the error
paths (unknown id, revoked token, invalid config) as `ApiError`s.
"""

from __future__ import annotations

import hashlib
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from vtp_client import ApiError, Client, Dataset, Deployment, Export, FeedEvent, Job, SubscriptionCreated
from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.stack import LocalStack

from ..notifier.webhook_receiver import Endpoint, Receiver

pytestmark = pytest.mark.integration

TRAIN_CONFIG = {"epochs": 1, "imgsz": 64, "batch": 8, "workers": 0, "seed": 0}
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 120.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def admin_client(stack: LocalStack, admin_token: str) -> Iterator[Client]:
    with Client(stack.cfg.gateway_url, admin_token) as vtp:
        yield vtp


@pytest.fixture(scope="module")
def project(admin_client: Client) -> dict[str, Any]:
    project = admin_client.projects.create(f"Client {uuid.uuid4().hex[:6]}")
    issued = admin_client.tokens.create(project.id, "client-tests")
    return {"project": project, "token": issued}


@pytest.fixture(scope="module")
def vtp(stack: LocalStack, project: dict[str, Any]) -> Iterator[Client]:
    with Client(stack.cfg.gateway_url, project["token"].token) as client:
        yield client


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("client-data") / "shapes", images=24, size=(96, 96), seed=7)


@pytest.fixture(scope="module")
def uploaded(vtp: Client, images: Path) -> tuple[Dataset, list[tuple[int, int | None]]]:
    archive = zip_dataset(images, images.parent / "shapes.zip")
    progress: list[tuple[int, int | None]] = []
    dataset = vtp.datasets.upload(archive, "shapes", progress=lambda done, total: progress.append((done, total)))
    return dataset, progress


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hook(vtp: Client, receiver: Receiver) -> tuple[SubscriptionCreated, Endpoint]:
    endpoint = receiver.endpoint()
    topics = ["job.requested.v1", "job.lifecycle.v1", "export.completed.v1", "deployment.changed.v1"]
    created = vtp.subscriptions.create(endpoint.url, event_types=topics, description="client tests")
    endpoint.secret = created.secret
    return created, endpoint


@pytest.fixture(scope="module")
def trained(vtp: Client, uploaded: tuple[Dataset, Any], hook: Any) -> tuple[Job, list[FeedEvent]]:
    job = vtp.jobs.create(uploaded[0].id, name="client job", model="yolo11n", config=TRAIN_CONFIG)
    events = list(vtp.follow_job(job.id))
    return vtp.jobs.wait(job.id, timeout=600), events


@pytest.fixture(scope="module")
def exported(vtp: Client, trained: tuple[Job, Any]) -> Export:
    export = vtp.exports.create(trained[0].id, "onnx")
    return vtp.exports.wait(export.id, timeout=900)


@pytest.fixture(scope="module")
def deployment(vtp: Client, exported: Export) -> Deployment:
    return vtp.deployments.create(exported.id, f"client-{uuid.uuid4().hex[:6]}")


def test_projects_tokens_and_identity(admin_client: Client, vtp: Client, project: dict[str, Any]) -> None:
    me = vtp.whoami()
    assert (me.project_id, me.token_id, me.is_admin) == (project["project"].id, project["token"].id, False)
    assert [p.id for p in vtp.projects.list()] == [project["project"].id]
    assert vtp.projects.get(project["project"].id).slug == project["project"].slug
    assert project["token"].id in {t.id for t in admin_client.tokens.list(project["project"].id)}
    assert admin_client.health().services  # an admin sees every service
    assert vtp.health().status == "ok" and vtp.health().services == {}
    assert "/api/v1/jobs" in vtp.openapi()["paths"]


def test_datasets_snapshots_and_downloads(vtp: Client, uploaded: tuple[Dataset, Any], tmp_path: Path) -> None:
    dataset, progress = uploaded
    assert dataset.image_count == 24 and "detection" in dataset.tasks
    assert progress[-1][0] == progress[-1][1] and len(progress) >= 1
    assert vtp.datasets.get(dataset.id).content_hash == dataset.content_hash
    assert [d.id for d in vtp.datasets.list(search="shapes").items] == [dataset.id]
    split = vtp.datasets.set_split(dataset.id, "auto", train=0.75, val=0.25, seed=1)
    assert split.counts["train"] + split.counts["val"] == 24
    assert vtp.datasets.split(dataset.id).train == 0.75
    vtp.datasets.set_split(dataset.id, "auto")  # back to the default, so the job trains as the export tests' does
    snapshot = vtp.datasets.snapshot(dataset.id)
    assert vtp.datasets.snapshot(dataset.id).id == snapshot.id  # nothing changed: the same one
    assert [s.id for s in vtp.datasets.snapshots(dataset.id)] == [snapshot.id]
    assert vtp.datasets.get_snapshot(dataset.id, snapshot.id).image_count == 24
    content = vtp.datasets.manifest(dataset.id, snapshot.id)
    assert sorted(set(content["splits"].values())) == ["train", "val"]
    sha = content["manifest"]["images"][0][1]  # rows: file name, sha256, size, width, height, format
    assert hashlib.sha256(vtp.datasets.blob(dataset.id, snapshot.id, sha)).hexdigest() == sha
    path = vtp.datasets.download(dataset.id, snapshot.id, tmp_path, format="yolo", task="detection")
    assert path.parent == tmp_path and zipfile.ZipFile(path).testzip() is None
    assert vtp.datasets.compare(dataset.id, snapshot.id, snapshot.id)["base"] == str(snapshot.id)


def test_trainers_and_presets(vtp: Client) -> None:
    ultralytics = {t.name: t for t in vtp.trainers.list()}["ultralytics"]
    assert "detect" in ultralytics.tasks and "yolo11n" in ultralytics.models
    presets = vtp.trainers.presets("ultralytics")
    assert set(presets) == set(ultralytics.presets) and all("config" in p for p in presets.values())


def test_training_is_followed_live_and_the_feed_resumes_with_since(vtp: Client, trained: tuple[Job, Any]) -> None:
    job, events = trained
    assert job.status == "completed" and "best" in job.checkpoints
    kinds = [e.type for e in events]
    assert "metrics" in kinds and events[-1].job_status == "completed"
    assert [e.epoch for e in vtp.jobs.metrics(job.id).epochs] == [1]
    assert vtp.jobs.logs(job.id, limit=5).lines
    assert job.id in {j.id for j in vtp.jobs.list(status="completed").items}
    # Resuming after the first event gives the second one next: what a reconnect does.
    stream = vtp.feed.events(jobs=[job.id], since=events[0].event_id)
    following = next(stream)
    stream.close()
    assert vtp.feed.ticket().ticket.startswith("wst_")
    assert (following.event_id, following.type) == (events[1].event_id, events[1].type)


def test_exports(vtp: Client, trained: tuple[Job, Any], exported: Export, tmp_path: Path) -> None:
    tasks = {t["task"]: t for t in vtp.exports.capabilities()["frameworks"][0]["tasks"]}
    assert {f["format"]: f["available"] for f in tasks["detect"]["formats"]}["onnx"] is True
    assert exported.status == "succeeded", exported.error
    assert exported.parity and exported.artifact
    assert vtp.exports.create(trained[0].id, "onnx").id == exported.id  # the same content: the same export
    assert [e.id for e in vtp.exports.list(job_id=trained[0].id).items] == [exported.id]
    assert vtp.exports.set_default(exported.id).is_default
    package = vtp.exports.download(exported.id, tmp_path)
    assert hashlib.sha256(package.read_bytes()).hexdigest() == exported.artifact["sha256"]


def test_deployment_predicts(vtp: Client, deployment: Deployment, images: Path) -> None:
    assert deployment.status == "ready", deployment.error
    photos = sorted((images / "images").rglob("*.jpg"))[:2]
    prediction = vtp.deployments.predict(deployment.id, [photos[0], photos[1].read_bytes()], conf=0.01)
    assert [r.index for r in prediction.images] == [0, 1]
    assert prediction.images[0].width == 96 and prediction.parameters["conf"] == 0.01
    assert vtp.deployments.update(deployment.id, conf=0.5).defaults["conf"] == 0.5
    assert deployment.id in {d.id for d in vtp.deployments.list().items}
    assert vtp.deployments.deactivate(deployment.id).status == "stopped"
    with pytest.raises(ApiError) as caught:
        vtp.deployments.predict(deployment.id, photos[0])
    assert (caught.value.status, caught.value.code) == (409, "deployment_not_ready")
    assert vtp.deployments.activate(deployment.id).status == "ready"
    assert vtp.deployments.get(deployment.id).status == "ready"


def test_signed_webhooks_of_the_chain(vtp: Client, hook: tuple[SubscriptionCreated, Endpoint], deployment: Any) -> None:
    created, endpoint = hook
    wanted = {"job.requested.v1", "job.lifecycle.v1", "export.completed.v1", "deployment.changed.v1"}
    eventually(lambda: {r.payload["type"] for r in endpoint.ok()} >= wanted, timeout=180)
    assert all(r.verified for r in endpoint.received)
    deliveries = vtp.subscriptions.deliveries(created.id, status="succeeded")
    assert deliveries.total >= len(wanted)
    again = vtp.subscriptions.redeliver(created.id, deliveries.items[0].id)
    assert again.redelivery_of == deliveries.items[0].id
    done = eventually(lambda: vtp.subscriptions.delivery(created.id, again.id).status == "succeeded" or None)
    assert done
    assert [s.id for s in vtp.subscriptions.list().items] == [created.id]
    assert vtp.subscriptions.update(created.id, active=False).active is False


def test_errors_are_api_errors(admin_client: Client, vtp: Client, stack: LocalStack, uploaded: Any) -> None:
    with pytest.raises(ApiError) as caught:
        vtp.jobs.get(uuid.uuid4())
    assert (caught.value.status, caught.value.code) == (404, "job_not_found")

    with pytest.raises(ApiError) as caught:
        vtp.jobs.create(uploaded[0].id, name="bad", config={"epochs": 0, "imgsz": 33, "nonsense": 1})
    assert (caught.value.status, caught.value.code) == (422, "validation_failed")
    pointers = {p.pointer for p in caught.value.problems}
    assert len(pointers) >= 2 and all(p and p.startswith("#/body/config") for p in pointers)

    spare = admin_client.tokens.create(vtp.whoami().project_id, "to revoke")
    with Client(stack.cfg.gateway_url, spare.token) as doomed:
        assert doomed.whoami().token_id == spare.id
        assert doomed.tokens.revoke(spare.id).revoked_at is not None

        def refused() -> ApiError | None:
            try:
                doomed.whoami()
            except ApiError as exc:
                return exc
            return None

        error = eventually(refused, timeout=60)
    assert (error.status, error.code) == (401, "invalid_token")
