"""Usage tables: rolled-up cells (minute, hour, day) and the flushes already applied."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from vtp_inference.adapters.orm import metadata

# key_id NOT NULL so the primary key can take the upsert; NO_KEY stands for "a project token".
usage_buckets = sa.Table(
    "usage_buckets",
    metadata,
    sa.Column("granularity", sa.String(10), primary_key=True),
    sa.Column("project_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("deployment_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("key_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("images", sa.BigInteger, nullable=False),
    sa.Column("errors", JSONB, nullable=False),  # problem code -> count
    sa.Column("latency", JSONB, nullable=False),  # histogram bucket -> count (vtp_inference.domain.usage)
    sa.Column("compute_seconds", sa.Float, nullable=False),
    sa.Column("bytes_in", sa.BigInteger, nullable=False),
    sa.Index("ix_usage_buckets_project", "granularity", "project_id", "bucket_start"),
)

# One row per flush applied: (replica_id, seq) makes a retried flush a no-op.
usage_flushes = sa.Table(
    "usage_flushes",
    metadata,
    sa.Column("replica_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("cells", sa.Integer, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_usage_flushes_applied_at", "applied_at"),
)
