"""Deployments remember the export they served before a switch, for a one-call rollback.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deployments", sa.Column("previous", JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("deployments", "previous")
