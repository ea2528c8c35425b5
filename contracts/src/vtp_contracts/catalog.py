"""The topic catalog: every public topic, its payload model and its partition key."""

from __future__ import annotations

from dataclasses import dataclass

from vtp_contracts.base import EventData
from vtp_contracts.events.batches import BatchCompleted, BatchProgress, BatchRequested
from vtp_contracts.events.datasets import DatasetSnapshotCreated
from vtp_contracts.events.deployments import DeploymentChanged
from vtp_contracts.events.exports import ExportCompleted, ExportProgress, ExportRequested
from vtp_contracts.events.jobs import (
    CheckpointSaved,
    EpochProgress,
    JobCancelRequested,
    JobHeartbeat,
    JobLifecycle,
    JobLog,
    JobRequested,
)

CE_TYPE_PREFIX = "ai.vtp."


@dataclass(frozen=True)
class TopicSpec:
    """One versioned topic.

    `key_field` names the payload field whose value is the Kafka message key,
    so all events of one aggregate land in one partition and keep their order.
    """

    name: str
    version: int
    data_model: type[EventData]
    key_field: str
    description: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]

    @property
    def topic(self) -> str:
        """Kafka topic name, e.g. ``job.requested.v1``."""
        return f"{self.name}.v{self.version}"

    @property
    def ce_type(self) -> str:
        """CloudEvents `type` attribute, e.g. ``ai.vtp.job.requested.v1``."""
        return f"{CE_TYPE_PREFIX}{self.topic}"

    def key_of(self, data: EventData) -> str:
        """The partition key of one payload."""
        return str(getattr(data, self.key_field))


JOB_REQUESTED = TopicSpec(
    "job.requested",
    1,
    JobRequested,
    "job_id",
    "Command: train a job attempt. Consumed by one trainer-runner of the consumer group.",
    ("jobs",),
    ("trainer-runner", "notifier"),
)
JOB_CANCEL_REQUESTED = TopicSpec(
    "job.cancel-requested",
    1,
    JobCancelRequested,
    "job_id",
    "Command: stop a running job. Every runner reads it; the one holding the job acts.",
    ("jobs",),
    ("trainer-runner", "notifier"),
)
JOB_LIFECYCLE = TopicSpec(
    "job.lifecycle",
    1,
    JobLifecycle,
    "job_id",
    "A job attempt started, completed, failed, was cancelled or was requeued.",
    ("trainer-runner", "jobs"),
    ("jobs", "notifier"),
)
JOB_HEARTBEAT = TopicSpec(
    "job.heartbeat",
    1,
    JobHeartbeat,
    "job_id",
    "The runner holding a job attempt is alive.",
    ("trainer-runner",),
    ("jobs",),
)
EPOCH_PROGRESS = TopicSpec(
    "epoch.progress",
    1,
    EpochProgress,
    "job_id",
    "One finished epoch: losses, validation metrics, learning rate, ETA.",
    ("trainer-runner",),
    ("jobs", "notifier"),
)
CHECKPOINT_SAVED = TopicSpec(
    "checkpoint.saved",
    1,
    CheckpointSaved,
    "job_id",
    "A `last` or `best` checkpoint was uploaded to object storage.",
    ("trainer-runner",),
    ("jobs", "notifier"),
)
JOB_LOG = TopicSpec(
    "job.log",
    1,
    JobLog,
    "job_id",
    "Batched trainer log lines.",
    ("trainer-runner",),
    ("jobs", "notifier"),
)
EXPORT_REQUESTED = TopicSpec(
    "export.requested",
    1,
    ExportRequested,
    "export_id",
    "Command: export a checkpoint to a format with a parity check.",
    ("export",),
    ("export", "notifier"),
)
EXPORT_PROGRESS = TopicSpec(
    "export.progress",
    1,
    ExportProgress,
    "export_id",
    "An export attempt entered a stage: exporting, validating, packaging.",
    ("export",),
    ("notifier",),
)
EXPORT_COMPLETED = TopicSpec(
    "export.completed",
    1,
    ExportCompleted,
    "export_id",
    "An export finished, with its artifact and parity report.",
    ("export",),
    # Inference resolves an export over the export service's REST when a deployment is created; it needs no copy.
    ("notifier",),
)
DATASET_SNAPSHOT_CREATED = TopicSpec(
    "dataset.snapshot-created",
    1,
    DatasetSnapshotCreated,
    "dataset_id",
    "An immutable dataset snapshot was created.",
    ("datasets",),
    # Jobs pins a snapshot by asking datasets over REST when a job is submitted; it needs no copy.
    ("notifier",),
)
DEPLOYMENT_CHANGED = TopicSpec(
    "deployment.changed",
    1,
    DeploymentChanged,
    "deployment_id",
    "An inference deployment changed state.",
    ("inference",),
    # Every inference replica reads every change (no consumer group) to drop what it loaded.
    ("inference", "notifier"),
)
BATCH_REQUESTED = TopicSpec(
    "batch.requested",
    1,
    BatchRequested,
    "batch_id",
    "Command: predict a batch of images. Taken by one inference replica of the `batchers` consumer group.",
    ("inference",),
    ("inference", "notifier"),
)
BATCH_PROGRESS = TopicSpec(
    "batch.progress",
    1,
    BatchProgress,
    "batch_id",
    "A batch inference job recorded another chunk of results.",
    ("inference",),
    ("notifier",),
)
BATCH_COMPLETED = TopicSpec(
    "batch.completed",
    1,
    BatchCompleted,
    "batch_id",
    "A batch inference job succeeded (results stored), failed or was cancelled.",
    ("inference",),
    ("notifier",),
)

CATALOG: tuple[TopicSpec, ...] = (
    JOB_REQUESTED,
    JOB_CANCEL_REQUESTED,
    JOB_LIFECYCLE,
    JOB_HEARTBEAT,
    EPOCH_PROGRESS,
    CHECKPOINT_SAVED,
    JOB_LOG,
    EXPORT_REQUESTED,
    EXPORT_PROGRESS,
    EXPORT_COMPLETED,
    DATASET_SNAPSHOT_CREATED,
    DEPLOYMENT_CHANGED,
    BATCH_REQUESTED,
    BATCH_PROGRESS,
    BATCH_COMPLETED,
)


def spec_for_topic(topic: str) -> TopicSpec:
    """Look a topic up by its Kafka name; raises KeyError for an unknown topic."""
    for spec in CATALOG:
        if spec.topic == topic:
            return spec
    raise KeyError(topic)


def spec_for_type(ce_type: str) -> TopicSpec:
    """Look a topic up by its CloudEvents type; raises KeyError for an unknown type."""
    for spec in CATALOG:
        if spec.ce_type == ce_type:
            return spec
    raise KeyError(ce_type)
