"""The trainer registry, model files, presets and the config-schema document."""

from __future__ import annotations

import json

import pytest

from vtp_trainers.config import GROUPS, BasicConfig, UltralyticsAdvanced
from vtp_trainers.presets import PRESETS
from vtp_trainers.registry import (
    TASKS,
    TRAINERS,
    UnknownFrameworkError,
    config_schema,
    get_trainer,
    model_yaml,
    trainers_summary,
)
from vtp_trainers.validate import validate_job_config

MODELS = [f"{family}{size}" for family in ("yolo11", "yolov8") for size in "nsmlx"]


def test_ultralytics_tasks_and_models() -> None:
    trainer = get_trainer("ultralytics")
    assert trainer.tasks == TASKS == ("detect", "segment", "classify", "pose")
    assert list(trainer.models) == MODELS


@pytest.mark.parametrize(
    ("task", "model", "yaml"),
    [
        ("detect", "yolo11n", "yolo11n.yaml"),
        ("segment", "yolo11n", "yolo11n-seg.yaml"),
        ("classify", "yolo11n", "yolo11n-cls.yaml"),
        ("pose", "yolo11n", "yolo11n-pose.yaml"),
        ("detect", "yolov8x", "yolov8x.yaml"),
        ("segment", "yolov8m", "yolov8m-seg.yaml"),
        ("classify", "yolov8s", "yolov8s-cls.yaml"),
        ("pose", "yolov8l", "yolov8l-pose.yaml"),
    ],
)
def test_model_yaml(task: str, model: str, yaml: str) -> None:
    assert model_yaml(task, model) == yaml


@pytest.mark.parametrize(("task", "model"), [("obb", "yolo11n"), ("detect", "yolo12n"), ("detect", "s3://b/best.pt")])
def test_model_yaml_refuses_unknown(task: str, model: str) -> None:
    with pytest.raises(ValueError):
        model_yaml(task, model)


def test_unknown_framework_error() -> None:
    with pytest.raises(UnknownFrameworkError) as info:
        config_schema("darknet")
    assert isinstance(info.value, LookupError) and info.value.framework == "darknet"


def test_trainers_summary() -> None:
    assert trainers_summary() == [
        {
            "name": "ultralytics",
            "description": TRAINERS["ultralytics"].description,
            "tasks": ["detect", "segment", "classify", "pose"],
            "models": MODELS,
            "presets": ["easy", "medium", "advanced"],
        }
    ]
    json.dumps(trainers_summary())


@pytest.mark.parametrize("name", ["easy", "medium", "advanced"])
@pytest.mark.parametrize("task", TASKS)
def test_presets_validate(name: str, task: str) -> None:
    preset = PRESETS[name]
    resolved, problems = validate_job_config("ultralytics", task, "yolo11n", preset.config, preset.advanced_config)
    assert problems == [] and resolved is not None
    assert resolved.advanced_set == dict(preset.advanced_config)


def test_presets_shape() -> None:
    easy, medium, advanced = (BasicConfig.model_validate(PRESETS[n].config) for n in ("easy", "medium", "advanced"))
    assert easy.epochs < medium.epochs < advanced.epochs
    assert easy.imgsz < medium.imgsz
    assert not PRESETS["easy"].advanced_config and PRESETS["advanced"].advanced_config
    stronger = UltralyticsAdvanced.model_validate(PRESETS["advanced"].advanced_config)
    assert stronger.mixup > UltralyticsAdvanced().mixup
    assert all(p.description for p in PRESETS.values())
    with pytest.raises(TypeError):
        PRESETS["easy"].config["epochs"] = 1  # type: ignore[index]


def test_config_schema_document() -> None:
    schema = config_schema("ultralytics")
    assert list(schema) == ["framework", "basic", "advanced", "presets", "groups"]
    assert schema["basic"] == BasicConfig.model_json_schema()
    assert schema["advanced"] == UltralyticsAdvanced.model_json_schema()
    assert list(schema["presets"]) == ["easy", "medium", "advanced"]
    assert schema["presets"]["advanced"]["advanced_config"]["cos_lr"] is True
    assert [g["name"] for g in schema["groups"]] == list(GROUPS)
    grouped = [key for group in schema["groups"] for key in group["keys"]]
    assert sorted(grouped) == sorted(UltralyticsAdvanced.model_fields)
    assert "mixup" in next(g for g in schema["groups"] if g["name"] == "augmentation")["keys"]
    assert all(g["description"] for g in schema["groups"])


def test_config_schema_is_byte_stable() -> None:
    assert json.dumps(config_schema("ultralytics")) == json.dumps(config_schema("ultralytics"))
