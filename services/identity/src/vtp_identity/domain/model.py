"""Projects own everything on the platform; API tokens act on behalf of one project."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$")


class IdentityError(Exception):
    """Base of the identity domain's rule violations."""


class ProjectSlugTaken(IdentityError):
    pass


class ProjectNotFound(IdentityError):
    pass


class TokenNotFound(IdentityError):
    pass


class AdminRequired(IdentityError):
    pass


def slugify(name: str) -> str:
    """A URL-safe project slug derived from a display name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")
    return slug if len(slug) >= 2 else f"project-{uuid.uuid4().hex[:8]}"


@dataclass
class Project:
    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime

    @staticmethod
    def new(name: str, slug: str | None = None) -> Project:
        return Project(uuid.uuid4(), name, slug or slugify(name), datetime.now(UTC))


@dataclass
class ApiToken:
    """A token's stored form: its digest and a short prefix for display, never the secret."""

    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    token_hash: str
    prefix: str
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = datetime.now(UTC)
