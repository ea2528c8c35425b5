"""Each service's ORM metadata matches the schema its Alembic migrations build on a real PostgreSQL.

Services are found by their ``migrations/env.py``; the metadata is the one that env imports, so a
new service, table or migration is covered without touching this test.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from tests.integration.scratch_db import scratch_database
from vtp_localstack.stack import LocalStack
from vtp_runtime.db.engine import make_engine
from vtp_runtime.db.migrations import upgrade_to_head

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = sorted(ROOT.glob("services/*/src/*/migrations/env.py"))


def _target_metadata(env: Path) -> sa.MetaData:
    """The `metadata` a service's migrations/env.py imports (and hands to Alembic)."""
    for node in ast.walk(ast.parse(env.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and any(a.name == "metadata" for a in node.names):
            metadata = importlib.import_module(node.module).metadata
            assert isinstance(metadata, sa.MetaData)
            return metadata
    raise AssertionError(f"{env} imports no metadata")


def _diff(connection: Connection, metadata: sa.MetaData) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_name": lambda name, kind, _parent: not (kind == "table" and name == "alembic_version"),
        },
    )
    return list(compare_metadata(context, metadata))


@pytest.mark.parametrize("env", MIGRATIONS, ids=[p.parts[-5] for p in MIGRATIONS])
async def test_migrations_build_exactly_the_orm_schema(stack: LocalStack, env: Path) -> None:
    assert MIGRATIONS, "no services/*/src/*/migrations/env.py found"
    metadata = _target_metadata(env)
    url = await scratch_database(stack.cfg.postgres_admin_url, f"drift_{env.parts[-5].replace('-', '_')}")
    await upgrade_to_head(url, env.parent)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_diff, metadata)
    finally:
        await engine.dispose()
    assert not differences, "ORM metadata and migrations differ (add a migration or fix the ORM):\n" + "\n".join(
        map(str, differences)
    )
