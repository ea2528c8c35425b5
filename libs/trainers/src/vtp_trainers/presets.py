"""Named starting points for a job's config; a client copies one and edits what it needs.

A preset is only data: `config` holds `BasicConfig` keys, `advanced_config`
`UltralyticsAdvanced` keys. Keys a preset leaves out keep their defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Preset:
    """One named set of config values."""

    name: str
    description: str
    config: Mapping[str, Any]
    advanced_config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Presets are module-level singletons; read-only views keep one caller from editing another's.
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        object.__setattr__(self, "advanced_config", MappingProxyType(dict(self.advanced_config)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "config": dict(self.config),
            "advanced_config": dict(self.advanced_config),
        }


EASY = Preset(
    name="easy",
    description="A quick first run: few epochs at a small image size, safe defaults, early stopping.",
    config={"epochs": 30, "imgsz": 416, "batch": 16, "optimizer": "auto", "patience": 10, "amp": True},
)

MEDIUM = Preset(
    name="medium",
    description="Balanced: the standard 640 px image size, 100 epochs, default augmentation.",
    config={"epochs": 100, "imgsz": 640, "batch": 16, "optimizer": "auto", "patience": 30, "amp": True},
)

ADVANCED = Preset(
    name="advanced",
    description=(
        "Long training with AdamW, a cosine schedule and stronger augmentation; "
        "for larger datasets where the extra epochs pay off."
    ),
    # AdamW wants a lower learning rate than SGD's 0.01 (Ultralytics' own advice).
    config={"epochs": 300, "imgsz": 640, "batch": 16, "optimizer": "AdamW", "lr0": 0.001, "patience": 50},
    advanced_config={
        "cos_lr": True,
        "warmup_epochs": 5.0,
        "close_mosaic": 20,
        "degrees": 10.0,
        "scale": 0.7,
        "mixup": 0.15,
        "cutmix": 0.1,
        "copy_paste": 0.1,
    },
)

# Insertion order is the display order (simplest first).
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in (EASY, MEDIUM, ADVANCED)})
