"""Batch inference in ``GET /metrics``: chunk and attempt durations, images predicted, by deployment.

Labels stay bounded: the deployment (and an attempt's final status), never a batch, key or image.
`rate(vtp_inference_batch_images_total[1m])` is the replica's batch throughput in images per second.
"""

from __future__ import annotations

import uuid

from vtp_runtime.metrics import METRICS

CHUNK_SECONDS = "vtp_inference_batch_chunk_seconds"
BATCH_SECONDS = "vtp_inference_batch_seconds"
IMAGES = "vtp_inference_batch_images_total"
# A chunk is up to VTP_BATCH_CHUNK_SIZE images (64): seconds on an accelerator, minutes on a busy CPU.
CHUNK_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
BATCH_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
METRICS.declare(CHUNK_SECONDS, "histogram", "Batch chunks predicted: seconds to read and predict one, by deployment.")
METRICS.declare(BATCH_SECONDS, "histogram", "Batch attempts ended on this replica: seconds, by deployment and status.")
METRICS.declare(IMAGES, "counter", "Images batches predicted (refused images not counted), by deployment.")


def chunk_predicted(deployment_id: uuid.UUID, images: int, seconds: float) -> None:
    deployment = str(deployment_id)
    METRICS.observe(CHUNK_SECONDS, seconds, CHUNK_BUCKETS, deployment=deployment)
    METRICS.inc(IMAGES, images, deployment=deployment)


def attempt_ended(deployment_id: uuid.UUID, status: str, seconds: float) -> None:
    METRICS.observe(BATCH_SECONDS, seconds, BATCH_BUCKETS, deployment=str(deployment_id), status=str(status))
