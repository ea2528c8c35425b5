"""Pick the object-store driver the settings describe."""

from __future__ import annotations

from pathlib import Path

from ..settings import StorageSettings
from .base import ObjectStore
from .local import LocalObjectStore
from .s3 import S3ObjectStore


def store_from_settings(settings: StorageSettings) -> ObjectStore:
    """Return the S3 driver whenever ``s3_endpoint`` is set, else the local driver under ``storage_dir``."""
    if settings.s3_endpoint:
        endpoint, secure = settings.s3_endpoint, settings.s3_secure
        # The SDK wants bare host:port; accept a URL too, its scheme deciding HTTPS.
        for scheme, is_secure in (("https://", True), ("http://", False)):
            if endpoint.startswith(scheme):
                endpoint, secure = endpoint[len(scheme) :].rstrip("/"), is_secure
        return S3ObjectStore(
            endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            settings.storage_bucket,
            secure=secure,
            region=settings.s3_region,
        )
    return LocalObjectStore(Path(settings.storage_dir), settings.storage_bucket, settings.storage_sync_each_write)
