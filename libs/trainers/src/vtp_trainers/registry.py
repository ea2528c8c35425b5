"""The trainer frameworks the platform offers: their tasks, models, config models and presets.

`trainers_summary()` answers `GET /api/v1/trainers` and `config_schema()`
`GET /api/v1/trainers/{framework}/config-schema`; both return plain JSON-ready
dicts whose key order is fixed, so responses are byte-stable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel

from vtp_trainers.config import GROUPS, BasicConfig, UltralyticsAdvanced
from vtp_trainers.presets import PRESETS, Preset

# The platform's task names (Ultralytics' vocabulary; vtp_contracts.TaskType).
Task = Literal["detect", "segment", "classify", "pose"]
TASKS: tuple[Task, ...] = ("detect", "segment", "classify", "pose")


class UnknownFrameworkError(LookupError):
    """No trainer of that name; the jobs service answers 404."""

    def __init__(self, framework: str) -> None:
        super().__init__(f"unknown trainer framework {framework!r}; known: {', '.join(TRAINERS)}")
        self.framework = framework


@dataclass(frozen=True)
class Trainer:
    """One framework: what it trains and which config it accepts."""

    name: str
    description: str
    tasks: tuple[Task, ...]
    models: tuple[str, ...]
    advanced: type[BaseModel]
    presets: Mapping[str, Preset]
    model_yaml: Callable[[str, str], str]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "tasks": list(self.tasks),
            "models": list(self.models),
            "presets": list(self.presets),
        }


ULTRALYTICS_MODELS: tuple[str, ...] = tuple(
    f"{family}{size}" for family in ("yolo11", "yolov8") for size in ("n", "s", "m", "l", "x")
)

# Ultralytics names a task's architecture file by suffixing the detection one.
_YAML_SUFFIX: dict[str, str] = {"detect": "", "segment": "-seg", "classify": "-cls", "pose": "-pose"}


def ultralytics_model_yaml(task: str, model: str) -> str:
    """The architecture file Ultralytics builds `model` for `task` from, e.g. ``yolo11n-seg.yaml``."""
    if task not in _YAML_SUFFIX:
        raise ValueError(f"task {task!r} is not one of {', '.join(_YAML_SUFFIX)}")
    if model not in ULTRALYTICS_MODELS:
        raise ValueError(f"model {model!r} is not one of {', '.join(ULTRALYTICS_MODELS)}")
    return f"{model}{_YAML_SUFFIX[task]}.yaml"


TRAINERS: Mapping[str, Trainer] = MappingProxyType(
    {
        "ultralytics": Trainer(
            name="ultralytics",
            description="Ultralytics YOLO (YOLO11 and YOLOv8): detection, segmentation, classification and pose.",
            tasks=TASKS,
            models=ULTRALYTICS_MODELS,
            advanced=UltralyticsAdvanced,
            presets=PRESETS,
            model_yaml=ultralytics_model_yaml,
        ),
    }
)


def get_trainer(framework: str) -> Trainer:
    """The trainer named `framework`, or `UnknownFrameworkError`."""
    try:
        return TRAINERS[framework]
    except KeyError:
        raise UnknownFrameworkError(framework) from None


def model_yaml(task: str, model: str, framework: str = "ultralytics") -> str:
    """The architecture file for a registry model name (not a checkpoint); ValueError when unknown."""
    return get_trainer(framework).model_yaml(task, model)


def trainers_summary() -> list[dict[str, Any]]:
    """`GET /api/v1/trainers`: name, description, tasks, models and preset names of each framework."""
    return [trainer.summary() for trainer in TRAINERS.values()]


def config_schema(framework: str) -> dict[str, Any]:
    """`GET /api/v1/trainers/{framework}/config-schema`.

    ``{"framework", "basic", "advanced", "presets", "groups"}``: `basic` and
    `advanced` are JSON Schemas (draft 2020-12, pydantic's) of the job's
    `config` and `advanced_config`, each property with its default, range and
    description, advanced ones with a `group`. `presets` maps a name to
    ``{"description", "config", "advanced_config"}``; `groups` lists the
    advanced groups in display order as ``{"name", "description", "keys"}``.
    """
    trainer = get_trainer(framework)
    advanced = trainer.advanced.model_json_schema()
    properties: dict[str, Any] = advanced.get("properties", {})
    groups = [
        {
            "name": name,
            "description": description,
            "keys": [key for key, prop in properties.items() if prop.get("group") == name],
        }
        for name, description in GROUPS.items()
    ]
    return {
        "framework": trainer.name,
        "basic": BasicConfig.model_json_schema(),
        "advanced": advanced,
        "presets": {name: preset.as_dict() for name, preset in trainer.presets.items()},
        "groups": [group for group in groups if group["keys"]],
    }
