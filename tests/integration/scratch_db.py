"""A fresh, uniquely named database on the test PostgreSQL, for tests of one table's behaviour."""

from __future__ import annotations

import uuid

import asyncpg


async def scratch_database(admin_url: str, prefix: str) -> str:
    """Create `<prefix>_<random>` next to `admin_url`'s database; returns its SQLAlchemy asyncpg URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + f"/{name}"
