"""validate_job_config: a valid request resolves; every problem code, with its pointer, all at once."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from vtp_trainers.config import BasicConfig
from vtp_trainers.validate import ConfigProblem, ResolvedJobConfig, checkpoint_ref, validate_job_config

JOB_ID = "8f14e45f-ceea-467f-a0e6-5a1e0e9f4c2b"


def resolve(
    model: str = "yolo11n",
    config: Any = None,
    advanced: Any = None,
    task: str = "detect",
    framework: str = "ultralytics",
) -> tuple[ResolvedJobConfig | None, list[ConfigProblem]]:
    return validate_job_config(framework, task, model, config or {}, advanced or {})


def codes(problems: list[ConfigProblem]) -> list[tuple[str, str]]:
    return [(p.pointer, p.code) for p in problems]


def test_valid_request_resolves() -> None:
    resolved, problems = resolve(
        "yolo11s", {"epochs": 10, "imgsz": 320, "batch": -1, "device": "cpu"}, {"mixup": 0.2, "freeze": 10}, "segment"
    )
    assert problems == []
    assert resolved is not None
    assert (resolved.framework, resolved.task, resolved.model, resolved.model_kind) == (
        "ultralytics",
        "segment",
        "yolo11s",
        "name",
    )
    assert resolved.model_yaml == "yolo11s-seg.yaml"
    assert resolved.basic == BasicConfig(epochs=10, imgsz=320, batch=-1, device="cpu")
    assert resolved.advanced.mixup == 0.2 and resolved.advanced.mosaic == 1.0
    assert resolved.advanced_set == {"mixup": 0.2, "freeze": 10}


def test_empty_config_takes_defaults() -> None:
    resolved, problems = resolve(config=MappingProxyType({}), advanced=MappingProxyType({}))
    assert problems == [] and resolved is not None
    assert resolved.basic == BasicConfig() and resolved.advanced_set == {}


def test_train_kwargs() -> None:
    resolved, _ = resolve(
        config={"epochs": 5, "cache": True, "gpus": 2, "time_limit_minutes": 30}, advanced={"cos_lr": True}
    )
    assert resolved is not None
    assert resolved.to_train_kwargs() == {
        "epochs": 5,
        "batch": 16,
        "imgsz": 640,
        "lr0": 0.01,
        "optimizer": "auto",
        "patience": 100,
        "seed": 0,
        "workers": 2,
        "amp": True,
        "cache": True,
        "deterministic": True,
        "cos_lr": True,
    }


def test_train_kwargs_are_copies() -> None:
    resolved, _ = resolve(advanced={"freeze": [0, 1]})
    assert resolved is not None
    resolved.to_train_kwargs()["freeze"].append(2)
    assert resolved.advanced_set == {"freeze": [0, 1]}


@pytest.mark.parametrize(("model", "ref"), [(JOB_ID, JOB_ID), (JOB_ID.upper(), JOB_ID)])  # ids are canonicalised
def test_earlier_job_as_checkpoint(model: str, ref: str) -> None:
    assert checkpoint_ref(model) == ref
    resolved, problems = resolve(model, task="pose")
    assert problems == [] and resolved is not None
    assert (resolved.model, resolved.model_kind, resolved.model_yaml) == (ref, "checkpoint", None)


@pytest.mark.parametrize(
    "model", ["s3://vtp/checkpoints/other-project/best.pt", "local://vtp/best.pt", "http://x/best.pt", "file:///etc/x", "s3://"]
)
def test_uris_are_refused(model: str) -> None:
    """Only checkpoints the platform recorded for the caller's project: a URI could name anyone's object."""
    assert checkpoint_ref(model) is None
    assert codes(resolve(model)[1]) == [("/model", "model_uri_not_allowed")]


@pytest.mark.parametrize("model", ["yolo12n", "YOLO11N", "yolo11n.pt", "8f14e45f", ""])
def test_unknown_model(model: str) -> None:
    assert checkpoint_ref(model) is None
    assert codes(resolve(model)[1]) == [("/model", "unknown_model")]


def test_unknown_framework() -> None:
    resolved, problems = resolve(framework="darknet", advanced={"anything": 1})
    assert resolved is None
    # Task, model and advanced keys depend on the framework: not judged without one.
    assert codes(problems) == [("/framework", "unknown_framework")]
    assert "ultralytics" in problems[0].message


def test_unknown_framework_still_checks_basic_config() -> None:
    assert codes(resolve(framework="darknet", config={"imgsz": 100})[1]) == [
        ("/framework", "unknown_framework"),
        ("/config/imgsz", "imgsz_not_multiple_of_32"),
    ]


def test_task_not_supported() -> None:
    assert codes(resolve(task="obb")[1]) == [("/task_type", "task_not_supported")]


def test_imgsz_not_multiple_of_32() -> None:
    (problem,) = resolve(config={"imgsz": 650})[1]
    assert problem == ConfigProblem("/config/imgsz", "imgsz_not_multiple_of_32", problem.message)
    assert "640 or 672" in problem.message


def test_unknown_config_key_with_hint() -> None:
    problems = resolve(config={"epoch": 3, "momentum": 0.9})[1]
    assert codes(problems) == [("/config/epoch", "unknown_config_key"), ("/config/momentum", "unknown_config_key")]
    assert "did you mean 'epochs'" in problems[0].message
    assert "advanced_config" in problems[1].message


def test_unknown_advanced_key_with_hint() -> None:
    problems = resolve(advanced={"bogus": 1, "epochs": 3, "mosiac": 0.5})[1]
    assert codes(problems) == [
        ("/advanced_config/bogus", "unknown_advanced_key"),
        ("/advanced_config/epochs", "unknown_advanced_key"),
        ("/advanced_config/mosiac", "unknown_advanced_key"),
    ]
    assert "belongs in config" in problems[1].message
    assert "did you mean 'mosaic'" in problems[2].message


@pytest.mark.parametrize(
    ("config", "pointer", "code"),
    [
        ({"epochs": 0}, "/config/epochs", "greater_than_equal"),
        ({"epochs": "ten"}, "/config/epochs", "int_parsing"),
        ({"epochs": 2.5}, "/config/epochs", "int_from_float"),
        ({"lr0": 2}, "/config/lr0", "less_than_equal"),
        ({"amp": "perhaps"}, "/config/amp", "bool_parsing"),
        ({"device": "tpu"}, "/config/device", "literal_error"),
        ({"batch": 0}, "/config/batch", "greater_than_equal"),
    ],
)
def test_pydantic_codes_pass_through(config: dict[str, Any], pointer: str, code: str) -> None:
    assert codes(resolve(config=config)[1]) == [(pointer, code)]


def test_non_object_sections() -> None:
    problems = resolve(config=["epochs"], advanced="mixup")[1]
    assert codes(problems) == [("/config", "model_type"), ("/advanced_config", "model_type")]
    assert problems[0].message == "config should be an object"


def test_pointer_escaping() -> None:
    assert codes(resolve(config={"a/b~c": 1})[1]) == [("/config/a~1b~0c", "unknown_config_key")]


def test_every_problem_at_once() -> None:
    resolved, problems = validate_job_config(
        "ultralytics",
        "obb",
        "yolo12n",
        {"epochs": -1, "batch": "big", "imgsz": 100, "lr0": 0, "workers": 99, "bogus": True},
        {"mixup": 2, "freeze": -3, "hsv_h": "x", "label_smoothing": 0.1},
    )
    assert resolved is None
    assert codes(problems) == [
        ("/task_type", "task_not_supported"),
        ("/model", "unknown_model"),
        ("/config/epochs", "greater_than_equal"),
        ("/config/batch", "int_parsing"),
        ("/config/imgsz", "imgsz_not_multiple_of_32"),
        ("/config/lr0", "greater_than"),
        ("/config/workers", "less_than_equal"),
        ("/config/bogus", "unknown_config_key"),
        ("/advanced_config/hsv_h", "float_parsing"),
        ("/advanced_config/mixup", "less_than_equal"),
        ("/advanced_config/freeze", "freeze_invalid"),
        ("/advanced_config/label_smoothing", "unknown_advanced_key"),
    ]
    assert all(p.message for p in problems)
    assert problems[0].as_dict() == {
        "pointer": "/task_type",
        "code": "task_not_supported",
        "message": problems[0].message,
    }
