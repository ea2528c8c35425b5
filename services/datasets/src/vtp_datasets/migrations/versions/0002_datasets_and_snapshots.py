"""Datasets, their versions and snapshots.

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
        "datasets",
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
    op.create_table(
        "dataset_versions",
        sa.Column("dataset_id", UUID(as_uuid=True), sa.ForeignKey("datasets.id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("tasks", JSONB, nullable=False),
        sa.Column("image_count", sa.Integer, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("statistics", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "snapshots",
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


def downgrade() -> None:
    op.drop_table("snapshots")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
