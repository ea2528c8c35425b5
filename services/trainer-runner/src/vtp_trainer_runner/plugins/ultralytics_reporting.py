"""Ultralytics callbacks: epoch progress, checkpoint hand-over, and stopping at batch boundaries.

Ultralytics' trainer is duck-typed here (`Any`): it has no type hints, and only a handful of its
attributes are read (epoch, epochs, start_epoch, tloss, metrics, lr, epoch_time, last, best,
fitness, best_fitness, save_model).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from itertools import count
from pathlib import Path
from typing import Any, Literal

from vtp_trainer_runner.sdk import TrainerContext, clean_metrics

StopReason = Literal["cancel", "requeue", "timeout"]
Phase = Literal["config", "data", "train"]
_SUFFIX_PREFIX = {"B": "", "M": "mask_", "P": "pose_"}  # box, mask, pose metrics of segment/pose models
_RENAMES = {"accuracy_top1": "top1", "accuracy_top5": "top5"}


class StopTraining(Exception):
    """Raised from a callback to leave `model.train()` at once: no final validation, no optimizer stripping."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason)
        self.reason: StopReason = reason


def metric_name(key: str) -> str:
    """`metrics/mAP50(B)` -> `mAP50`, `metrics/mAP50(M)` -> `mask_mAP50`, `train/box_loss` -> `box_loss`."""
    name = key.rsplit("/", 1)[-1]
    if match := re.fullmatch(r"(.+)\(([A-Z])\)", name):
        name = _SUFFIX_PREFIX.get(match[2], f"{match[2].lower()}_") + match[1]
    return _RENAMES.get(name, name)


def normalize(values: Mapping[str, Any] | None) -> dict[str, float]:
    return clean_metrics({metric_name(k): v for k, v in (values or {}).items()})


def _gpu_memory_mb(reset: bool = False) -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    if reset:
        torch.cuda.reset_peak_memory_stats()
        return None
    return float(torch.cuda.max_memory_allocated()) / 2**20


class Reporter:
    """Callbacks for one `model.train()`; `completed` counts finished epochs (resumed ones included)."""

    def __init__(self, ctx: TrainerContext, work_dir: Path, deadline: float | None) -> None:
        self.ctx, self.deadline = ctx, deadline
        self.snapshots = work_dir / "checkpoints"
        self.completed = 0
        self.phase: Phase = "config"
        self.created = self._started_at = time.monotonic()
        self._first_epoch = 0
        # Ultralytics saves before its epoch-end callback; checkpoints are announced after the epoch's
        # progress, so a runner lost in between never leaves a checkpoint whose epoch has no metrics.
        self._pending: list[tuple[str, Path, int, dict[str, float]]] = []

    def callbacks(self) -> dict[str, Callable[[Any], None]]:
        return {
            "on_pretrain_routine_start": self._on_pretrain_start,
            "on_train_start": self._on_train_start,
            "on_train_epoch_start": self._on_epoch_start,
            "on_train_batch_end": self._on_batch_end,
            "on_model_save": self._on_model_save,
            "on_fit_epoch_end": self._on_fit_epoch_end,
        }

    def _on_pretrain_start(self, _trainer: Any) -> None:
        self.phase = "data"  # arguments were accepted; the dataset is checked next

    def _on_train_start(self, trainer: Any) -> None:
        self.phase = "train"
        self.completed = self._first_epoch = int(trainer.start_epoch)
        now = time.monotonic()
        print(f"vtp: model and data set up {now - self._started_at:.2f} s after train() began", flush=True)
        self._started_at = now

    def _on_epoch_start(self, trainer: Any) -> None:
        _gpu_memory_mb(reset=True)
        self._check_stop(trainer, save=False)  # the last epoch's checkpoint is already current

    def _on_batch_end(self, trainer: Any) -> None:
        self._check_stop(trainer, save=True)

    def _on_model_save(self, trainer: Any) -> None:
        epoch, metrics = int(trainer.epoch) + 1, normalize(trainer.metrics)
        self._pending.append(("last", self._snapshot(Path(trainer.last), "last", epoch), epoch, metrics))
        # Ultralytics' own rule for writing best.pt in save_model().
        if trainer.best_fitness == trainer.fitness and Path(trainer.best).exists():
            self._pending.append(("best", self._snapshot(Path(trainer.best), "best", epoch), epoch, metrics))

    def _announce_checkpoints(self) -> None:
        pending, self._pending = self._pending, []
        for kind, path, epoch, metrics in pending:
            self.ctx.checkpoint(kind, path, epoch, metrics)  # type: ignore[arg-type]

    def _on_fit_epoch_end(self, trainer: Any) -> None:
        epoch, total = int(trainer.epoch) + 1, int(trainer.epochs)
        if epoch > total or epoch <= self.completed:  # final validation runs this callback once more
            self._announce_checkpoints()
            return
        self.completed = epoch
        elapsed = time.monotonic() - self._started_at
        per_epoch = elapsed / max(epoch - self._first_epoch, 1)
        lrs = list((getattr(trainer, "lr", None) or {}).values())
        self.ctx.progress(
            epoch=epoch,
            total_epochs=total,
            train_losses=normalize(trainer.label_loss_items(trainer.tloss)) if trainer.tloss is not None else {},
            val_metrics=normalize(trainer.metrics),
            learning_rate=float(lrs[0]) if lrs else None,
            epoch_seconds=float(trainer.epoch_time) if trainer.epoch_time is not None else None,
            eta_seconds=per_epoch * (total - epoch),
            gpu_memory_mb=_gpu_memory_mb(),
        )
        self._announce_checkpoints()
        if epoch < total:  # a stop after the last epoch changes nothing: let it complete
            self._check_stop(trainer, save=False)

    def _check_stop(self, trainer: Any, save: bool) -> None:
        reason: StopReason | None = self.ctx.stop_requested()
        if reason is None and self.deadline is not None and time.monotonic() > self.deadline:
            reason = "timeout"
        if reason is None:
            return
        if save:
            self._save_partial(trainer)
        raise StopTraining(reason)

    def _save_partial(self, trainer: Any) -> None:
        """Save mid-epoch weights as a resumable `last` of the last *finished* epoch.

        A resume then redoes the interrupted epoch from its first batch (Ultralytics resumes at
        epoch boundaries), so no epoch is reported twice. Before any finished epoch there is nothing
        resumable (Ultralytics refuses a checkpoint of epoch -1), so nothing is saved.
        """
        if self.completed == 0:
            return
        saved = trainer.epoch, trainer.best, trainer.save_period
        # best.pt goes to /dev/null: partial weights were never validated, so they are not "best".
        trainer.epoch, trainer.best, trainer.save_period = self.completed - 1, Path(os.devnull), 0
        try:
            trainer.save_model()
        finally:
            trainer.epoch, trainer.best, trainer.save_period = saved
        path = self._snapshot(Path(trainer.last), "last", self.completed)
        self.ctx.checkpoint("last", path, self.completed, normalize(trainer.metrics))

    def _snapshot(self, source: Path, kind: str, epoch: int) -> Path:
        """An immutable copy for the runner: Ultralytics rewrites last.pt/best.pt in place every epoch."""
        self.snapshots.mkdir(parents=True, exist_ok=True)
        for n in count():
            dest = self.snapshots / f"{kind}-epoch{epoch:04d}{f'-{n}' if n else ''}.pt"
            if not dest.exists():
                break
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, dest)  # appears complete or not at all
        return dest
