"""Tables of webhook subscriptions, their deliveries and every try (on the shared metadata)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from vtp_notifier.adapters.orm import metadata

webhook_subscriptions = sa.Table(
    "webhook_subscriptions",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("project_id", UUID(as_uuid=True), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("event_types", ARRAY(sa.String(200)), nullable=False),  # empty: every feed topic
    sa.Column("job_ids", ARRAY(UUID(as_uuid=True)), nullable=False),  # empty: every job
    sa.Column("description", sa.String(500), nullable=True),
    sa.Column("secret_ciphertext", sa.LargeBinary, nullable=False),  # AES-GCM: signing needs the raw secret
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.String(500), nullable=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_webhook_subscriptions_project", "project_id", "created_at"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("subscription_id", UUID(as_uuid=True), sa.ForeignKey("webhook_subscriptions.id"), nullable=False),
    sa.Column("project_id", UUID(as_uuid=True), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the exact bytes every try posts and signs
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempt_count", sa.Integer, nullable=False, server_default="0"),
    # When the row is next due: its retry time while pending, its lease's end while delivering
    # (a replica that died mid-try leaves the row due again, so it is tried again: at least once).
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("redelivery_of", UUID(as_uuid=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index(
        "uq_webhook_deliveries_event",
        "subscription_id",
        "event_id",
        unique=True,
        postgresql_where=sa.text("redelivery_of IS NULL"),
    ),
    sa.Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=sa.text("status IN ('pending', 'delivering')"),
    ),
    sa.Index("ix_webhook_deliveries_subscription", "subscription_id", "created_at"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("delivery_id", UUID(as_uuid=True), sa.ForeignKey("webhook_deliveries.id"), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("response_excerpt", sa.Text, nullable=True),  # at most 1 KB of the answer
)
