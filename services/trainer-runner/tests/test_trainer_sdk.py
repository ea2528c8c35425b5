"""The plugin contract without training: protocol, SDK, spec, registry, supervisor, Ultralytics mapping."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vtp_trainer_runner.plugin import get_plugin
from vtp_trainer_runner.plugins.ultralytics import SpecError, error_code, model_source, train_arguments
from vtp_trainer_runner.plugins.ultralytics_offline import no_amp_check_download
from vtp_trainer_runner.plugins.ultralytics_reporting import Reporter, StopTraining, metric_name
from vtp_trainer_runner.protocol import (
    CheckpointReady,
    Failed,
    Finished,
    Log,
    Message,
    Progress,
    Started,
    encode,
    parse_message,
)
from vtp_trainer_runner.sdk import TrainerContext
from vtp_trainer_runner.spec import JobSpec
from vtp_trainer_runner.supervisor import JobProcess


def spec(tmp_path: Path, **fields: Any) -> JobSpec:
    base = {"job_id": uuid.uuid4(), "project_id": uuid.uuid4(), "attempt": 1, "framework": "ultralytics"}
    base |= {"task_type": "detect", "model": "yolo11n", "data": tmp_path / "data", "work_dir": tmp_path / "work"}
    return JobSpec.model_validate(base | fields)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    os.set_blocking(read, False)
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):  # some tests close an end themselves
            os.close(fd)


def received(fd: int) -> list[Message]:
    try:
        data = os.read(fd, 1 << 20)
    except BlockingIOError:
        return []
    return [parse_message(line) for line in data.splitlines()]


# protocol


@pytest.mark.parametrize(
    "message",
    [
        Started(pid=7),
        Progress(epoch=1, total_epochs=3, train_losses={"box_loss": 1.5}, val_metrics={"mAP50": 0.4}, eta_seconds=2),
        CheckpointReady(kind="best", path=Path("/w/best.pt"), epoch=2, metrics={"mAP50": 0.5}),
        Log(level="error", message="line one\nline two"),
        Failed(code="OOM", message="CUDA out of memory", last_good_epoch=2),
        Finished(status="stopped_for_requeue", best_epoch=1, best_metrics={"top1": 0.9}, last_epoch=2),
    ],
)
def test_messages_round_trip_as_single_json_lines(message: Message) -> None:
    line = encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_message(line) == message


@pytest.mark.parametrize(
    "line",
    ["not json", '{"type": "nope"}', '{"type": "progress", "epoch": 0, "total_epochs": 1}', '{"type": "failed"}'],
)
def test_malformed_lines_are_value_errors(line: str) -> None:
    with pytest.raises(ValueError):
        parse_message(line)


# SDK


def test_logs_are_batched_errors_flush_at_once_and_other_messages_keep_order(pipe: tuple[int, int]) -> None:
    read, write = pipe
    ctx = TrainerContext(write, flush_lines=3, flush_seconds=60)
    ctx.log("info", "a")
    ctx.log("warning", "b")
    assert received(read) == []
    ctx.log("error", "boom")
    assert [m.message for m in received(read) if isinstance(m, Log)] == ["a", "b", "boom"]
    ctx.log("info", "before progress")
    ctx.progress(1, 2, {"loss": 1.0, "bad": float("nan")}, {"mAP50": 0.5}, learning_rate=float("inf"))
    log, progress = received(read)
    assert isinstance(log, Log) and isinstance(progress, Progress)
    assert progress.train_losses == {"loss": 1.0} and progress.learning_rate is None
    ctx.close()


def test_logs_flush_after_the_interval(pipe: tuple[int, int]) -> None:
    read, write = pipe
    ctx = TrainerContext(write, flush_seconds=0.05)
    ctx.log("info", "soon")
    deadline = time.monotonic() + 5
    while not (got := received(read)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [m.message for m in got if isinstance(m, Log)] == ["soon"]
    ctx.close()


def test_the_first_terminal_message_wins_and_defaults_come_from_reports(pipe: tuple[int, int]) -> None:
    read, write = pipe
    ctx = TrainerContext(write)
    ctx.progress(1, 3, {}, {"mAP50": 0.2})
    ctx.checkpoint("best", Path("best.pt"), 1, {"mAP50": 0.2})
    ctx.progress(2, 3, {}, {"mAP50": 0.1})
    ctx.finished("cancelled")
    ctx.fail("TRAINER_CRASHED", "too late")
    *_, checkpoint, _, finished = received(read)
    assert isinstance(checkpoint, CheckpointReady) and checkpoint.path.is_absolute()
    assert finished == Finished(status="cancelled", best_epoch=1, best_metrics={"mAP50": 0.2}, last_epoch=2)
    assert ctx.terminal == finished
    ctx.close()


def test_signals_only_set_the_stop_flag_and_cancel_wins(pipe: tuple[int, int]) -> None:
    ctx = TrainerContext(pipe[1])
    previous = signal.getsignal(signal.SIGTERM)
    ctx.install_signal_handlers()
    try:
        assert ctx.stop_requested() is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert ctx.stop_requested() == "requeue"
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)
        assert ctx.stop_requested() == "cancel"
    finally:
        ctx.close()
    assert signal.getsignal(signal.SIGTERM) == previous


def test_a_closing_child_keeps_its_handlers_so_a_late_cancel_does_not_kill_it(pipe: tuple[int, int]) -> None:
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGUSR1)}
    ctx = TrainerContext(pipe[1])
    ctx.install_signal_handlers()
    try:
        ctx.finished("completed")
        ctx.close(restore_signal_handlers=False)
        os.kill(os.getpid(), signal.SIGUSR1)  # the default action would end this process
        assert ctx.stop_requested() == "cancel"
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_a_vanished_runner_is_a_requeue(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.close(read)
    ctx = TrainerContext(write)
    ctx.progress(1, 2, {}, {})  # EPIPE: no exception, Python ignores SIGPIPE
    assert ctx.stop_requested() == "requeue"
    ctx.close()


# spec and registry


def test_spec_round_trips_and_rejects_unknown_fields(tmp_path: Path) -> None:
    original = spec(tmp_path, train_kwargs={"epochs": 3}, resume_from=tmp_path / "last.pt")
    assert JobSpec.read(original.write(tmp_path / "spec.json")) == original
    (tmp_path / "bad.json").write_text(json.dumps(json.loads(original.model_dump_json()) | {"gpu": 1}))
    with pytest.raises(ValueError):
        JobSpec.read(tmp_path / "bad.json")


def test_registry_names_installed_plugins() -> None:
    assert get_plugin("ultralytics").name == "ultralytics"
    with pytest.raises(KeyError, match="ultralytics"):
        get_plugin("timm")


# Ultralytics mapping (no training)


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("metrics/mAP50(B)", "mAP50"),
        ("metrics/mAP50-95(M)", "mask_mAP50-95"),
        ("metrics/recall(P)", "pose_recall"),
        ("metrics/accuracy_top1", "top1"),
        ("train/box_loss", "box_loss"),
        ("val/loss", "loss"),
    ],
)
def test_metric_names_are_normalized(key: str, name: str) -> None:
    assert metric_name(key) == name


def test_model_source_never_downloads(tmp_path: Path) -> None:
    assert model_source(spec(tmp_path)) == "yolo11n.yaml"
    assert model_source(spec(tmp_path, task_type="segment")) == "yolo11n-seg.yaml"
    assert model_source(spec(tmp_path, task_type="classify", model="yolo11n-cls")) == "yolo11n-cls.yaml"
    assert model_source(spec(tmp_path, model_yaml="yolov8s-pose.yaml", task_type="pose")) == "yolov8s-pose.yaml"
    with pytest.raises(SpecError, match="never downloaded"):
        model_source(spec(tmp_path, model="yolo11n.pt"))
    with pytest.raises(SpecError) as missing:
        model_source(spec(tmp_path, resume_from=tmp_path / "gone.pt"))
    assert missing.value.code == "INVALID_CONFIG"


def test_fine_tuning_loads_the_checkpoint_itself(tmp_path: Path) -> None:
    """The downloaded checkpoint carries its architecture: it is what YOLO() loads, unless the attempt resumes."""
    weights, last = tmp_path / "weights.pt", tmp_path / "resume.pt"
    weights.write_bytes(b"w")
    last.write_bytes(b"r")
    job_id = str(uuid.uuid4())  # a fine-tuning job's model names the earlier job
    assert model_source(spec(tmp_path, model=job_id, pretrained_weights=weights)) == str(weights)
    assert model_source(spec(tmp_path, model=job_id, pretrained_weights=weights, resume_from=last)) == str(last)


def test_train_arguments_keep_outputs_in_the_work_dir(tmp_path: Path) -> None:
    job = spec(tmp_path, train_kwargs={"epochs": 5, "project": "/elsewhere", "save": False, "plots": True})
    args = train_arguments(job, tmp_path / "data.yaml", cuda=False)
    assert args["project"] == str(job.work_dir) and args["name"] == "train" and args["epochs"] == 5
    assert args["save"] is True and args["plots"] is False and args["device"] == "cpu"
    resumed = train_arguments(spec(tmp_path, resume_from=tmp_path / "last.pt"), tmp_path / "d.yaml", cuda=True)
    assert resumed["resume"] == str(tmp_path / "last.pt") and "project" not in resumed and resumed["device"] == "0"
    with pytest.raises(SpecError, match="DDP"):
        train_arguments(spec(tmp_path, train_kwargs={"device": "0,1"}), tmp_path / "d.yaml", cuda=True)


def _wrapped(outer: Exception, inner: Exception) -> Exception:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("exc", "phase", "code"),
    [
        (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "train", "OOM"),
        (SyntaxError("'foo' is not a valid YOLO argument"), "config", "INVALID_CONFIG"),
        (_wrapped(RuntimeError("Dataset 'd.yaml' error"), FileNotFoundError("images")), "data", "DATASET_NOT_FOUND"),
        (ValueError("imgsz"), "data", "INVALID_CONFIG"),
        (ValueError("boom"), "train", "TRAINER_CRASHED"),
    ],
)
def test_exceptions_map_to_error_codes(exc: Exception, phase: Any, code: str) -> None:
    assert error_code(exc, phase) == code


def test_the_amp_check_never_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0", "YOLO_CONFIG_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)  # in case this imports Ultralytics first
    from ultralytics.engine import trainer
    from ultralytics.utils import WEIGHTS_DIR

    calls: list[str] = []

    def real_check(model: Any) -> bool:
        calls.append(model.kind)
        return False

    monkeypatch.setattr(trainer, "check_amp", real_check)
    no_amp_check_download()
    no_amp_check_download()  # idempotent: wraps once
    engine: Any = trainer
    for kind in ("cpu", "cuda"):
        weight = SimpleNamespace(device=SimpleNamespace(type=kind))
        model = SimpleNamespace(kind=kind, parameters=lambda weight=weight: iter([weight]))
        assert engine.check_amp(model) is (kind == "cuda")
    assert calls == ["cpu"] or (WEIGHTS_DIR / "yolo26n.pt").is_file()


class FakeTrainer(SimpleNamespace):
    """The attributes of an Ultralytics trainer the reporter reads."""

    def label_loss_items(self, items: dict[str, float]) -> dict[str, float]:
        return {f"train/{k}": v for k, v in items.items()}

    def save_model(self) -> None:
        self.saved.append((self.epoch, self.best))
        Path(self.last).write_bytes(b"weights")


def test_reporter_reports_epochs_once_and_stops_mid_epoch_as_the_last_finished_one(
    pipe: tuple[int, int], tmp_path: Path
) -> None:
    read, write = pipe
    ctx = TrainerContext(write)
    callbacks = Reporter(ctx, tmp_path, deadline=None).callbacks()
    trainer = FakeTrainer(epoch=0, epochs=3, start_epoch=0, tloss={"box_loss": 1.0}, epoch_time=0.5, saved=[])
    trainer.__dict__.update(metrics={"metrics/mAP50(B)": 0.3}, lr={"lr/pg0": 0.01}, save_period=-1)
    trainer.__dict__.update(last=tmp_path / "last.pt", best=tmp_path / "best.pt")
    callbacks["on_train_start"](trainer)
    callbacks["on_fit_epoch_end"](trainer)
    trainer.epoch = 1
    callbacks["on_train_batch_end"](trainer)  # nothing requested: carries on
    ctx.request_stop("cancel")
    with pytest.raises(StopTraining) as stop:
        callbacks["on_train_batch_end"](trainer)
    assert stop.value.reason == "cancel" and trainer.saved == [(0, Path(os.devnull))] and trainer.epoch == 1
    progress, checkpoint = received(read)
    assert isinstance(progress, Progress) and progress.epoch == 1 and progress.val_metrics == {"mAP50": 0.3}
    assert isinstance(checkpoint, CheckpointReady) and checkpoint.epoch == 1 and checkpoint.path.read_bytes()
    trainer.epoch = 3  # Ultralytics' final validation calls on_fit_epoch_end once more
    callbacks["on_fit_epoch_end"](trainer)
    assert received(read) == []
    ctx.close()


def test_reporter_times_out_without_a_checkpoint_before_the_first_epoch(pipe: tuple[int, int], tmp_path: Path) -> None:
    ctx = TrainerContext(pipe[1])
    reporter = Reporter(ctx, tmp_path, deadline=time.monotonic() - 1)
    trainer = FakeTrainer(epoch=0, start_epoch=0, saved=[])
    reporter.callbacks()["on_train_start"](trainer)
    with pytest.raises(StopTraining) as stop:
        reporter.callbacks()["on_train_batch_end"](trainer)
    assert stop.value.reason == "timeout" and trainer.saved == [] and received(pipe[0]) == []
    ctx.close()


# supervisor, with a stand-in child


FAKE_CHILD = """
import json, os, subprocess, sys, time
fd = int(os.environ["VTP_REPORT_FD"])
def send(line):
    os.write(fd, line.encode() + b"\\n")
