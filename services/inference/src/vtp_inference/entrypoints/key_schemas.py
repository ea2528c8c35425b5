"""Request and response bodies of the API keys and limits REST API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from vtp_inference.domain.keys import MAX_OVERLAP, PREDICT, ApiKey, Limits
from vtp_runtime.http.problems import validation_errors

Count = int | None


class LimitsBody(BaseModel):
    """Each limit is optional (absent or null: unlimited)."""

    model_config = ConfigDict(extra="forbid")
    per_second: Count = Field(None, ge=1, le=100_000, description="Requests per second (token bucket).")
    per_minute: Count = Field(None, ge=1, le=6_000_000, description="Requests per minute (token bucket).")
    concurrent: Count = Field(None, ge=1, le=10_000, description="Requests in flight at once.")
    images_per_day: Count = Field(None, ge=1, description="Images per UTC day (quota).")
    images_per_month: Count = Field(None, ge=1, description="Images per UTC calendar month (quota).")

    def domain(self) -> Limits:
        return Limits(**self.model_dump())


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field([PREDICT], description="`predict`, optionally `usage:read`.")
    deployments: list[uuid.UUID] | None = Field(
        None, description="Deployments the key reaches (project-wide keys only); absent or null: all of the project's."
    )
    expires_at: AwareDatetime | None = Field(None, description="When the key stops working (timezone-aware, future).")
    limits: LimitsBody = Field(default_factory=LimitsBody)


class DeploymentKeyIn(KeyIn):
    """A key of one deployment (the path's): no `deployments` field."""

    deployments: None = Field(None, exclude=True)


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_seconds: int = Field(
        3600, ge=0, le=int(MAX_OVERLAP.total_seconds()), description="How long the old key keeps working."
    )


class KeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The secret's first characters, to tell keys apart.")
    status: str = Field(description="active, revoked or expired")
    scopes: list[str]
    deployments: list[uuid.UUID] | None
    limits: LimitsBody
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="Written every few seconds, not per request.")
    rotated_to: uuid.UUID | None

    @classmethod
    def of(cls, key: ApiKey, now: datetime) -> KeyOut:
        status = "revoked" if key.revoked_at else "active" if key.usable(now) else "expired"
        deployments = None if key.deployments is None else sorted(key.deployments, key=str)
        values = {k: v for k, v in vars(key).items() if k not in ("project_id", "key_hash", "deployments", "limits")}
        values["scopes"] = sorted(key.scopes)
        limits = LimitsBody(**key.limits.as_dict())
        return cls(**values, status=status, deployments=deployments, limits=limits)


class KeyCreated(KeyOut):
    secret: str = Field(description="The key itself (`vtpk_...`): shown this once, stored only as a hash.")


class KeyPage(BaseModel):
    items: list[KeyOut]
    total: int
    limit: int
    offset: int


def lenient(model: type[KeyIn], body: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Each field that parses, and the problems of every field that does not (so rules can run on the rest)."""
    if not isinstance(body, dict):
        return {}, [{"pointer": "#/body", "code": "dict_type", "message": "expected a JSON object"}]
    parsed: dict[str, Any] = {}
    errors = [
        {"pointer": f"#/body/{name}", "code": "extra_forbidden", "message": "unknown field"}
        for name in body
        if name not in model.model_fields or (model is DeploymentKeyIn and name == "deployments")
    ]
    for name in model.model_fields:
        if name not in body:
            continue
        try:
            checked = model.__pydantic_validator__.validate_assignment(model.model_construct(name=""), name, body[name])
            parsed[name] = getattr(checked, name)
        except ValidationError as exc:
            errors += [
                {**e, "pointer": e["pointer"].replace("#/", "#/body/", 1)} for e in validation_errors(exc.errors())
            ]
    if "name" not in body:
        errors.append({"pointer": "#/body/name", "code": "missing", "message": "Field required"})
    return parsed, errors
