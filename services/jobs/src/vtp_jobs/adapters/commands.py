"""The `job.requested` commands the jobs service wrote to its outbox, sent again on demand."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from vtp_contracts.catalog import JOB_REQUESTED
from vtp_jobs.adapters.orm import outbox

# What resending found: sent again; still unpublished (the relay will send it); published too
# recently to judge; or gone (pruned after the outbox retention, or another attempt's).
ResendOutcome = Literal["sent", "pending", "recent", "missing"]


async def resend_requested(
    session: AsyncSession, job_id: uuid.UUID, attempt: int, sent_before: datetime
) -> ResendOutcome:
    """Mark the attempt's `job.requested` outbox row unpublished, so the relay sends it again.

    The very same event leaves (same id, same attempt, same resume point): consumers that
    deduplicate by event id see one command. Only a command published before `sent_before` is
    resent: one the relay published while the caller was checking may be in a runner's hands.
    """
    row = (
        await session.execute(
            sa.select(outbox.c.id, outbox.c.payload, outbox.c.published_at)
            .where(outbox.c.topic == JOB_REQUESTED.topic, outbox.c.key == str(job_id))
            .order_by(outbox.c.id.desc())
            .limit(1)
            .with_for_update()
        )
    ).first()
    if row is None or json.loads(row.payload).get("attempt") != attempt:
        return "missing"
    if row.published_at is None:
        return "pending"
    if row.published_at >= sent_before:
        return "recent"
    await session.execute(sa.update(outbox).where(outbox.c.id == row.id).values(published_at=None))
    return "sent"
