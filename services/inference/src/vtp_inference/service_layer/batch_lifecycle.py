"""Batch state changes, each one transaction with the event it announces (transactional outbox).
Every attempt's command is staged in the trace the batch was submitted in, the watchdog's too."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from vtp_contracts.catalog import BATCH_COMPLETED, BATCH_PROGRESS, BATCH_REQUESTED
from vtp_contracts.events.batches import BatchCompleted, BatchProgress, BatchRequested
from vtp_inference.adapters.batch_repository import BatchRepository, lease_end
from vtp_inference.domain.batches import (
    FINISHED,
    Batch,
    BatchFinished,
    BatchNotFound,
    BatchStatus,
    Reader,
    unprocessed,
)
from vtp_inference.service_layer.unit_of_work import InferenceUnitOfWork, NewUow
from vtp_runtime.tracing import CURRENT, adopted, new_trace, parse

_log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def requested(batch: Batch, now: datetime) -> BatchRequested:
    return BatchRequested(
        batch_id=batch.id,
        project_id=batch.project_id,
        deployment_id=batch.deployment_id,
        attempt=batch.attempt,
        occurred_at=now,
    )


async def submit(new_uow: NewUow, batch: Batch) -> Batch:
    trace = CURRENT.get() or new_trace()  # the submitting request's span (a batch outside one: a new trace)
    batch.traceparent, batch.tracestate = trace.traceparent, trace.tracestate
    async with new_uow() as uow:
        await BatchRepository(uow.session).add(batch)
        with adopted(trace):
            await uow.publish(BATCH_REQUESTED, requested(batch, batch.created_at))
        await uow.commit()
    return batch


async def get(new_uow: NewUow, reader: Reader, deployment_id: uuid.UUID, batch_id: uuid.UUID) -> Batch:
    """The batch, if `reader` may see it: BatchNotFound for a missing one and another key's alike."""
    async with new_uow() as uow:
        found = await BatchRepository(uow.session).get(reader, deployment_id, batch_id)
    if found is None:
        raise BatchNotFound(str(batch_id))
    return found


async def of_deployment(
    new_uow: NewUow, reader: Reader, deployment_id: uuid.UUID, limit: int, status: str | None
) -> list[Batch]:
    async with new_uow() as uow:
        return await BatchRepository(uow.session).of_deployment(reader, deployment_id, limit, status)


async def cancel(new_uow: NewUow, reader: Reader, deployment_id: uuid.UUID, batch_id: uuid.UUID) -> Batch:
    """A queued batch ends now; a running one at its worker's next chunk boundary."""
    async with new_uow() as uow:
        repo = BatchRepository(uow.session)
        batch = await repo.get(reader, deployment_id, batch_id, lock=True)
        if batch is None:
            raise BatchNotFound(str(batch_id))
        if batch.status in FINISHED:
            raise BatchFinished(f"the batch already {batch.status}")
        batch.cancel_requested = True
        if batch.status == BatchStatus.QUEUED:
            await _end(uow, batch, BatchStatus.CANCELLED)
        await repo.save(batch)
        await uow.commit()
    return batch


async def claim(new_uow: NewUow, batch_id: uuid.UUID, attempt: int, owner: str, lease_s: float) -> Batch | None:
    async with new_uow() as uow:
        now = _now()
        batch = await BatchRepository(uow.session).claim(batch_id, attempt, owner, lease_end(now, lease_s), now)
        await uow.commit()
    return batch


async def renew(new_uow: NewUow, batch: Batch, owner: str, lease_s: float) -> bool:
    async with new_uow() as uow:
        held = await BatchRepository(uow.session).renew(batch.id, batch.attempt, owner, lease_end(_now(), lease_s))
        await uow.commit()
    return held


async def record_chunk(
    new_uow: NewUow, batch: Batch, owner: str, index: int, processed: int, failed: int
) -> Batch | None:
    """Chunk `index` is stored: count it and move the resume point past it, with its progress event.

    None when this worker no longer holds the batch (its chunk object is then rewritten by the new
    holder, never counted twice)."""
    async with new_uow() as uow:
        repo = BatchRepository(uow.session)
        current = await repo.held(batch.id, batch.attempt, owner)
        if current is None or current.chunks_done != index:
            return None
        current.chunks_done = index + 1
        current.processed_images += processed
        current.failed_images += failed
        await repo.save(current)
        await uow.publish(BATCH_PROGRESS, _progress(current))
        await uow.commit()
    return current


async def finish(
    new_uow: NewUow,
    batch: Batch,
    owner: str,
    status: BatchStatus,
    results: dict[str, Any] | None = None,
    error: tuple[str, str] | None = None,
) -> bool:
    """End a held batch (succeeded with its results, failed with its error, or cancelled)."""
    async with new_uow() as uow:
        repo = BatchRepository(uow.session)
        current = await repo.held(batch.id, batch.attempt, owner)
        if current is None:
            return False
        current.results = results or {}
        if error is not None:
            current.error_code, current.error_message = error[0], error[1][:4000]
        await _end(uow, current, status)
        await repo.save(current)
        await uow.commit()
    return True


async def requeue_expired(new_uow: NewUow, max_attempts: int) -> int:
    """Batches whose worker died go back to the group as their next attempt (or fail past the last)."""
    async with new_uow() as uow:
        repo = BatchRepository(uow.session)
        now = _now()
        stale = await repo.expired(now)
        for batch in stale:
            with adopted(parse(batch.traceparent, batch.tracestate)):  # its log line and event: its trace
                _log.warning("batch %s attempt %d: lease of %s expired", batch.id, batch.attempt, batch.owner)
                if batch.attempt >= max_attempts:
                    batch.error_code, batch.error_message = "BATCH_WORKER_LOST", f"{batch.attempt} workers lost it"
                    await _end(uow, batch, BatchStatus.FAILED)
                else:
                    batch.attempt += 1
                    batch.status, batch.owner, batch.lease_until = BatchStatus.QUEUED, None, None
                    await uow.publish(BATCH_REQUESTED, requested(batch, now))
            await repo.save(batch)
        await uow.commit()
    return len(stale)


async def _end(uow: InferenceUnitOfWork, batch: Batch, status: BatchStatus) -> None:
    """The terminal transition (taken once: fenced or under the row's lock), with what the quotas get back."""
    now = _now()
    batch.status, batch.finished_at, batch.owner, batch.lease_until = status, now, None, None
    batch.quota_owed = unprocessed(batch)  # given back after the commit (batch_quota)
    jsonl, coco = batch.results.get("jsonl"), batch.results.get("coco")
    event = BatchCompleted(
        batch_id=batch.id,
        project_id=batch.project_id,
        deployment_id=batch.deployment_id,
        status=status.value,
        total_images=batch.total_images,
        processed_images=batch.processed_images,
        failed_images=batch.failed_images,
        results_uri=jsonl["uri"] if jsonl else None,
        coco_uri=coco["uri"] if coco else None,
        error_code=batch.error_code,
        message=batch.error_message,
        occurred_at=now,
    )
    await uow.publish(BATCH_COMPLETED, event)


def _progress(batch: Batch) -> BatchProgress:
    return BatchProgress(
        batch_id=batch.id,
        project_id=batch.project_id,
        deployment_id=batch.deployment_id,
        attempt=batch.attempt,
        status="running",
        total_images=batch.total_images,
        processed_images=batch.processed_images,
        failed_images=batch.failed_images,
        chunks_done=batch.chunks_done,
        total_chunks=batch.total_chunks,
        occurred_at=_now(),
    )
