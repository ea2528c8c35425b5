"""One export attempt on this worker: prepare, run the child, upload the package, then complete.

The worker holds the attempt through a lease in the export database, renewed every
`export_heartbeat_seconds`. A lease that cannot be renewed means the export was deleted or given
to another worker: the child is killed and nothing is published. A child that dies without a
result (killed, crashed) sends the export back to the group as its next attempt.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from vtp_contracts.events.exports import ExportRequested
from vtp_export.adapters.toolchains import Toolchains
from vtp_export.domain.formats import precision
from vtp_export.service_layer import lifecycle
from vtp_export.service_layer.lifecycle import Outcome
from vtp_export.service_layer.unit_of_work import NewUow
from vtp_export.settings import ExportSettings
from vtp_export.worker import prepare
from vtp_export.worker.prepare import AttemptFailure
from vtp_export.worker.process import ChildProcess
from vtp_runtime.storage import ObjectStore, StorageError

_log = logging.getLogger(__name__)


class ExportAttempt:
    def __init__(
        self,
        cmd: ExportRequested,
        settings: ExportSettings,
        new_uow: NewUow,
        store: ObjectStore,
        toolchains: Toolchains,
    ) -> None:
        self.cmd, self.settings, self.new_uow, self.store, self.toolchains = cmd, settings, new_uow, store, toolchains
        self.owner = settings.exporter_id
        self.child: ChildProcess | None = None
        self.lost = False
        self._stage: str | None = None
        root = Path(settings.exporter_work_dir).resolve()
        self.work_dir = root / str(cmd.export_id) / f"attempt-{cmd.attempt}"
        self.cache_dir = root / "datasets"

    async def run(self) -> None:
        began = time.monotonic()
        beat = asyncio.create_task(self._heartbeat())
        try:
            outcome = await self._execute()
        except AttemptFailure as exc:
            outcome = Outcome(False, error_code=exc.code, error_message=str(exc))
        except _ChildDied as exc:
            if not self.lost:
                _log.warning("export %s attempt %d: %s; requeueing", self.cmd.export_id, self.cmd.attempt, exc)
                await lifecycle.requeue_held(
                    self.new_uow,
                    self.cmd.export_id,
                    self.cmd.attempt,
                    self.owner,
                    str(exc),
                    self.settings.export_max_attempts,
                )
            return
        finally:
            beat.cancel()
            if self.child is not None:
                await self.child.close()
        if self.lost:
            _log.info("export %s attempt %d: lease lost (deleted or taken over)", self.cmd.export_id, self.cmd.attempt)
            return
        outcome.timings["total_seconds"] = round(time.monotonic() - began, 3)
        if await lifecycle.complete(self.new_uow, self.cmd.export_id, self.cmd.attempt, self.owner, outcome):
            shutil.rmtree(self.work_dir.parent, ignore_errors=True)  # a lost lease keeps it for a post-mortem

    async def _execute(self) -> Outcome:
        timings: dict[str, float] = {}
        await self._enter("exporting")
        t = time.monotonic()
        weights = await prepare.checkpoint(self.cmd, self.store, self.work_dir / "checkpoint.pt")
        data = await prepare.dataset(self.cmd, self.store, self.cache_dir, self.settings.exporter_cache_max_bytes)
        timings["prepare_seconds"] = round(time.monotonic() - t, 3)
        if self.lost:
            return Outcome(False)
        python = self.toolchains.python_for(self.cmd.format)
        self.child = await ChildProcess.start(python, self._spec(weights, data), self.work_dir)
        result: dict[str, Any] | None = None
        async for report in self.child.reports():
            if "stage" in report:
                await self._enter(str(report["stage"]))
            elif "result" in report:
                result = report["result"]
        code = await self.child.wait()
        if self.lost:
            return Outcome(False)
        if result is None:
            raise _ChildDied(f"exporter child (pid {self.child.pid}) ended with status {code} and no result")
        timings.update(result.get("timings", {}))
        if not result.get("ok"):
            return Outcome(
                False,
                parity=result.get("parity"),
                metadata=result.get("metadata", {}),
                error_code=str(result.get("code", "EXPORT_FAILED")),
                error_message=str(result.get("message", ""))[:4000],
                timings=timings,
            )
        t = time.monotonic()
        artifact = await self._upload(Path(result["package"]))
        timings["upload_seconds"] = round(time.monotonic() - t, 3)
        return Outcome(True, artifact, result.get("parity"), result.get("metadata", {}), timings=timings)

    def _spec(self, weights: Path, data: Path) -> dict[str, Any]:
        cmd, s = self.cmd, self.settings
        level = precision(cmd.options)
        return {
            "export_id": str(cmd.export_id),
            "job_id": str(cmd.job_id),
            "version": cmd.version,
            "format": cmd.format,
            "task_type": cmd.task_type,
            "options": {k: v for k, v in cmd.options.items() if k != "debug_perturb"},
            "debug_perturb": cmd.options.get("debug_perturb"),
            "checkpoint": str(weights),
            "checkpoint_info": {"sha256": cmd.checkpoint.sha256, "kind": cmd.checkpoint_kind},
            "snapshot_id": str(cmd.snapshot_id),
            "data_dir": str(data),
            "parity_images": s.export_parity_images,
            "parity_conf": s.export_parity_conf,
            "precision": level,
            "tolerances": s.export_parity_tolerances.get(level, s.export_parity_tolerances["fp32"]),
            "out_dir": str(self.work_dir / "out"),
        }

    async def _upload(self, package: Path) -> dict[str, Any]:
        """Upload the package first: export.completed announces only what is already stored."""
        sha256, size = await asyncio.to_thread(prepare.digest_and_size, package)
        key = f"exports/{self.cmd.project_id}/{self.cmd.export_id}/attempt-{self.cmd.attempt}/{package.name}"
        try:
            info = await self.store.put_file(key, package, content_type="application/zip")
        except StorageError as exc:
            raise AttemptFailure("STORAGE_FAILED", f"package upload failed: {exc}") from exc
        return {"uri": info.uri, "sha256": sha256, "size_bytes": size}

    async def _enter(self, stage: str) -> None:
        if stage == self._stage or self.lost:
            return
        self._stage = stage
        if not await lifecycle.enter_stage(self.new_uow, self.cmd.export_id, self.cmd.attempt, self.owner, stage):
            self._lose()

    async def _heartbeat(self) -> None:
        s = self.settings
        while True:
            await asyncio.sleep(s.export_heartbeat_seconds)
            try:
                held = await lifecycle.renew(
                    self.new_uow, self.cmd.export_id, self.cmd.attempt, self.owner, s.export_lease_seconds
                )
            except Exception as exc:  # a database blip: the lease outlives a few missed beats
                _log.warning("export %s: lease renewal failed: %s", self.cmd.export_id, exc)
                continue
            if not held:
                self._lose()
                return

    def _lose(self) -> None:
        self.lost = True
        if self.child is not None:
            self.child.kill()


class _ChildDied(Exception):
    pass
