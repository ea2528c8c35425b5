"""The `job.requested` commands the jobs service wrote to its outbox, sent again on demand."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_contracts.catalog import JOB_REQUESTED
from vtp_jobs.adapters.orm import outbox


async def resend_requested(session: AsyncSession, job_id: uuid.UUID, attempt: int) -> bool:
    """Mark the attempt's `job.requested` outbox row unpublished, so the relay sends it again.

    The very same event leaves (same id, same attempt, same resume point): consumers that
    deduplicate by event id see one command. False when the row is gone (pruned after the
    outbox retention) or belongs to another attempt; the caller then stages a fresh command.
    """
    row = (
        await session.execute(
            sa.select(outbox.c.id, outbox.c.payload)
            .where(outbox.c.topic == JOB_REQUESTED.topic, outbox.c.key == str(job_id))
            .order_by(outbox.c.id.desc())
            .limit(1)
        )
    ).first()
    if row is None or json.loads(row.payload).get("attempt") != attempt:
        return False
    await session.execute(sa.update(outbox).where(outbox.c.id == row.id).values(published_at=None))
    return True
