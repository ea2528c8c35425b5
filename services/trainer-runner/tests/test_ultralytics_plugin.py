"""The Ultralytics plugin end to end: real child processes training tiny models on CPU, offline.

Every test starts `python -m vtp_trainer_runner.child` through `JobProcess`, as the runner does.
Models are built from yaml (never downloaded) and trained at imgsz 64 on 24 generated images.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vtp_dice.format import Split
from vtp_dice.materialize import DirectorySource, materialize, publish_directory
from vtp_dice.sample import generate
from vtp_trainer_runner.protocol import CheckpointReady, Failed, Finished, Message, Progress, Started
from vtp_trainer_runner.spec import JobSpec
from vtp_trainer_runner.supervisor import JobProcess

FAST = {"imgsz": 64, "batch": 8, "workers": 0}
PROJECT = uuid.uuid4()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One sample dataset, as a YOLO detection layout and as an ImageFolder, shared by the module."""
    tmp = tmp_path_factory.mktemp("sample")
    manifest = publish_directory(generate(tmp / "dice", images=24, size=(96, 96)), tmp / "store")
    source = DirectorySource(tmp / "store", manifest.content_hash())
    names = sorted(image.file_name for image in manifest.images)
    splits: dict[str, Split] = {n: "val" if k % 4 == 0 else "train" for k, n in enumerate(names)}
    return {
        "detect": materialize(source, "detection", tmp / "cache", splits),
        "classify": materialize(source, "classification", tmp / "cache", splits),
        "config": tmp / "ultralytics-config",
    }


def job(work_dir: Path, data: Path, epochs: int, task: str = "detect", **fields: Any) -> JobSpec:
    kwargs = {**FAST, "epochs": epochs, **fields.pop("train_kwargs", {})}
    model = "yolo11n-cls" if task == "classify" else "yolo11n"
    defaults = {"job_id": uuid.uuid4(), "project_id": PROJECT, "attempt": 1, "framework": "ultralytics"}
    return JobSpec.model_validate(
        {**defaults, "task_type": task, "model": model, "train_kwargs": kwargs, "data": data, "work_dir": work_dir}
        | fields
    )


async def run(
    spec: JobSpec, config: Path, react: Callable[[JobProcess, Message], None] | None = None, spare: bool = False
) -> tuple[list[Message], int]:
    """All messages of one attempt and its exit status; `react` sees each message as it arrives.

    `spare`: through a pre-warmed child, as a runner with spares does, instead of a cold start.
    """
    env = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0", "YOLO_CONFIG_DIR": str(config)}
    if spare:
        proc = await JobProcess.spare(spec.work_dir.parent / f"spare-{spec.job_id}", env, gpus=[])
        assert await proc.assign(spec)
    else:
        proc = await JobProcess.start(spec, env, gpus=[])
    async with proc:
        messages: list[Message] = []
        async with asyncio.timeout(120):
            async for message in proc.messages():
                messages.append(message)
                if react is not None:
                    react(proc, message)
            status = await proc.wait()
        assert proc.terminal is messages[-1]
    return messages, status


def of(messages: list[Message], kind: type[Any]) -> list[Any]:
    return [m for m in messages if isinstance(m, kind)]


def stop_after_first_epoch(stop: Callable[[JobProcess], None], sent: list[float]) -> Callable[..., None]:
    def react(proc: JobProcess, message: Message) -> None:
        if isinstance(message, Progress) and not sent:
            sent.append(time.monotonic())
            stop(proc)

    return react


@pytest.mark.parametrize("spare", [False, True], ids=["cold", "spare"])
async def test_two_epochs_complete_with_progress_and_checkpoints(
    datasets: dict[str, Path], tmp_path: Path, spare: bool
) -> None:
    messages, status = await run(job(tmp_path, datasets["detect"], epochs=2), datasets["config"], spare=spare)
    assert status == 0 and isinstance(messages[0], Started)
    progress = of(messages, Progress)
    assert [p.epoch for p in progress] == [1, 2] and {p.total_epochs for p in progress} == {2}
    assert all("mAP50" in p.val_metrics and "mAP50-95" in p.val_metrics and p.train_losses for p in progress)
    assert all(p.epoch_seconds is not None and p.learning_rate is not None for p in progress)
    checkpoints = of(messages, CheckpointReady)
    assert {c.kind for c in checkpoints} == {"last", "best"} and all(c.path.is_file() for c in checkpoints)
    assert max(c.epoch for c in checkpoints if c.kind == "last") == 2
    assert len({c.path for c in checkpoints}) == len(checkpoints)  # each hand-over is its own file
    finished = messages[-1]
    assert isinstance(finished, Finished) and finished.status == "completed" and finished.last_epoch == 2
    assert finished.best_epoch in (1, 2) and "mAP50" in finished.best_metrics


