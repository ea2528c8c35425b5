"""The advanced keys are real Ultralytics `train()` arguments with Ultralytics' defaults.

Only this module imports ultralytics (vtp_trainers itself never does), so a
new Ultralytics release that renames or re-defaults a key fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from vtp_trainers.config import UltralyticsAdvanced
from vtp_trainers.presets import PRESETS
from vtp_trainers.validate import validate_job_config


@pytest.fixture(scope="module")
def ucfg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as mp:
        # Set before the import: no network checks, and no settings file in the user's home.
        mp.setenv("YOLO_OFFLINE", "1")
        mp.setenv("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("ultralytics")))
        import ultralytics.cfg

        yield ultralytics.cfg


def test_advanced_keys_exist_in_ultralytics(ucfg: ModuleType) -> None:
    unknown = set(UltralyticsAdvanced.model_fields) - set(ucfg.DEFAULT_CFG_DICT)
    assert not unknown, f"not Ultralytics train() arguments: {sorted(unknown)}"


def test_advanced_defaults_match_ultralytics(ucfg: ModuleType) -> None:
    ours = UltralyticsAdvanced().model_dump()
    theirs = {key: ucfg.DEFAULT_CFG_DICT[key] for key in ours}
    assert ours == theirs
    assert all(type(ours[k]) is type(theirs[k]) for k in ours if theirs[k] is not None)


def test_train_kwargs_are_ultralytics_arguments(ucfg: ModuleType) -> None:
    resolved, problems = validate_job_config("ultralytics", "detect", "yolo11n", {}, {"mixup": 0.1})
    assert resolved is not None, problems
    assert set(resolved.to_train_kwargs()) <= set(ucfg.DEFAULT_CFG_DICT)


def bound_values(which: str) -> dict[str, Any]:
    """Every bounded advanced field at its lower or upper bound (exclusive bounds nudged inside)."""
    values: dict[str, Any] = {}
    for name, prop in UltralyticsAdvanced.model_json_schema()["properties"].items():
        if which == "min" and "minimum" in prop:
            values[name] = prop["minimum"]
        elif which == "min" and "exclusiveMinimum" in prop:
            values[name] = prop["exclusiveMinimum"] + 1e-6
        elif which == "max" and "maximum" in prop:
            values[name] = prop["maximum"]
        elif which == "max" and "exclusiveMaximum" in prop:
            values[name] = prop["exclusiveMaximum"] - 1e-6
    return values


@pytest.mark.parametrize("which", ["min", "max"])
def test_our_ranges_are_inside_ultralytics_ranges(ucfg: ModuleType, which: str) -> None:
    resolved, problems = validate_job_config("ultralytics", "detect", "yolo11n", {}, bound_values(which))
    assert resolved is not None, problems
    ucfg.check_cfg(resolved.to_train_kwargs(), hard=True)  # raises on a type or range Ultralytics refuses


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_pass_ultralytics_checks(ucfg: ModuleType, name: str) -> None:
    preset = PRESETS[name]
    resolved, problems = validate_job_config("ultralytics", "segment", "yolo11s", preset.config, preset.advanced_config)
    assert resolved is not None, problems
    ucfg.check_cfg(resolved.to_train_kwargs(), hard=True)
