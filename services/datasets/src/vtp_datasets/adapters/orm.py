"""Tables of the datasets database."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from vtp_runtime.db.delivery_tables import add_delivery_tables

metadata = sa.MetaData()
outbox, processed_events = add_delivery_tables(metadata)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("project_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("head_version", sa.Integer, nullable=False),
    sa.Column("split_config", JSONB, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("dataset_id", UUID(as_uuid=True), sa.ForeignKey("datasets.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("tasks", JSONB, nullable=False),
    sa.Column("image_count", sa.Integer, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("statistics", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("dataset_id", UUID(as_uuid=True), sa.ForeignKey("datasets.id"), nullable=False, index=True),
    sa.Column("project_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("version_tag", sa.String(100), nullable=False),
    sa.Column("version_number", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("split_fingerprint", sa.String(64), nullable=False),
    sa.Column("split_config", JSONB, nullable=False),
    sa.Column("tasks", JSONB, nullable=False),
    sa.Column("image_count", sa.Integer, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("statistics", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("dataset_id", "version_tag", name="uq_snapshot_tag"),
    sa.UniqueConstraint("dataset_id", "content_hash", "split_fingerprint", name="uq_snapshot_content"),
)

# Keys an upload is about to write or reuse, taken before it checks or stores them and dropped
# once its rows commit: the orphan sweep never deletes a leased key (service_layer/blob_gc.py).
blob_leases = sa.Table(
    "blob_leases",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("object_keys", ARRAY(sa.Text), nullable=False),
)
