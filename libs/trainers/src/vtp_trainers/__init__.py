"""What each trainer framework accepts: config models, presets, the registry, job-config validation.

Shared by the jobs service (validates job requests, serves `/api/v1/trainers`)
and the trainer-runner (maps a resolved config onto the framework). Depends on
pydantic only; never imports a framework.
"""

from vtp_trainers.config import GROUPS, BasicConfig, UltralyticsAdvanced
from vtp_trainers.presets import PRESETS, Preset
from vtp_trainers.registry import (
    TASKS,
    TRAINERS,
    Task,
    Trainer,
    UnknownFrameworkError,
    config_schema,
    get_trainer,
    model_yaml,
    trainers_summary,
)
from vtp_trainers.validate import ConfigProblem, ResolvedJobConfig, checkpoint_ref, validate_job_config

__all__ = [
    "GROUPS",
    "PRESETS",
    "TASKS",
    "TRAINERS",
    "BasicConfig",
    "ConfigProblem",
    "Preset",
    "ResolvedJobConfig",
    "Task",
    "Trainer",
    "UltralyticsAdvanced",
    "UnknownFrameworkError",
    "checkpoint_ref",
    "config_schema",
    "get_trainer",
    "model_yaml",
    "trainers_summary",
    "validate_job_config",
]
