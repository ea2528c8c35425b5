"""The trainer plugin contract and the registry of installed plugins (one module per framework).

A plugin runs inside the child process (`child.py`). Its module must import its framework lazily,
inside `train()` (or `preload()`): the runner imports this registry too, and must not pay for (or
need) torch.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Protocol

from vtp_trainer_runner.plugins.ultralytics import UltralyticsPlugin
from vtp_trainer_runner.sdk import TrainerContext
from vtp_trainer_runner.spec import JobSpec


class TrainerPlugin(Protocol):
    """Trains one attempt; reports through `ctx` and ends it with `ctx.finished()` or `ctx.fail()`.

    A plugin may also have `preload(scratch: Path) -> None`: a spare child calls it before its job is
    known, to import the framework (and whatever else `train()` would load) ahead of time.
    """

    name: str

    def train(self, ctx: TrainerContext, spec: JobSpec) -> None: ...


PLUGINS: dict[str, TrainerPlugin] = {plugin.name: plugin for plugin in (UltralyticsPlugin(),)}


def get_plugin(name: str) -> TrainerPlugin:
    """The plugin for a job's `framework`; `KeyError` names the installed ones."""
    try:
        return PLUGINS[name]
    except KeyError:
        raise KeyError(f"no trainer plugin {name!r}; installed: {sorted(PLUGINS)}") from None


def preload_plugins(scratch: Path) -> None:
    """Every installed plugin's optional `preload(scratch)`; a failure is printed, never raised."""
    for plugin in PLUGINS.values():
        preload = getattr(plugin, "preload", None)
        if preload is None:
            continue
        try:
            preload(scratch)
        except Exception:  # train() meets the same problem again and reports it as the attempt's failure
            traceback.print_exc()
