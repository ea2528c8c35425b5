"""Outbox and processed-events tables.

Revision ID: 0001
Revises:
"""

from alembic import op

from vtp_runtime.db.delivery_tables import create_delivery_tables, drop_delivery_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_delivery_tables(op)


def downgrade() -> None:
    drop_delivery_tables(op)
