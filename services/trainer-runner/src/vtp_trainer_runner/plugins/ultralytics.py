"""The Ultralytics YOLO plugin: detect, segment, classify and pose, offline, resumable.

Ultralytics is imported inside `preload()` (a spare child) or `train()`, after its environment is set
(it reads it at import): offline (no update checks, analytics or downloads), no pip auto-install,
settings in the child's directory. Nothing is ever downloaded: models are built from their yaml or
loaded from local files.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import time
import traceback
from pathlib import Path
from typing import Any

from vtp_contracts.events.jobs import JobErrorCode
from vtp_trainer_runner.plugins.ultralytics_offline import no_amp_check_download, use_offline_environment
from vtp_trainer_runner.plugins.ultralytics_reporting import Phase, Reporter, StopTraining
from vtp_trainer_runner.protocol import LogLevel
from vtp_trainer_runner.sdk import TrainerContext
from vtp_trainer_runner.spec import JobSpec

TASK_SUFFIX = {"detect": "", "segment": "-seg", "classify": "-cls", "pose": "-pose"}
# Set by the plugin, whatever train_kwargs say: where outputs go, and that checkpoints are written.
MANAGED = frozenset({"data", "project", "name", "exist_ok", "save_dir", "resume", "model", "task", "mode", "save"})
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# What train() would import before its first epoch (measured: about 3 s of a 2-core machine's time).
PRELOAD = (
    "torch",
    "torch._inductor.config",  # every train() sets deterministic mode on or off, which imports it (~1 s)
    "torchvision",
    "ultralytics.models",
    "ultralytics.models.yolo.detect.train",
    "ultralytics.models.yolo.segment.train",
    "ultralytics.models.yolo.classify.train",
    "ultralytics.models.yolo.pose.train",
    "ultralytics.data.build",
    "ultralytics.utils.plotting",  # matplotlib, imported by the trainers' metrics even with plots off
)


class SpecError(Exception):
    """The spec cannot be trained as given; caught before any training starts."""

    def __init__(self, code: JobErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: JobErrorCode = code


def resolve_data(spec: JobSpec) -> Path:
    """The data.yaml (detect, segment, pose) or ImageFolder root (classify) to train on."""
    data = spec.data
    if spec.task_type == "classify":
        if not (data / "train").is_dir():
            raise SpecError("DATASET_NOT_FOUND", f"no ImageFolder dataset (with train/) at {data}")
        return data
    if data.is_dir():
        data = data / "data.yaml"
    if not data.is_file():
        raise SpecError("DATASET_NOT_FOUND", f"no data.yaml at {spec.data}")
    return data


def model_source(spec: JobSpec) -> str:
    """What `YOLO()` loads: the resume checkpoint, the checkpoint to fine-tune from (it carries its
    architecture; `train()` then starts a new run from its weights), a local checkpoint, else an
    architecture yaml."""
    for label, path in (("resume_from", spec.resume_from), ("pretrained_weights", spec.pretrained_weights)):
        if path is not None and not path.is_file():
            raise SpecError("INVALID_CONFIG", f"{label} {path} is not a local file")
    if spec.resume_from is not None:
        return str(spec.resume_from)
    if spec.pretrained_weights is not None:
        return str(spec.pretrained_weights)
    if spec.model.endswith((".pt", ".pth")) or os.sep in spec.model:
        if not Path(spec.model).is_file():  # a bare "yolo11n.pt" would make Ultralytics download it
            raise SpecError("INVALID_CONFIG", f"model {spec.model} is not a local file (weights are never downloaded)")
        return spec.model
    if spec.model_yaml:
        return spec.model_yaml
    stem, suffix = spec.model.removesuffix(".yaml"), TASK_SUFFIX[spec.task_type]
    return f"{stem}{'' if stem.endswith(suffix) else suffix}.yaml"


def train_arguments(spec: JobSpec, data: Path, cuda: bool) -> dict[str, Any]:
    """`model.train()` keyword arguments: the job's `train_kwargs` plus what the runner manages."""
    args: dict[str, Any] = {"verbose": False, "device": "0" if cuda else "cpu"}
    args.update((k, v) for k, v in spec.train_kwargs.items() if k not in MANAGED)
    if "," in str(args["device"]):  # DDP trains in subprocesses where these callbacks never run
        raise SpecError("INVALID_CONFIG", "multi-GPU (DDP) training is not supported; give one device")
    args.update(data=str(data), plots=False, save=True)  # plots would fetch fonts; checkpoints are the product
    if spec.resume_from is not None:
        # Ultralytics takes the rest from the checkpoint; only the data and output paths are this machine's.
        args.update(resume=str(spec.resume_from), save_dir=str(spec.work_dir / "train"))
    else:
        args.update(project=str(spec.work_dir), name="train", exist_ok=True)
    return args


