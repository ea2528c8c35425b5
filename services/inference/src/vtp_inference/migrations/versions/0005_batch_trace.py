"""Batches remember the trace context of the request that submitted them, so that an attempt the
lease watchdog resumes goes on in that trace instead of starting a new one.

Revision ID: 0005_batch_trace
Revises: 0004_batches
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_batch_trace"
down_revision = "0004_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("batches", sa.Column("traceparent", sa.String(55), nullable=True))
    op.add_column("batches", sa.Column("tracestate", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("batches", "tracestate")
    op.drop_column("batches", "traceparent")