send(json.dumps({"type": "started", "pid": os.getpid()}))
send("not a message")
env = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "VTP_JOB_SPEC", "EXTRA", "VTP_S3_SECRET_KEY")}
send(json.dumps({"type": "log", "message": json.dumps(env)}))
if os.environ.get("HANG"):
    worker = subprocess.Popen(["sleep", "60"])  # a data loader worker, say: same process group
    send(json.dumps({"type": "log", "message": str(worker.pid)}))
    time.sleep(60)
send(json.dumps({"type": "finished", "status": "completed"}))
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    script = tmp_path / "fake-python"
    script.write_text(f"#!{sys.executable}\n{FAKE_CHILD}")
    script.chmod(0o755)
    return str(script)


async def test_supervisor_passes_env_and_turns_malformed_lines_into_warnings(
    tmp_path: Path, fake_python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VTP_S3_SECRET_KEY", "runner-only")
    job = spec(tmp_path)
    async with await JobProcess.start(job, {"EXTRA": "1"}, gpus=[2, 3], python=fake_python) as proc:
        messages = [m async for m in proc.messages()]
        assert await proc.wait() == 0
    started, warning, env, finished = messages
    assert isinstance(started, Started) and started.pid == proc.pid
    assert isinstance(warning, Log) and warning.level == "warning" and "not a message" in warning.message
    assert isinstance(env, Log) and json.loads(env.message) == {
        "CUDA_VISIBLE_DEVICES": "2,3",
        "VTP_JOB_SPEC": str(job.work_dir / "job-spec.json"),
        "EXTRA": "1",
        "VTP_S3_SECRET_KEY": None,
    }
    assert proc.terminal == finished and JobSpec.read(job.work_dir / "job-spec.json") == job


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_kill_takes_down_the_whole_process_group(tmp_path: Path, fake_python: str) -> None:
    proc = await JobProcess.start(spec(tmp_path), {"HANG": "1"}, python=fake_python)
    messages = proc.messages()
    worker = 0
    async with asyncio.timeout(10):
        async for message in messages:
            if isinstance(message, Log) and message.message.isdigit():
                worker = int(message.message)
                break
    assert _alive(worker)
    proc.kill()
    assert await proc.wait() == -signal.SIGKILL
    assert [m async for m in messages] == []  # EOF: nothing holds the pipe any more
    for _ in range(100):  # SIGKILL is delivered at once, but reaping the orphan may take a moment
        if not _alive(worker):
            break
        await asyncio.sleep(0.05)
    assert not _alive(worker)
    await proc.close()


async def test_child_fails_an_unknown_framework_as_invalid_config(tmp_path: Path) -> None:
    async with await JobProcess.start(spec(tmp_path, framework="timm")) as proc:
        messages = [m async for m in proc.messages()]
        assert await proc.wait() == 1
    started, failed = messages
    assert isinstance(started, Started) and isinstance(failed, Failed)
    assert failed.code == "INVALID_CONFIG" and "timm" in failed.message
