"""Tables of the notifier database (webhook tables: :mod:`vtp_notifier.adapters.webhook_tables`)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from vtp_runtime.db.delivery_tables import add_delivery_tables

metadata = sa.MetaData()
outbox, processed_events = add_delivery_tables(metadata)

# Every public event once (by event id), in arrival order: the history `since=` replays.
feed_events = sa.Table(
    "feed_events",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("project_id", UUID(as_uuid=True), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("job_id", UUID(as_uuid=True), nullable=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data", JSONB, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Index("ix_feed_events_project_seq", "project_id", "seq"),
    sa.Index("ix_feed_events_job_seq", "job_id", "seq"),
    sa.Index("ix_feed_events_received_at", "received_at"),
)

# The webhook tables join this metadata when their module is imported; import it here so that whoever
# reads the metadata (Alembic's env, the schema-drift test) sees every table, not only these.
from vtp_notifier.adapters import webhook_tables as _webhook_tables  # noqa: E402, F401
