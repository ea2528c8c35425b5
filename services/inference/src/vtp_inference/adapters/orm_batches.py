"""The batches table (migrations 0004_batches, 0005_batch_trace, 0005_batch_quota)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from vtp_inference.adapters.orm import metadata

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("project_id", UUID(as_uuid=True), nullable=False),
    sa.Column("deployment_id", UUID(as_uuid=True), nullable=False),
    sa.Column("key_id", UUID(as_uuid=True), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("task_type", sa.String(20), nullable=False),
    sa.Column("source", JSONB, nullable=False),  # {"kind": "zip", "uri", "sha256", "size_bytes", "files": [...]}
    sa.Column("params", JSONB, nullable=False),  # conf, iou, max_det, classes
    sa.Column("total_images", sa.Integer, nullable=False),
    sa.Column("chunk_size", sa.Integer, nullable=False),
    sa.Column("chunks_done", sa.Integer, nullable=False),  # chunks 0..chunks_done-1 are stored and counted
    sa.Column("processed_images", sa.Integer, nullable=False),
    sa.Column("failed_images", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("owner", sa.String(100), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    sa.Column("results", JSONB, nullable=False),  # {"jsonl": {uri, sha256, size_bytes}, "coco": {...}}
    sa.Column("error_code", sa.String(100), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("traceparent", sa.String(55), nullable=True),  # the submitting request's span; None: older rows
    sa.Column("tracestate", sa.Text, nullable=True),
    sa.Column("quota_windows", JSONB, nullable=False),  # the quota states (Redis keys) its images were taken from
    sa.Column("quota_owed", sa.Integer, nullable=False),  # images to give back, set when it ends unfinished
    sa.Column("quota_returned", sa.Integer, nullable=False),
    sa.Index("ix_batches_project", "project_id", "deployment_id", "created_at"),
    sa.Index("ix_batches_status_lease", "status", "lease_until"),
    sa.Index("ix_batches_key", "key_id", "deployment_id", "created_at"),
    sa.Index("ix_batches_quota_owed", "quota_owed"),
)
