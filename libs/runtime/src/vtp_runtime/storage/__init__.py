"""Object storage behind one async interface: a local directory or any S3 API."""

from .base import (
    InvalidObjectKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    validate_key,
)
from .factory import store_from_settings
from .local import LocalObjectStore
from .s3 import S3ObjectStore
from .staging import Staging

__all__ = [
    "InvalidObjectKey",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "S3ObjectStore",
    "Staging",
    "StorageError",
    "store_from_settings",
    "validate_key",
]
