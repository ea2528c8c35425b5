"""`GET /api/v1/exports/capabilities`: per framework and task, the formats, their options, and availability."""

from __future__ import annotations

from typing import Any

from vtp_export.adapters.toolchains import Toolchains
from vtp_export.domain.formats import (
    ALL_TASKS,
    FORMATS,
    OPTION_NAMES,
    SUPPORTED_TASKS,
    _unsupported_reason,
    task_format_reason,
)

_OPTION_DOCS: dict[str, dict[str, Any]] = {
    "imgsz": {
        "type": "integer",
        "default": "the job's training imgsz",
        "multiple_of": 32,
        "minimum": 32,
        "maximum": 2048,
    },
    "batch": {"type": "integer", "default": 1, "note": "above 1 only with dynamic (the largest batch)"},
    "half": {"type": "boolean", "default": False},
    "int8": {"type": "boolean", "default": False},
    "dynamic": {"type": "boolean", "default": False},
    "simplify": {"type": "boolean", "default": True},
    "opset": {"type": "integer", "default": None, "minimum": 11, "maximum": 22},
    "nms": {"type": "boolean", "default": False},
}


def _options(fmt: str) -> dict[str, Any]:
    spec = FORMATS[fmt]
    out: dict[str, Any] = {}
    for name in OPTION_NAMES:
        supported = name in ("imgsz", "batch") or name in spec.options
        doc = {**_OPTION_DOCS[name], "supported": supported}
        if not supported:
            doc["reason"] = _unsupported_reason(name, spec)
        out[name] = doc
    return out


def _for_task(entry: dict[str, Any], task: str) -> dict[str, Any]:
    """A format as offered for one task: a format not verified for the task is unavailable, with why."""
    reason = task_format_reason(task, entry["format"])
    if reason is None:
        return entry
    return {**entry, "available": False, "reason": reason, "task_verified": False}


def capabilities(toolchains: Toolchains) -> dict[str, Any]:
    formats = []
    for fmt, spec in FORMATS.items():
        available = toolchains.availability(fmt)
        formats.append(
            {
                "format": fmt,
                "title": spec.title,
                "available": available.available,
                "reason": available.reason,
                "gpu_required": spec.gpu,
                "runtime": spec.runtime,
                "options": _options(fmt),
            }
        )
    tasks = [
        {
            "task": task,
            "supported": task in SUPPORTED_TASKS,
            "reason": None if task in SUPPORTED_TASKS else "the parity gate and predictor cover detect only so far",
            "formats": [_for_task(f, task) for f in formats] if task in SUPPORTED_TASKS else [],
        }
        for task in ALL_TASKS
    ]
    return {"frameworks": [{"framework": "ultralytics", "tasks": tasks}]}
