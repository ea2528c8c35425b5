"""Behaviour every driver shares, so the drivers only hold their own I/O."""

from __future__ import annotations

from .base import (
    ObjectInfo,
    ObjectNotFound,
    format_uri,
    parse_object_uri,
    validate_bucket,
)


class StoreBase:
    """URI handling and ``exists`` on top of a driver's ``stat``."""

    scheme: str

    def __init__(self, bucket: str) -> None:
        self.bucket = validate_bucket(bucket)

    def uri(self, key: str) -> str:
        """Return ``f"{scheme}://{bucket}/{key}"``."""
        return format_uri(self.scheme, self.bucket, key)

    def parse_uri(self, uri: str) -> str:
        """Return the key of one of this store's URIs; InvalidObjectKey otherwise."""
        return parse_object_uri(self.scheme, self.bucket, uri)

    async def stat(self, key: str) -> ObjectInfo:
        """Describe the object; drivers override it."""
        raise NotImplementedError

    async def exists(self, key: str) -> bool:
        """Whether an object exists under ``key``."""
        try:
            await self.stat(key)
        except ObjectNotFound:
            return False
        return True
