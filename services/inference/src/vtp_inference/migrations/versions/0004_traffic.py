"""Deployments may split their traffic between the current export and a canary export.

Revision ID: 0004_traffic
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004_traffic"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deployments", sa.Column("canary", JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("deployments", "canary")
