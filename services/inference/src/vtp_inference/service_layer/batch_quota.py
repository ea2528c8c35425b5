"""A batch that ends failed or cancelled gives the images it never processed back to its quotas, once.

A submission takes all its images from the deployment's and the key's image quotas and records
the windows it took them from (`quota_windows`). The terminal transition, taken once (fenced by the
worker's lease, or under the row's lock for a cancel and the watchdog), sets `quota_owed`. After its
commit the images go back (`settle`) under the row's lock, so another replica skips the row, with a
Redis step that gives nothing twice for one batch (a retry after a crash between Redis and the
database), to each window that is still current (a day or month that ended keeps its count). What
could not be given back (Redis away) stays owed and every replica's watchdog retries it (`sweep`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from redis.exceptions import RedisError

from vtp_inference.adapters.batch_repository import BatchRepository
from vtp_inference.domain.limits import still_current
from vtp_inference.service_layer import batch_metrics
from vtp_inference.service_layer.unit_of_work import NewUow

_log = logging.getLogger(__name__)


class QuotaReturns(Protocol):
    async def give_back(self, batch_id: uuid.UUID, windows: Sequence[str], images: int) -> bool: ...


async def give_back(new_uow: NewUow, quota: QuotaReturns, ids: list[uuid.UUID] | None = None) -> dict[uuid.UUID, int]:
    """Settle what the ended batches (`ids`, or any) owe: {batch id: images returned}. Raises if Redis does."""
    done: dict[uuid.UUID, int] = {}
    async with new_uow() as uow:
        repo = BatchRepository(uow.session)
        now = datetime.now(UTC)
        for batch in await repo.owing(ids):
            current = [w for w in batch.quota_windows if still_current(w, now)]
            if current and await quota.give_back(batch.id, current, batch.quota_owed):
                batch_metrics.images_returned(batch.deployment_id, batch.quota_owed)
            done[batch.id] = batch.quota_owed if current else 0
            await repo.returned(batch.id, done[batch.id])
        await uow.commit()
    return done


async def settle(new_uow: NewUow, quota: QuotaReturns | None, batch_id: uuid.UUID) -> int | None:
    """Right after a batch ended: the images it gave back, or None (none owed, or left to the watchdog)."""
    if quota is None:
        return None
    try:
        return (await give_back(new_uow, quota, [batch_id])).get(batch_id)
    except (RedisError, OSError, TimeoutError) as exc:  # still owed: the watchdog gives them back
        _log.warning("batch %s: images not given back to the quotas yet: %s", batch_id, exc)
        return None


async def sweep(new_uow: NewUow, quota: QuotaReturns | None) -> int:
    """The watchdog's turn: settle any ended batch that still owes images (a lost worker's, a crash's)."""
    if quota is None:
        return 0
    try:
        return len(await give_back(new_uow, quota))
    except (RedisError, OSError, TimeoutError) as exc:
        _log.warning("owed batch images not given back yet: %s", exc)
        return 0
