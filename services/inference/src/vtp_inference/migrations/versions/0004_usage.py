"""Usage metering: rolled-up cells per minute, hour and day, and the flushes applied (idempotence).

Revision ID: 0004_usage
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0004_usage"
down_revision = "0003"
branch_labels = None
depends_on = None

# Adds two {"key": count} maps key by key: how a flush merges errors by code and latency buckets.
ADD_COUNTS = """
CREATE OR REPLACE FUNCTION usage_add_counts(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(jsonb_object_agg(k, n), '{}'::jsonb)
  FROM (SELECT k, sum(n) AS n
        FROM (SELECT key AS k, value::text::bigint AS n FROM jsonb_each(a)
              UNION ALL
              SELECT key, value::text::bigint FROM jsonb_each(b)) AS both_maps
        GROUP BY k) AS sums
$$
"""


def upgrade() -> None:
    op.create_table(
        "usage_buckets",
        sa.Column("granularity", sa.String(10), primary_key=True),
        sa.Column("project_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("deployment_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("key_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("images", sa.BigInteger, nullable=False),
        sa.Column("errors", JSONB, nullable=False),
        sa.Column("latency", JSONB, nullable=False),
        sa.Column("compute_seconds", sa.Float, nullable=False),
        sa.Column("bytes_in", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_usage_buckets_project", "usage_buckets", ["granularity", "project_id", "bucket_start"])
    op.create_table(
        "usage_flushes",
        sa.Column("replica_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("cells", sa.Integer, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_usage_flushes_applied_at", "usage_flushes", ["applied_at"])
    op.execute(ADD_COUNTS)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS usage_add_counts(jsonb, jsonb)")
    op.drop_table("usage_flushes")
    op.drop_table("usage_buckets")
