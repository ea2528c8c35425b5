"""Batches remember the quota windows their images were taken from and what they gave back; an
index for an API key's own batches.

Revision ID: 0005_batch_quota
Revises: 0004_batches
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005_batch_quota"
down_revision = "0004_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing batches took from no recorded window and owe nothing; new rows always name all three.
    op.add_column("batches", sa.Column("quota_windows", JSONB, nullable=False, server_default="[]"))
    op.add_column("batches", sa.Column("quota_owed", sa.Integer, nullable=False, server_default="0"))
    op.add_column("batches", sa.Column("quota_returned", sa.Integer, nullable=False, server_default="0"))
    for column in ("quota_windows", "quota_owed", "quota_returned"):
        op.alter_column("batches", column, server_default=None)
    op.create_index("ix_batches_key", "batches", ["key_id", "deployment_id", "created_at"])
    op.create_index("ix_batches_quota_owed", "batches", ["quota_owed"])


def downgrade() -> None:
    op.drop_index("ix_batches_quota_owed", "batches")
    op.drop_index("ix_batches_key", "batches")
    op.drop_column("batches", "quota_returned")
    op.drop_column("batches", "quota_owed")
    op.drop_column("batches", "quota_windows")
