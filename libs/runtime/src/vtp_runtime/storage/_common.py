"""Behaviour every driver shares, so the drivers only hold their own I/O."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from .base import (
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectNotFound,
    format_uri,
    parse_object_uri,
    validate_bucket,
    validate_key,
)
from .staging import Staging

BlobSource = Callable[[], bytes]


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

    async def put_many(
        self,
        items: Sequence[tuple[str, BlobSource]],
        content_type: str = DEFAULT_CONTENT_TYPE,
        workers: int = 4,
        skip_existing: bool = True,
    ) -> int:
        """Store many objects, their bytes produced by `items`' callables; returns how many were written.

        Runs the drivers' blocking I/O on a small thread pool in one hop, instead of two event-loop
        round trips per object: thousands of small images go several times faster this way.
        """
        for key, _ in items:
            validate_key(key)

        def one(item: tuple[str, BlobSource]) -> int:
            key, read = item
            if skip_existing and self._exists_sync(key):
                return 0
            self._put_bytes_sync(key, read(), content_type)
            return 1

        def run() -> int:
            with ThreadPoolExecutor(max(1, workers)) as pool:
                return sum(pool.map(one, items))

        return await self._blocking(run)

    def staging(self, sidecars: bool = True) -> Staging:
        """No staging area: ``stage`` writes nothing and callers store objects as usual."""
        return Staging()

    def _exists_sync(self, key: str) -> bool:
        raise NotImplementedError

    def _put_bytes_sync(self, key: str, data: bytes, content_type: str) -> None:
        raise NotImplementedError

    async def _blocking(self, fn: Callable[[], int]) -> int:
        """Run blocking driver I/O in a thread, translating the driver's errors."""
        return await asyncio.to_thread(fn)
