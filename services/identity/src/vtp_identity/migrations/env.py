from alembic import context

from vtp_identity.adapters.orm import metadata
from vtp_runtime.db.migrations import run_env

run_env(context, metadata)
