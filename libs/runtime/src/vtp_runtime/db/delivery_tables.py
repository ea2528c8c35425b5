"""The two tables behind reliable delivery, present in every service database.

* ``outbox``: events written in the same transaction as the state change that
  caused them; the relay publishes them and stamps ``published_at``.
* ``processed_events``: ids of events a consumer has applied, claimed in the same
  transaction as the change the event causes, so a redelivery is a no-op.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB


def add_delivery_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """Declare ``outbox`` and ``processed_events`` on a service's metadata."""
    outbox = sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_outbox_unpublished", "id", postgresql_where=sa.text("published_at IS NULL")),
    )
    processed = sa.Table(
        "processed_events",
        metadata,
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    return outbox, processed


def create_delivery_tables(op: Any) -> None:
    """Alembic helper: create both tables in a service's first migration."""
    metadata = sa.MetaData()
    add_delivery_tables(metadata)
    metadata.create_all(op.get_bind())


def drop_delivery_tables(op: Any) -> None:
    op.drop_table("processed_events")
    op.drop_table("outbox")
