"""The config models: defaults, ranges, custom codes, and what their JSON schema shows."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from vtp_trainers.config import GROUPS, BasicConfig, UltralyticsAdvanced


def error_types(model: type[Any], **values: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        model(**values)
    return {".".join(map(str, e["loc"])): e["type"] for e in info.value.errors()}


def test_basic_defaults() -> None:
    basic = BasicConfig()
    assert (basic.epochs, basic.batch, basic.imgsz, basic.lr0, basic.optimizer) == (50, 16, 640, 0.01, "auto")
    assert (basic.patience, basic.seed, basic.device, basic.gpus, basic.workers) == (100, 0, "auto", 1, 2)
    assert (basic.amp, basic.cache, basic.time_limit_minutes) == (True, False, None)


@pytest.mark.parametrize("batch", [-1, 1, 1024])
def test_batch_accepts_autobatch_and_range(batch: int) -> None:
    assert BasicConfig(batch=batch).batch == batch


@pytest.mark.parametrize(
    ("batch", "code"), [(0, "greater_than_equal"), (-2, "greater_than_equal"), (1025, "less_than_equal")]
)
def test_batch_rejects(batch: int, code: str) -> None:
    assert error_types(BasicConfig, batch=batch) == {"batch": code}


@pytest.mark.parametrize("imgsz", [32, 320, 640, 4096])
def test_imgsz_multiples_of_32(imgsz: int) -> None:
    assert BasicConfig(imgsz=imgsz).imgsz == imgsz


@pytest.mark.parametrize(
    ("imgsz", "code"),
    [
        (650, "imgsz_not_multiple_of_32"),
        (33, "imgsz_not_multiple_of_32"),
        (16, "greater_than_equal"),
        (4128, "less_than_equal"),
    ],
)
def test_imgsz_rejects(imgsz: int, code: str) -> None:
    assert error_types(BasicConfig, imgsz=imgsz) == {"imgsz": code}


def test_basic_ranges_and_types() -> None:
    assert error_types(
        BasicConfig,
        epochs=0,
        lr0=0,
        optimizer="Lion",
        patience=-1,
        device="tpu",
        gpus=17,
        workers=33,
        time_limit_minutes=0,
    ) == {
        "epochs": "greater_than_equal",
        "lr0": "greater_than",
        "optimizer": "literal_error",
        "patience": "greater_than_equal",
        "device": "literal_error",
        "gpus": "less_than_equal",
        "workers": "less_than_equal",
        "time_limit_minutes": "greater_than",
    }


def test_models_forbid_unknown_keys() -> None:
    assert error_types(BasicConfig, epoch=3) == {"epoch": "extra_forbidden"}
    assert error_types(UltralyticsAdvanced, mosiac=1.0) == {"mosiac": "extra_forbidden"}


@pytest.mark.parametrize("freeze", [None, 0, 10, [0, 1, 22]])
def test_freeze_accepts_count_or_layers(freeze: Any) -> None:
    assert UltralyticsAdvanced(freeze=freeze).freeze == freeze


@pytest.mark.parametrize("freeze", [True, -1, 1001, "x", [0, -1], [0, "x"], {"a": 1}])
def test_freeze_rejects_with_one_error(freeze: Any) -> None:
    assert error_types(UltralyticsAdvanced, freeze=freeze) == {"freeze": "freeze_invalid"}


def test_advanced_ranges() -> None:
    assert error_types(UltralyticsAdvanced, mixup=1.5, momentum=-0.1, fraction=0, nbs=0, cos_lr="maybe") == {
        "mixup": "less_than_equal",
        "momentum": "greater_than_equal",
        "fraction": "greater_than",
        "nbs": "greater_than_equal",
        "cos_lr": "bool_parsing",
    }


def test_every_advanced_field_has_a_known_group_and_description() -> None:
    for name, prop in UltralyticsAdvanced.model_json_schema()["properties"].items():
        assert prop.get("group") in GROUPS, name
        assert prop.get("description"), name


def test_schema_shows_descriptions_ranges_and_groups() -> None:
    basic = BasicConfig.model_json_schema()["properties"]
    assert basic["imgsz"] | {"description": ""} == {
        "default": 640,
        "description": "",
        "maximum": 4096,
        "minimum": 32,
        "multipleOf": 32,
        "title": "Imgsz",
        "type": "integer",
    }
    assert basic["batch"]["minimum"] == -1 and "AutoBatch" in basic["batch"]["description"]
    assert basic["optimizer"]["enum"] == ["auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"]

    advanced = UltralyticsAdvanced.model_json_schema()
    assert advanced["additionalProperties"] is False
    props = advanced["properties"]
    assert {k: props["mixup"][k] for k in ("default", "minimum", "maximum", "group")} == {
        "default": 0.0,
        "minimum": 0,
        "maximum": 1,
        "group": "augmentation",
    }
    assert props["momentum"]["group"] == "optimizer" and props["momentum"]["description"]
    assert props["box"]["group"] == "loss" and props["box"]["default"] == 7.5
    assert props["cos_lr"]["group"] == "schedule" and props["cos_lr"]["type"] == "boolean"
    assert props["fraction"]["exclusiveMinimum"] == 0 and props["fraction"]["group"] == "data"
    assert props["freeze"]["group"] == "model" and props["freeze"]["default"] is None