def error_code(exc: BaseException, phase: Phase) -> JobErrorCode:
    """Map an exception from `model.train()` to a job error code, by type and by how far training got."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, MemoryError) or "out of memory" in str(e).lower() for e in chain):
        return "OOM"  # torch.cuda.OutOfMemoryError says so too, and needs no torch import here
    if phase == "config":  # get_cfg rejects unknown keys (SyntaxError), bad types and values
        return "INVALID_CONFIG"
    if any(isinstance(e, FileNotFoundError) or str(e).startswith("Dataset '") for e in chain):
        return "DATASET_NOT_FOUND"
    if phase == "data" and isinstance(exc, ValueError | SyntaxError | TypeError | KeyError | AssertionError):
        return "INVALID_CONFIG"
    return "TRAINER_CRASHED"


class _ForwardLogs(logging.Handler):
    """Ultralytics' log records (not its progress bars, which go to stderr) as user-visible log lines."""

    def __init__(self, ctx: TrainerContext) -> None:
        super().__init__(logging.INFO)
        self.ctx = ctx

    def emit(self, record: logging.LogRecord) -> None:
        text = _ANSI.sub("", record.getMessage()).strip()
        if text:
            no = record.levelno
            level: LogLevel = "error" if no >= logging.ERROR else "warning" if no >= logging.WARNING else "info"
            self.ctx.log(level, text)


class UltralyticsPlugin:
    """Trains `spec` with Ultralytics and ends the attempt with exactly one Finished or Failed."""

    name = "ultralytics"

    def preload(self, scratch: Path) -> None:
        """In a spare child: the offline environment (settings under `scratch`) and the heavy imports."""
        use_offline_environment(scratch)
        for module in PRELOAD:
            importlib.import_module(module)
        no_amp_check_download()

    def train(self, ctx: TrainerContext, spec: JobSpec) -> None:
        deadline = time.monotonic() + spec.time_limit_seconds if spec.time_limit_seconds else None
        use_offline_environment(spec.work_dir)
        reporter, source = Reporter(ctx, spec.work_dir, deadline), spec.model
        try:
            data, source = resolve_data(spec), model_source(spec)
            import torch
            from ultralytics.models import YOLO

            no_amp_check_download()
            args = train_arguments(spec, data, torch.cuda.is_available())
            ignored = sorted(MANAGED & spec.train_kwargs.keys())
            if ignored:
                ctx.log("warning", f"train_kwargs {ignored} are set by the runner and were ignored")
            model = YOLO(source, task=spec.task_type)
            print(f"vtp: model {source} built {time.monotonic() - reporter.created:.2f} s after train() began")
        except SpecError as exc:
            ctx.fail(exc.code, str(exc), 0)
            return
        except Exception as exc:  # an unknown architecture, unreadable weights
            traceback.print_exc()
            ctx.fail(error_code(exc, "config"), f"cannot build model {source!r}: {exc}", 0)
            return
        for event, callback in reporter.callbacks().items():
            model.add_callback(event, callback)
        forward = _ForwardLogs(ctx)
        logging.getLogger("ultralytics").addHandler(forward)
        try:
            model.train(**args)
        except StopTraining as stop:
            self._stopped(ctx, stop, reporter.completed, spec.time_limit_seconds)
            return
        except Exception as exc:
            traceback.print_exc()  # the full story goes to the child's stderr (the runner's log file)
            ctx.fail(error_code(exc, reporter.phase), f"{type(exc).__name__}: {exc}", reporter.completed)
            return
        finally:
            logging.getLogger("ultralytics").removeHandler(forward)
        ctx.finished("completed", last_epoch=reporter.completed)

    @staticmethod
    def _stopped(ctx: TrainerContext, stop: StopTraining, completed: int, limit: float | None) -> None:
        if stop.reason == "timeout":
            ctx.fail("TIMEOUT", f"time limit of {limit:g} s reached after {completed} epochs", completed)
        else:
            ctx.finished("cancelled" if stop.reason == "cancel" else "stopped_for_requeue", last_epoch=completed)
