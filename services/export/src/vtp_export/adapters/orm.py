"""Tables of the export database."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from vtp_runtime.db.delivery_tables import add_delivery_tables

metadata = sa.MetaData()
outbox, processed_events = add_delivery_tables(metadata)

exports = sa.Table(
    "exports",
    metadata,
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
    sa.Index("ix_exports_project_job", "project_id", "job_id"),
    # Content addressing: one live export per (project, checkpoint, format, options); a failed one may be retried.
    sa.Index(
        "ux_exports_content",
        "project_id",
        "content_key",
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL AND status <> 'failed'"),
    ),
    # Per job: version numbers are unique and at most one default.
    sa.Index("ux_exports_job_version", "job_id", "version", unique=True),
    sa.Index("ux_exports_job_default", "job_id", unique=True, postgresql_where=sa.text("is_default")),
    sa.Index("ix_exports_lease", "status", "lease_expires_at"),
)
