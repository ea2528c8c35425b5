"""Tables of the jobs database."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from vtp_runtime.db.delivery_tables import add_delivery_tables

metadata = sa.MetaData()
outbox, processed_events = add_delivery_tables(metadata)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("project_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("framework", sa.String(50), nullable=False),
    sa.Column("task_type", sa.String(20), nullable=False),
    sa.Column("model", sa.String(500), nullable=False),
    sa.Column("dataset_id", UUID(as_uuid=True), nullable=False),
    sa.Column("snapshot_id", UUID(as_uuid=True), nullable=False),
    sa.Column("split", JSONB, nullable=True),
    sa.Column("snapshot_content_hash", sa.String(64), nullable=True),
    sa.Column("split_fingerprint", sa.String(64), nullable=True),
    sa.Column("base_checkpoint", JSONB, nullable=True),
    sa.Column("config", JSONB, nullable=False),
    sa.Column("advanced_config", JSONB, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("runner_id", sa.String(200), nullable=True),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("total_epochs", sa.Integer, nullable=True),
    sa.Column("latest_metrics", JSONB, nullable=False),
    sa.Column("best_metrics", JSONB, nullable=False),
    sa.Column("best_epoch", sa.Integer, nullable=True),
    sa.Column("eta_seconds", sa.Float, nullable=True),
    sa.Column("checkpoints", JSONB, nullable=False),
    sa.Column("error_code", sa.String(50), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("last_good_epoch", sa.Integer, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
)

# One row per (job, attempt, epoch): redelivered progress lands on the same row.
job_epochs = sa.Table(
    "job_epochs",
    metadata,
    sa.Column("job_id", UUID(as_uuid=True), sa.ForeignKey("jobs.id"), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),
    sa.Column("total_epochs", sa.Integer, nullable=False),
    sa.Column("train_losses", JSONB, nullable=False),
    sa.Column("val_metrics", JSONB, nullable=False),
    sa.Column("learning_rate", sa.Float, nullable=True),
    sa.Column("epoch_seconds", sa.Float, nullable=True),
    sa.Column("gpu_memory_mb", sa.Float, nullable=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

job_logs = sa.Table(
    "job_logs",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("job_id", UUID(as_uuid=True), sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_job_logs_job_time", "job_id", "time"),
)
