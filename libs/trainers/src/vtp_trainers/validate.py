"""Check a job request's trainer settings and resolve them into what the trainer-runner runs.

`validate_job_config` reports every problem at once, each with a JSON pointer
into the request body (``/config/imgsz``), so a client can mark all bad fields
in one round trip.
"""

from __future__ import annotations

import copy
import difflib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from vtp_trainers.config import BasicConfig, UltralyticsAdvanced
from vtp_trainers.registry import TRAINERS, Task

ModelKind = Literal["name", "checkpoint"]
_M = TypeVar("_M", bound=BaseModel)

# A checkpoint to fine-tune from is named by the id of an earlier job; the jobs service resolves it to a
# checkpoint it recorded for the caller's project. A URI is refused: it could name another project's object.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_JOB_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a job's trainer settings; `pointer` is a JSON pointer into the request."""

    pointer: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "code": self.code, "message": self.message}


class ResolvedJobConfig(BaseModel):
    """A validated job config: what to build or load, and the framework's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    framework: str
    task: Task
    model: str
    model_kind: ModelKind
    model_yaml: str | None = None  # set for registry names; a checkpoint carries its own architecture
    basic: BasicConfig
    advanced: UltralyticsAdvanced
    advanced_set: dict[str, Any]  # only the advanced keys the user gave, in field order

    def to_train_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for Ultralytics ``model.train()``.

        `device`, `gpus` and `time_limit_minutes` are left to the runner, which
        owns the hardware and the clock; `model`/`data`/`project` are its too.
        """
        b = self.basic
        kwargs: dict[str, Any] = {
            "epochs": b.epochs,
            "batch": b.batch,
            "imgsz": b.imgsz,
            "lr0": b.lr0,
            "optimizer": b.optimizer,
            "patience": b.patience,
            "seed": b.seed,
            "workers": b.workers,
            "amp": b.amp,
            "cache": b.cache,
            # Reruns of a job must be comparable; the platform promises reproducible training.
            "deterministic": True,
        }
        kwargs.update(copy.deepcopy(self.advanced_set))
        return kwargs


def checkpoint_ref(model: str) -> str | None:
    """`model` as a checkpoint reference (an earlier job's id, canonical form), or None for a plain name."""
    if _JOB_ID.match(model):
        return str(uuid.UUID(model))
    return None


def validate_job_config(
    framework: str,
    task: str,
    model: str,
    config: Mapping[str, Any],
    advanced: Mapping[str, Any],
) -> tuple[ResolvedJobConfig | None, list[ConfigProblem]]:
    """Resolve a job's trainer settings, or list everything wrong with them.

    Returns ``(resolved, [])`` or ``(None, problems)``. With an unknown framework
    the checks that depend on it (task, model, advanced keys) are skipped; the
    basic config is still checked.
    """
    problems: list[ConfigProblem] = []
    trainer = TRAINERS.get(framework)
    ref = checkpoint_ref(model)
    if trainer is None:
        known = ", ".join(TRAINERS)
        problems.append(
            ConfigProblem("/framework", "unknown_framework", f"unknown framework {framework!r}; known: {known}")
        )
    else:
        if task not in trainer.tasks:
            supported = ", ".join(trainer.tasks)
            message = f"{trainer.name} does not train task {task!r}; supported: {supported}"
            problems.append(ConfigProblem("/task_type", "task_not_supported", message))
        if _URI.match(model):
            message = (
                "object-store URIs are not accepted: fine-tune from an earlier job of this project "
                "(its id, or {\"job_id\": ..., \"checkpoint\": \"best\"|\"last\"})"
            )
            problems.append(ConfigProblem("/model", "model_uri_not_allowed", message))
        elif ref is None and model not in trainer.models:
            message = f"unknown model {model!r}: use one of {', '.join(trainer.models)}, or the id of an earlier job"
            problems.append(ConfigProblem("/model", "unknown_model", message))

    basic, basic_problems = _check(
        BasicConfig, config, "config", "unknown_config_key", ("advanced_config", UltralyticsAdvanced)
    )
    problems += basic_problems
    extra: BaseModel | None = None
    if trainer is not None:
        sibling = ("config", BasicConfig)
        extra, extra_problems = _check(trainer.advanced, advanced, "advanced_config", "unknown_advanced_key", sibling)
        problems += extra_problems

    if problems or trainer is None:
        return None, problems
    # No problems means both sections parsed; the registry pairs ultralytics with UltralyticsAdvanced.
    assert basic is not None and isinstance(extra, UltralyticsAdvanced)
    return ResolvedJobConfig(
        framework=trainer.name,
        task=task,
        model=ref or model,
        model_kind="name" if ref is None else "checkpoint",
        model_yaml=trainer.model_yaml(task, model) if ref is None else None,
        basic=basic,
        advanced=extra,
        advanced_set=extra.model_dump(include=extra.model_fields_set),
    ), []


def _check(
    schema: type[_M], values: Any, section: str, unknown_code: str, sibling: tuple[str, type[BaseModel]]
) -> tuple[_M | None, list[ConfigProblem]]:
    """Validate `values` against `schema`; pydantic's errors become problems under ``/{section}``.

    `sibling` is the other section: a key that belongs there gets a hint saying so.
    """
    try:
        return schema.model_validate(values), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            pointer = "/" + "/".join(_escape(part) for part in (section, *error["loc"]))
            if error["type"] == "extra_forbidden":
                message = _unknown_key_message(str(error["loc"][-1]), schema, section, sibling)
                problems.append(ConfigProblem(pointer, unknown_code, message))
            elif error["type"] == "model_type":  # pydantic's message would name our class
                problems.append(ConfigProblem(pointer, "model_type", f"{section} should be an object"))
            else:
                problems.append(ConfigProblem(pointer, error["type"], error["msg"]))
        return None, problems


def _escape(part: str | int) -> str:
    """A JSON pointer (RFC 6901) reference token."""
    return str(part).replace("~", "~0").replace("/", "~1")


def _unknown_key_message(key: str, schema: type[BaseModel], section: str, sibling: tuple[str, type[BaseModel]]) -> str:
    sibling_section, sibling_schema = sibling
    if key in sibling_schema.model_fields:
        return f"{key!r} does not go in {section}; it belongs in {sibling_section}"
    close = difflib.get_close_matches(key, list(schema.model_fields), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {section} key {key!r}{hint}"