async def test_cancel_stops_within_seconds_and_leaves_a_last_checkpoint(
    datasets: dict[str, Path], tmp_path: Path
) -> None:
    sent: list[float] = []
    spec = job(tmp_path, datasets["detect"], epochs=20)
    messages, status = await run(spec, datasets["config"], stop_after_first_epoch(JobProcess.cancel, sent))
    assert time.monotonic() - sent[0] < 10
    assert status == 0 and [p.epoch for p in of(messages, Progress)] == [1]
    finished = messages[-1]
    assert isinstance(finished, Finished) and finished.status == "cancelled" and finished.last_epoch == 1
    # A `last` of the finished epoch; saved again mid-epoch when the cancel came after a batch.
    last = [c for c in of(messages, CheckpointReady) if c.kind == "last"][-1]
    assert last.epoch == 1 and last.path.is_file()


async def test_a_cancel_that_reaches_a_spare_before_training_ends_it_as_cancelled(
    datasets: dict[str, Path], tmp_path: Path
) -> None:
    spec = job(tmp_path, datasets["detect"], epochs=20)
    messages, status = await run(spec, datasets["config"], lambda proc, m: proc.cancel(), spare=True)
    finished = messages[-1]
    assert status == 0 and isinstance(finished, Finished) and finished.status == "cancelled"
    assert of(messages, Progress) == [] and finished.last_epoch == 0


async def test_requeued_job_resumes_at_the_next_epoch(datasets: dict[str, Path], tmp_path: Path) -> None:
    sent: list[float] = []
    first = job(tmp_path / "attempt1", datasets["detect"], epochs=3)
    messages, status = await run(first, datasets["config"], stop_after_first_epoch(JobProcess.stop_for_requeue, sent))
    finished = messages[-1]
    assert status == 0 and isinstance(finished, Finished) and finished.status == "stopped_for_requeue"
    last = [c for c in of(messages, CheckpointReady) if c.kind == "last"][-1]
    assert last.epoch == 1

    # Another machine: a fresh work dir, the checkpoint as downloaded by the runner.
    second = job(tmp_path / "attempt2", datasets["detect"], epochs=3, resume_from=last.path, attempt=2)
    messages, status = await run(second, datasets["config"])
    assert status == 0, messages[-1]
    assert [p.epoch for p in of(messages, Progress)] == [2, 3]
    assert all(p.total_epochs == 3 for p in of(messages, Progress))
    finished = messages[-1]
    assert isinstance(finished, Finished) and finished.status == "completed" and finished.last_epoch == 3
    assert all(c.path.is_relative_to(tmp_path / "attempt2") for c in of(messages, CheckpointReady))


async def test_unknown_train_argument_is_an_invalid_config(datasets: dict[str, Path], tmp_path: Path) -> None:
    spec = job(tmp_path, datasets["detect"], epochs=1, train_kwargs={"no_such_argument": 3})
    messages, status = await run(spec, datasets["config"])
    failed = messages[-1]
    assert status == 1 and isinstance(failed, Failed) and failed.code == "INVALID_CONFIG"
    assert "no_such_argument" in failed.message and failed.last_good_epoch == 0


async def test_missing_data_is_dataset_not_found(datasets: dict[str, Path], tmp_path: Path) -> None:
    messages, status = await run(job(tmp_path, tmp_path / "nowhere", epochs=1), datasets["config"])
    failed = messages[-1]
    assert status == 1 and isinstance(failed, Failed) and failed.code == "DATASET_NOT_FOUND"


async def test_classify_an_imagefolder(datasets: dict[str, Path], tmp_path: Path) -> None:
    spec = job(tmp_path, datasets["classify"], epochs=1, task="classify")
    messages, status = await run(spec, datasets["config"])
    assert status == 0, messages[-1]
    [progress] = of(messages, Progress)
    assert "top1" in progress.val_metrics and "loss" in progress.train_losses
    assert isinstance(messages[-1], Finished) and messages[-1].status == "completed"
