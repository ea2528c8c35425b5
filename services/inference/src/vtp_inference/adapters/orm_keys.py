"""Tables of API keys and per-deployment limits (on the inference service's metadata)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from vtp_inference.adapters.orm import metadata

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("project_id", UUID(as_uuid=True), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", JSONB, nullable=False),
    # Deployment ids; NULL (not JSON null): every deployment of the project.
    sa.Column("deployments", JSONB(none_as_null=True), nullable=True),
    sa.Column("limits", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("rotated_to", UUID(as_uuid=True), nullable=True),
    sa.Index("ix_api_keys_project", "project_id", "created_at"),
)

deployment_limits = sa.Table(
    "deployment_limits",
    metadata,
    sa.Column("deployment_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("project_id", UUID(as_uuid=True), nullable=False),
    sa.Column("limits", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
