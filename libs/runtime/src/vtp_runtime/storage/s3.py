"""S3 driver (MinIO, AWS, R2) on the ``minio`` SDK.

The SDK is synchronous, so every call runs in a worker thread. Every SDK, urllib3 or OS error is
translated here into the storage exceptions of :mod:`.base`: callers never see third-party types.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import io
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from ._common import StoreBase
from ._fileio import atomic_target, copy_hashing
from .base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    validate_key,
    validate_prefix,
)

T = TypeVar("T")
SHA256_META = "x-amz-meta-sha256"
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})
_TRANSLATED = (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError)


class S3ObjectStore(StoreBase):
    """Objects in one S3 bucket, created on first use if missing."""

    scheme = "s3"

    def __init__(
        self,
        endpoint: str,
        access_key: str | None,
        secret_key: str | None,
        bucket: str,
        secure: bool = True,
        region: str | None = None,
        *,
        spool_dir: Path | None = None,
        http_client: urllib3.PoolManager | None = None,
    ) -> None:
        super().__init__(bucket)
        self._region = region
        self._spool_dir = spool_dir
        try:
            self._client = Minio(
                endpoint, access_key, secret_key, secure=secure, region=region, http_client=http_client
            )
        except ValueError as exc:  # malformed endpoint
            raise StorageError(f"invalid S3 endpoint {endpoint!r}: {exc}") from exc
        # A threading lock, not an asyncio one: the check runs in worker threads and the store
        # may outlive (or be shared across) event loops.
        self._bucket_lock = threading.Lock()
        self._bucket_ready = False

    def _translate(self, exc: Exception, key: str | None) -> StorageError:
        if isinstance(exc, S3Error):
            if key is not None and exc.code in _NOT_FOUND_CODES:
                return ObjectNotFound(key)
            if exc.code == "NoSuchBucket":
                self._bucket_ready = False  # deleted behind our back: re-create on next use
            return StorageError(f"S3 {exc.code}: {exc.message}")
        if isinstance(exc, urllib3.exceptions.HTTPError):
            return StorageError(f"S3 endpoint unreachable or connection broken: {exc}")
        return StorageError(f"S3 storage failed: {exc}")

    async def _call(self, fn: Callable[..., T], *args: object, key: str | None = None) -> T:
        """Run a blocking SDK call in a thread; S3 "not found" codes become ObjectNotFound(key)."""
        try:
            return await asyncio.to_thread(fn, *args)
        except _TRANSLATED as exc:
            raise self._translate(exc, key) from exc

    def _ensure_bucket_sync(self, force: bool = False) -> None:
        with self._bucket_lock:
            if self._bucket_ready and not force:
                return
            if not self._client.bucket_exists(self.bucket):
                try:
                    self._client.make_bucket(self.bucket, location=self._region)
                except S3Error as exc:
                    if exc.code != "BucketAlreadyOwnedByYou":  # lost a creation race to ourselves: fine
                        raise
            self._bucket_ready = True

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet (checked once per store)."""
        if not self._bucket_ready:
            await self._call(self._ensure_bucket_sync)

    def _put_sync(self, key: str, data: BinaryIO, size: int, sha256: str, content_type: str) -> ObjectInfo:
        # Known length: the SDK does a single PUT or a multipart upload with bounded part buffers.
        self._client.put_object(self.bucket, key, data, size, content_type=content_type, metadata={SHA256_META: sha256})
        return ObjectInfo(key, self.uri(key), size, sha256, content_type)

    def _exists_sync(self, key: str) -> bool:
        self._ensure_bucket_sync()
        try:
            self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NotFound", "NoSuchObject"):
                return False
            raise
        return True

    def _put_bytes_sync(self, key: str, data: bytes, content_type: str) -> None:
        self._put_sync(key, io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest(), content_type)

    async def _blocking(self, fn: Callable[[], int]) -> int:
        return await self._call(fn)

    async def put_bytes(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        """Upload ``data`` in one request."""
        validate_key(key)
        await self.ensure_bucket()
        sha256 = hashlib.sha256(data).hexdigest()
        return await self._call(self._put_sync, key, io.BytesIO(data), len(data), sha256, content_type)

    async def put_file(self, key: str, path: Path, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        """Upload a file: one hashing pass, then a streamed upload.

        S3 metadata must be sent before the body, so the sha256 has to be known up front;
        re-reading a local file is cheaper than a server-side copy to rewrite metadata.
        """
        validate_key(key)
        await self.ensure_bucket()

        def _upload() -> ObjectInfo:
            with Path(path).open("rb") as fh:
                sha256, size = copy_hashing(fh, None)
                fh.seek(0)
                return self._put_sync(key, fh, size, sha256, content_type)

        return await self._call(_upload)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Spool chunks to an anonymous temp file while hashing, then upload it (flat memory)."""
        validate_key(key)
        await self.ensure_bucket()
        spool = await self._call(functools.partial(tempfile.TemporaryFile, dir=self._spool_dir))
        try:
            digest = hashlib.sha256()
            size = 0
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                await self._call(spool.write, chunk)
            await self._call(spool.seek, 0)
            return await self._call(self._put_sync, key, spool, size, digest.hexdigest(), content_type)
        finally:
            spool.close()  # anonymous file: closing frees the disk space

    async def delete(self, key: str) -> None:
        """Delete the object; S3 already treats a missing key as success."""
        validate_key(key)
        await self.ensure_bucket()
        with contextlib.suppress(ObjectNotFound):  # some S3 clones answer NoSuchKey instead of 204
            await self._call(self._client.remove_object, self.bucket, key, key=key)

    async def stat(self, key: str) -> ObjectInfo:
        """HEAD the object; ObjectNotFound if missing."""
        validate_key(key)
        await self.ensure_bucket()
        obj = await self._call(self._client.stat_object, self.bucket, key, key=key)
        meta = obj.metadata or {}
        # Header names are case-insensitive and servers differ in how they spell them.
        sha256 = next((v for k, v in meta.items() if k.lower() == SHA256_META), None)
        return ObjectInfo(key, self.uri(key), int(obj.size or 0), sha256, obj.content_type)

    async def open_stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield the object's bytes, reading the HTTP body one chunk at a time."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        validate_key(key)
        await self.ensure_bucket()
        resp = await self._call(self._client.get_object, self.bucket, key, key=key)
        try:
            # decode_content=False: hand back the stored bytes even if a Content-Encoding is set.
            while chunk := await self._call(resp.read, chunk_size, False):
                yield chunk
        finally:
            resp.close()
            resp.release_conn()

    async def get_file(self, key: str, dest: Path) -> Path:
        """Download to a temp sibling of ``dest``, then rename it into place."""
        validate_key(key)
        await self.ensure_bucket()
        dest = Path(dest)

        def _download() -> None:
            resp = self._client.get_object(self.bucket, key)
            try:
                with atomic_target(dest) as fh:
                    while chunk := resp.read(DEFAULT_CHUNK_SIZE, False):
                        fh.write(chunk)
            finally:
                resp.close()
                resp.release_conn()

        await self._call(_download, key=key)
        return dest

    async def list_keys(self, prefix: str = "") -> list[str]:
        """Return sorted keys under ``prefix`` (the SDK pages through listings itself)."""
        validate_prefix(prefix)
        await self.ensure_bucket()

        def _list() -> list[str]:
            objects = self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
            return sorted(o.object_name for o in objects if o.object_name and not o.is_dir)

        return await self._call(_list)

    async def list_modified(self, prefix: str = "") -> list[tuple[str, datetime]]:
        """Keys under ``prefix`` with their LastModified times, from the listing itself (no HEADs)."""
        validate_prefix(prefix)
        await self.ensure_bucket()

        def _list() -> list[tuple[str, datetime]]:
            objects = self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
            found = [(o.object_name, o.last_modified) for o in objects if o.object_name and not o.is_dir]
            # A listing without a date is treated as brand new: callers use these times to decide deletions.
            return sorted((key, (when or datetime.now(UTC)).astimezone(UTC)) for key, when in found)

        return await self._call(_list)

    async def sync(self) -> None:
        """Nothing to do: S3 acknowledges a PUT only once it is durable."""

    async def check(self) -> None:
        """Reach the endpoint and make sure the bucket exists.

        It creates a missing bucket rather than failing: a readiness probe that waits for a
        bucket only the first upload would create could never turn ready on a fresh MinIO.
        """
        await self._call(self._ensure_bucket_sync, True)
