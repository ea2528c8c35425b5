"""Exports: content-addressed per project, versioned per job, with their worker lease.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("project_id", UUID(as_uuid=True), nullable=False),
        sa.Column("job_id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("options", JSONB, nullable=False),
        sa.Column("task_type", sa.String(20), nullable=False),
        sa.Column("checkpoint", JSONB, nullable=False),
        sa.Column("source", JSONB, nullable=False),
        sa.Column("content_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stage", sa.String(20), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("artifact", JSONB, nullable=True),
        sa.Column("parity", JSONB, nullable=True),
        sa.Column("package_metadata", JSONB, nullable=False),
        sa.Column("error_code", sa.String(50), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("timings", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_exports_project_job", "exports", ["project_id", "job_id"])
    op.create_index(
        "ux_exports_content",
        "exports",
        ["project_id", "content_key"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL AND status <> 'failed'"),
    )
    op.create_index("ux_exports_job_version", "exports", ["job_id", "version"], unique=True)
    op.create_index(
        "ux_exports_job_default", "exports", ["job_id"], unique=True, postgresql_where=sa.text("is_default")
    )
    op.create_index("ix_exports_lease", "exports", ["status", "lease_expires_at"])


def downgrade() -> None:
    op.drop_table("exports")
