"""Batch inference in ``GET /metrics`` (chunk and attempt durations, images predicted and given back
to quotas, by deployment) and in usage (a recorded chunk metered like a predict request).

Labels stay bounded: the deployment (and an attempt's final status), never a batch, key or image.
`rate(vtp_inference_batch_images_total[1m])` is the replica's batch throughput in images per second.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from vtp_inference.domain.batches import Batch
from vtp_inference.service_layer.metering import Meter
from vtp_runtime.metrics import METRICS

CHUNK_SECONDS = "vtp_inference_batch_chunk_seconds"
BATCH_SECONDS = "vtp_inference_batch_seconds"
IMAGES = "vtp_inference_batch_images_total"
RETURNED = "vtp_inference_batch_images_returned_total"
# A chunk is up to VTP_BATCH_CHUNK_SIZE images (64): seconds on an accelerator, minutes on a busy CPU.
CHUNK_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
BATCH_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
METRICS.declare(CHUNK_SECONDS, "histogram", "Batch chunks predicted: seconds to read and predict one, by deployment.")
METRICS.declare(BATCH_SECONDS, "histogram", "Batch attempts ended on this replica: seconds, by deployment and status.")
METRICS.declare(IMAGES, "counter", "Images batches predicted (refused images not counted), by deployment.")
METRICS.declare(RETURNED, "counter", "Images failed or cancelled batches gave back to their quotas, by deployment.")


@dataclass(frozen=True)
class Chunk:
    """One predicted chunk's rows, with what its metering needs once it is recorded."""

    rows: list[dict[str, Any]]
    bytes_in: int
    seconds: float


def chunk_predicted(deployment_id: uuid.UUID, images: int, seconds: float) -> None:
    deployment = str(deployment_id)
    METRICS.observe(CHUNK_SECONDS, seconds, CHUNK_BUCKETS, deployment=deployment)
    METRICS.inc(IMAGES, images, deployment=deployment)


def attempt_ended(deployment_id: uuid.UUID, status: str, seconds: float) -> None:
    METRICS.observe(BATCH_SECONDS, seconds, BATCH_BUCKETS, deployment=str(deployment_id), status=str(status))


def images_returned(deployment_id: uuid.UUID, images: int) -> None:
    METRICS.inc(RETURNED, images, deployment=str(deployment_id))


def meter_chunk(meter: Meter, b: Batch, chunk: Chunk) -> None:
    """A recorded chunk as one request of its predicted images, each refused image as an error (only
    once it is recorded: a chunk predicted again after a takeover is counted once)."""
    done = [r for r in chunk.rows if "error" not in r]
    compute = sum(r["timings_ms"].get("inference", 0.0) for r in done) / 1000
    meter.record(
        b.project_id, b.deployment_id, b.key_id,
        images=len(done), latency_ms=chunk.seconds * 1000, compute_seconds=compute, bytes_in=chunk.bytes_in,
    )  # fmt: skip
    for row in chunk.rows:
        if "error" in row:
            meter.record(b.project_id, b.deployment_id, b.key_id, images=0, latency_ms=0, error=row["error"]["code"])
