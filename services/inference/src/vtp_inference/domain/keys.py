"""API keys of inference: who may call which deployments, until when, within which limits.

A key (`vtpk_...`) is 256 random bits shown once; only its SHA-256 is stored (as project tokens).
It reaches serving routes only (predict, the Open Inference Protocol, its deployments' zip batches,
usage reads with `usage:read`).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from vtp_inference.domain.model import Problem
from vtp_runtime.auth import Principal, hash_token

KEY_PREFIX = "vtpk_"
SHOWN_PREFIX_CHARS = 12  # "vtpk_" + 7 characters: enough to tell keys apart in a list, useless to guess
PREDICT, USAGE_READ = "predict", "usage:read"
SCOPES = frozenset({PREDICT, USAGE_READ})
MAX_OVERLAP = timedelta(days=7)


@dataclass(frozen=True)
class Limits:
    """Per-key or per-deployment limits; None: unlimited."""

    per_second: int | None = None
    per_minute: int | None = None
    concurrent: int | None = None
    images_per_day: int | None = None
    images_per_month: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return dict(vars(self))

    @property
    def empty(self) -> bool:
        return all(v is None for v in vars(self).values())


@dataclass
class ApiKey:
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    prefix: str
    key_hash: str
    scopes: frozenset[str]
    deployments: frozenset[uuid.UUID] | None  # None: every deployment of the project
    limits: Limits
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    rotated_to: uuid.UUID | None = None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def reaches(self, deployment_id: uuid.UUID) -> bool:
        return self.deployments is None or deployment_id in self.deployments


@dataclass(frozen=True, kw_only=True)
class KeyPrincipal(Principal):
    """The caller behind an API key: the key's project, never an admin."""

    key: ApiKey = field(compare=False)

    @property
    def key_id(self) -> uuid.UUID:
        return self.key.id

    @property
    def scopes(self) -> frozenset[str]:
        return self.key.scopes

    @property
    def deployments(self) -> frozenset[uuid.UUID] | None:
        return self.key.deployments


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_key(credential: str) -> bool:
    """Cheap shape check, so junk never reaches the database."""
    return credential.startswith(KEY_PREFIX) and 20 <= len(credential) <= 200 and credential.isascii()


@dataclass(frozen=True)
class KeyRequest:
    name: str
    scopes: frozenset[str]
    deployments: frozenset[uuid.UUID] | None
    expires_at: datetime | None
    limits: Limits


def check_request(request: KeyRequest, now: datetime) -> list[Problem]:
    """Rules a key request must meet beyond its shape (the deployments' existence is checked by the handler)."""
    problems = []
    if PREDICT not in request.scopes:
        problems.append(Problem("/scopes", "invalid_scopes", "a key needs the `predict` scope"))
    if request.expires_at is not None and request.expires_at <= now:
        problems.append(Problem("/expires_at", "expiry_in_past", "expires_at must be in the future"))
    return problems


def rotate(old: ApiKey, new_id: uuid.UUID, secret: str, now: datetime, overlap: timedelta) -> tuple[ApiKey, ApiKey]:
    """`old` ending after `overlap`, and its successor (same name, scopes, deployments, limits, expiry)."""
    end = now + overlap
    ending = replace(old, expires_at=min(end, old.expires_at) if old.expires_at else end, rotated_to=new_id)
    successor = replace(
        old, id=new_id, prefix=secret[:SHOWN_PREFIX_CHARS], key_hash=hash_token(secret), created_at=now,
        last_used_at=None, rotated_to=None,
    )  # fmt: skip
    return ending, successor
