"""Base model and shared value types of every event payload."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TaskType = Literal["detect", "segment", "classify", "pose"]
"""Training task names used across the platform (DICE's `object_detection` is `detect`)."""

Metrics = dict[str, float]
"""Metric name to value, e.g. ``{"mAP50": 0.61, "box_loss": 1.2}``."""


class EventData(BaseModel):
    """Base of every event payload.

    Unknown fields are ignored on read so producers can add optional fields
    without breaking older consumers (the compatibility rule of a ``.v1`` topic).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)


class ObjectRef(EventData):
    """A blob in object storage, with what a reader needs to verify it."""

    uri: str = Field(description="Object URI, e.g. s3://bucket/key or local://bucket/key.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the bytes.")
    size_bytes: int = Field(ge=0)
