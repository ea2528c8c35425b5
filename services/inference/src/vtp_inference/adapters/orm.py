"""Tables of the inference database."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from vtp_runtime.db.delivery_tables import add_delivery_tables

metadata = sa.MetaData()
outbox, processed_events = add_delivery_tables(metadata)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("project_id", UUID(as_uuid=True), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("export_id", UUID(as_uuid=True), nullable=False),
    sa.Column("export_version", sa.Integer, nullable=True),
    sa.Column("task_type", sa.String(20), nullable=False),
    sa.Column("runtime", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("conf", sa.Float, nullable=False),
    sa.Column("iou", sa.Float, nullable=False),
    sa.Column("max_det", sa.Integer, nullable=False),
    sa.Column("model", JSONB, nullable=True),
    sa.Column("model_meta", JSONB, nullable=False),
    sa.Column("previous", JSONB, nullable=True),  # export_id, export_version, model, model_meta before a switch
    sa.Column("canary", JSONB, nullable=True),  # a traffic split's second export, with its weight (0004_traffic)
    sa.Column("error_code", sa.String(50), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    # A name is the model name of the Open Inference Protocol: unique among a project's live deployments.
    sa.Index("ux_deployments_name", "project_id", "name", unique=True, postgresql_where=sa.text("deleted_at IS NULL")),
    sa.Index("ix_deployments_status", "status", "updated_at"),
)

# Feature tables register on `metadata` in their own modules; importing them here makes it whole
# for whoever reads it (the migrations' env, the schema drift test).
from vtp_inference.adapters import orm_batches, orm_keys, orm_usage  # noqa: E402, F401
