"""Batch inference jobs: one row per batch, its lease and the last chunk of results it recorded.

Revision ID: 0004_batches
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0004_batches"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("project_id", UUID(as_uuid=True), nullable=False),
        sa.Column("deployment_id", UUID(as_uuid=True), nullable=False),
        sa.Column("key_id", UUID(as_uuid=True), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("task_type", sa.String(20), nullable=False),
        sa.Column("source", JSONB, nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("total_images", sa.Integer, nullable=False),
        sa.Column("chunk_size", sa.Integer, nullable=False),
        sa.Column("chunks_done", sa.Integer, nullable=False),
        sa.Column("processed_images", sa.Integer, nullable=False),
        sa.Column("failed_images", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("results", JSONB, nullable=False),
        sa.Column("error_code", sa.String(100), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_batches_project", "batches", ["project_id", "deployment_id", "created_at"])
    op.create_index("ix_batches_status_lease", "batches", ["status", "lease_until"])


def downgrade() -> None:
    op.drop_table("batches")
