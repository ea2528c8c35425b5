"""A hand-written stand-in for `vtp_client.Client`: canned resources, recorded calls, scripted failures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vtp_client.errors import ApiError, Problem

JOB_ID = "11111111-1111-1111-1111-111111111111"
DATASET_ID = "22222222-2222-2222-2222-222222222222"
EXPORT_ID = "33333333-3333-3333-3333-333333333333"
DEPLOYMENT_ID = "44444444-4444-4444-4444-444444444444"
NOW = "2026-12-02T10:00:00+00:00"

SCHEMA = {
    "basic": {"properties": {"epochs": {}, "imgsz": {}, "batch": {}, "lr0": {}}},
    "advanced": {"properties": {"mosaic": {}, "cos_lr": {}}},
    "presets": {"easy": {"config": {"epochs": 30, "imgsz": 416}, "advanced_config": {"cos_lr": False}}},
}


def job(status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {
        "id": JOB_ID, "name": "run", "status": status, "attempt": 1, "framework": "ultralytics",
        "task_type": "detect", "model": "yolo11n", "dataset_id": DATASET_ID, "snapshot_id": DATASET_ID,
        "config": {"epochs": 2}, "epoch": 2, "total_epochs": 2, "best_epoch": 2,
        "best_metrics": {"mAP50": 0.5, "mAP50-95": 0.25},
        "checkpoints": {"best": {"epoch": 2, "size_bytes": 5_000_000, "sha256": "ab" * 32}},
        "error": None, "timings": {"created_at": NOW, "finished_at": NOW}, **extra,
    }  # fmt: skip


def parity(passed: bool = True) -> dict[str, Any]:
    return {
        "passed": passed, "precision": "fp32", "letterbox": "square 64x64 (rect=False)",
        "tolerances": {"box_px": 0.05, "score": 1e-3, "min_iou": 0.99, "score_diff": 0.005,
                       "class_agreement": 1.0, "metric": 0.01},
        "raw": {"images": 4, "detections": 10, "matched": 10, "max_box_diff_px": 0.0012,
                "max_score_diff_raw": 0.00003, "min_iou": 0.9999, "max_score_diff": 0.00002,
                "class_agreement": 1.0, "unmatched": 0},
        "metric": {"name": "mAP50-95", "checkpoint": 0.711, "export": 0.7105, "delta": -0.0005},
        "failures": [] if passed else ["box outputs differ by 3.2 px > 0.05"],
        "predictor": {"mismatched": 0},
    }  # fmt: skip


def not_found(kind: str) -> ApiError:
    return ApiError(404, f"{kind}_not_found", f"{kind.capitalize()} not found", "no such id")


class Group:
    def __init__(self, fake: FakeClient) -> None:
        self.fake = fake

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.fake.calls.append((f"{type(self).__name__.lower()}.{name}", args, kwargs))
            failure = self.fake.fail.get(f"{type(self).__name__.lower()}.{name}")
            if failure is not None:
                raise failure
            return self.fake.answers[f"{type(self).__name__.lower()}.{name}"]

        return call


class Jobs(Group):
    pass


class Datasets(Group):
    pass


class Trainers(Group):
    pass


class Exports(Group):
    pass


class Deployments(Group):
    pass


class Subscriptions(Group):
    pass


class Tokens(Group):
    pass


class Keys(Group):
    pass


class Usage(Group):
    pass


class Projects(Group):
    pass


class Batches(Group):
    pass


class Feed:
    def __init__(self, fake: FakeClient) -> None:
        self.fake = fake

    def follow_job(self, job_id: Any, types: Any = ()) -> Iterator[dict[str, Any]]:
        for message in self.fake.messages:
            if isinstance(message, BaseException):
                raise message
            yield message


class FakeClient:
    """`answers[group.method]` is returned, `fail[group.method]` raised; every call lands in `calls`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.fail: dict[str, BaseException] = {}
        self.messages: list[Any] = []
        self.answers: dict[str, Any] = {
            "trainers.config_schema": SCHEMA,
            "jobs.create": job("queued", epoch=0),
            "jobs.get": job(),
            "jobs.cancel": job("running"),
            "tokens.whoami": {"project_id": DATASET_ID, "token_id": JOB_ID, "is_admin": False},
            "projects.get": {"id": DATASET_ID, "name": "Demo", "slug": "demo"},
        }
        self.jobs, self.datasets, self.trainers = Jobs(self), Datasets(self), Trainers(self)
        self.exports, self.deployments, self.subscriptions = Exports(self), Deployments(self), Subscriptions(self)
        self.tokens, self.projects, self.feed = Tokens(self), Projects(self), Feed(self)
        self.keys, self.usage, self.batches = Keys(self), Usage(self), Batches(self)

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def called(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(a, k) for n, a, k in self.calls if n == name]


def problem_422(code: str, *problems: dict[str, Any]) -> ApiError:
    found = [Problem.model_validate(p) for p in problems]
    body = {"status": 422, "code": code, "title": "The dataset is not valid", "errors": list(problems)}
    return ApiError(422, code, "The dataset is not valid", f"{len(found)} problem(s)", found, body=body)


def a_png(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    from PIL import Image

    Image.new("RGB", size, (40, 80, 120)).save(path)
    return path


def new_id() -> str:
    return str(uuid.uuid4())
