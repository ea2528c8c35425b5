"""Request and response bodies of the webhook subscriptions API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from vtp_notifier.domain.webhooks import Subscription
from vtp_runtime.http.fields import NulFreeStr

_URL_DOC = "http(s) URL the events are posted to."
_TYPES_DOC = "Topics to receive, e.g. `epoch.progress.v1`; empty: every topic."
_JOBS_DOC = "Only events of these jobs; empty: every job of the project."


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: NulFreeStr = Field(min_length=1, max_length=2000, description=_URL_DOC)
    event_types: list[str] = Field(default_factory=list, max_length=50, description=_TYPES_DOC)
    job_ids: list[uuid.UUID] = Field(default_factory=list, max_length=200, description=_JOBS_DOC)
    description: NulFreeStr | None = Field(None, max_length=500)


class SubscriptionPatch(BaseModel):
    """Only the fields given are changed; `active: true` re-enables a disabled subscription."""

    model_config = ConfigDict(extra="forbid")
    url: NulFreeStr | None = Field(None, min_length=1, max_length=2000, description=_URL_DOC)
    event_types: list[str] | None = Field(None, max_length=50, description=_TYPES_DOC)
    job_ids: list[uuid.UUID] | None = Field(None, max_length=200, description=_JOBS_DOC)
    description: NulFreeStr | None = Field(None, max_length=500)
    active: StrictBool | None = None  # `1` or "yes" is not a yes/no answer


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    job_ids: list[uuid.UUID]
    description: str | None
    active: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def of(sub: Subscription) -> SubscriptionOut:
        values = {k: getattr(sub, k) for k in SubscriptionOut.model_fields}
        values["event_types"], values["job_ids"] = sorted(sub.event_types), sorted(sub.job_ids)
        return SubscriptionOut(**values)


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="Signing secret (`whsec_...`); shown only in this response.")


class SecretOut(BaseModel):
    secret: str = Field(description="The new signing secret; shown only in this response.")


class SubscriptionPage(BaseModel):
    items: list[SubscriptionOut]
    total: int
    limit: int
    offset: int


class AttemptOut(BaseModel):
    attempt: int
    started_at: datetime
    latency_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None


class DeliveryOut(BaseModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: str
    topic: str
    status: str
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    redelivery_of: uuid.UUID | None
    created_at: datetime
    completed_at: datetime | None
    dead_lettered_at: datetime | None
    attempts: list[AttemptOut]

    @staticmethod
    def of(row: dict[str, Any]) -> DeliveryOut:
        return DeliveryOut.model_validate({k: row[k] for k in DeliveryOut.model_fields})


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int
