"""What the batch routes need: the unit of work, storage, the datasets client, the predictor, limits, access,
and where a cancelled batch's images go back."""

from __future__ import annotations

from dataclasses import dataclass

from vtp_dice.archive import ArchiveLimits
from vtp_inference.adapters.datasets_client import DatasetsClient
from vtp_inference.predict.images import Limits
from vtp_inference.service_layer.access import Access
from vtp_inference.service_layer.batch_quota import QuotaReturns
from vtp_inference.service_layer.metering import Meter
from vtp_inference.service_layer.predicting import Predictor
from vtp_inference.service_layer.unit_of_work import NewUow
from vtp_runtime.storage import ObjectStore


@dataclass(frozen=True)
class BatchApiDeps:
    new_uow: NewUow
    store: ObjectStore
    datasets: DatasetsClient
    predictor: Predictor
    archive_limits: ArchiveLimits
    image_limits: Limits
    max_images: int
    max_upload_bytes: int
    chunk_size: int
    access: Access
    meter: Meter
    quota: QuotaReturns | None = None  # gives a cancelled batch's images back to its quotas
