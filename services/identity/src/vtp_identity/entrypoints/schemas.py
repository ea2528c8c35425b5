"""Request and response bodies of the identity REST API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from vtp_identity.domain.model import SLUG_PATTERN
from vtp_runtime.http.fields import NulFreeStr


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: NulFreeStr = Field(min_length=1, max_length=100)
    slug: str | None = Field(
        None, pattern=SLUG_PATTERN.pattern, description="URL-safe id; derived from name if absent."
    )


class ProjectOut(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: NulFreeStr = Field(min_length=1, max_length=100)
    is_admin: StrictBool = False  # `0` or `"yes"` is not a yes/no answer


class TokenOut(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    prefix: str = Field(description="First characters of the token, to recognise it.")
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The secret. Shown once; only its digest is stored.")


class WhoAmI(BaseModel):
    project_id: uuid.UUID
    token_id: uuid.UUID
    is_admin: bool
