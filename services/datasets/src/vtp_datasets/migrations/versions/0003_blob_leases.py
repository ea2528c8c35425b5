"""Blob leases: keys an upload is writing, kept from the orphan sweep until its rows commit.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_leases",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("object_keys", ARRAY(sa.Text), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blob_leases")
