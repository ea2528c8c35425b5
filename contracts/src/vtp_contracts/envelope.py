"""The CloudEvents 1.0 envelope as carried over Kafka in binary content mode.

Attributes travel as Kafka headers (``ce_id``, ``ce_source``, ...), the payload
as the JSON message value, and the partition key as the Kafka message key.
W3C trace context rides along in ``traceparent``/``tracestate`` headers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from vtp_contracts.base import EventData

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

HEADER_ID = "ce_id"
HEADER_SOURCE = "ce_source"
HEADER_TYPE = "ce_type"
HEADER_SPECVERSION = "ce_specversion"
HEADER_TIME = "ce_time"
HEADER_SUBJECT = "ce_subject"
HEADER_CONTENT_TYPE = "content-type"
HEADER_TRACEPARENT = "traceparent"
HEADER_TRACESTATE = "tracestate"

DataT = TypeVar("DataT", bound=EventData)


class EventEnvelope(BaseModel, Generic[DataT]):
    """One event: CloudEvents context attributes plus its typed payload."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, description="Unique event id; consumers deduplicate by it.")
    source: str = Field(min_length=1, description="Producer, e.g. `/services/jobs`.")
    type: str = Field(min_length=1, description="e.g. `ai.vtp.job.requested.v1`.")
    specversion: str = SPEC_VERSION
    time: datetime
    subject: str = Field(min_length=1, description="The aggregate id, also the partition key.")
    datacontenttype: str = CONTENT_TYPE
    traceparent: str | None = None
    tracestate: str | None = None
    data: DataT
