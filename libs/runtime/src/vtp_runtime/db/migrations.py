"""Alembic, driven from code: each service ships its migrations inside its package.

A service's ``migrations/env.py`` is two lines that call :func:`run_env`; the
service runs :func:`upgrade_to_head` at start-up. A PostgreSQL advisory lock
makes concurrent replicas migrate one at a time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

_MIGRATION_LOCK_KEY = 0x767470_0A1E


def alembic_config(database_url: str, script_location: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


async def upgrade_to_head(database_url: str, script_location: Path) -> None:
    """Apply every pending migration (in a worker thread: Alembic runs its own loop).

    ``heads``, not ``head``: independent features may each branch from the same revision
    (their tables do not depend on each other), and every branch is applied.
    """
    await asyncio.to_thread(command.upgrade, alembic_config(database_url, script_location), "heads")


def _migrate(connection: Connection, context: Any, target_metadata: sa.MetaData) -> None:
    connection.execute(sa.select(sa.func.pg_advisory_lock(_MIGRATION_LOCK_KEY)))
    try:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(sa.select(sa.func.pg_advisory_unlock(_MIGRATION_LOCK_KEY)))
        connection.commit()


def run_env(context: Any, target_metadata: sa.MetaData) -> None:
    """Body of every service's Alembic ``env.py``."""
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    async def online() -> None:
        engine = create_async_engine(url, poolclass=sa.pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(_migrate, context, target_metadata)
        await engine.dispose()

    asyncio.run(online())
