"""Deployments: one export served under a project-unique name.

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
        "deployments",
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
        sa.Column("error_code", sa.String(50), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ux_deployments_name",
        "deployments",
        ["project_id", "name"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index("ix_deployments_status", "deployments", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_table("deployments")
