"""Versioned event contracts of the vision training platform.

This package depends on pydantic alone so any system can use it to read the
platform's topics. See ``docs/events.md`` for the catalog.
"""

from vtp_contracts.base import EventData, Metrics, ObjectRef, TaskType
from vtp_contracts.catalog import CATALOG, TopicSpec, spec_for_topic, spec_for_type
from vtp_contracts.envelope import EventEnvelope

__all__ = [
    "CATALOG",
    "EventData",
    "EventEnvelope",
    "Metrics",
    "ObjectRef",
    "TaskType",
    "TopicSpec",
    "spec_for_topic",
    "spec_for_type",
]
