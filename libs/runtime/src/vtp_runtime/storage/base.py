"""Object-store contract shared by every driver: value types, errors, key rules, the Protocol."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .staging import Staging

DEFAULT_CONTENT_TYPE = "application/octet-stream"
DEFAULT_CHUNK_SIZE = 1 << 20
MAX_KEY_BYTES = 1024  # S3's own limit; the local driver keeps the same rule so drivers stay interchangeable.

# S3 bucket naming rules (lower-case, 3-63 chars, no leading dot). The local driver applies them too:
# a bucket can then never be mistaken for its hidden ``.vtp-*`` bookkeeping folders.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a store knows about one stored object."""

    key: str
    uri: str
    size_bytes: int
    sha256: str | None
    content_type: str | None


class StorageError(Exception):
    """Object storage failed or is unusable; the only exception family drivers let escape."""


class ObjectNotFound(StorageError):
    """No object exists under the requested key."""


class InvalidObjectKey(StorageError):
    """A key (or URI) breaks the key rules; raised before any I/O happens."""


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a safe object key, else raise :class:`InvalidObjectKey`.

    Keys may come straight from user input, and the local driver maps them onto file paths,
    so anything that could escape the bucket or alias another key is refused.
    """
    if not isinstance(key, str) or not key:
        raise InvalidObjectKey("object key must be a non-empty string")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:  # lone surrogates cannot be stored by S3 nor most file systems
        raise InvalidObjectKey("object key is not valid UTF-8") from exc
    if size > MAX_KEY_BYTES:
        raise InvalidObjectKey(f"object key is {size} bytes long; the limit is {MAX_KEY_BYTES}")
    if "\\" in key:
        raise InvalidObjectKey("object key must not contain a backslash")
    # Category Cc covers NUL, C0/C1 controls and DEL: they corrupt logs, headers and file names.
    if any(unicodedata.category(ch) == "Cc" for ch in key):
        raise InvalidObjectKey("object key must not contain control characters")
    if key.startswith("/"):
        raise InvalidObjectKey("object key must be relative (no leading '/')")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            # Empty segments ("a//b", "a/") would alias "a/b" / "a" on a file system.
            raise InvalidObjectKey(f"object key has a forbidden path segment: {segment!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Check a listing prefix: empty, or a key-like string that may end with ``/``."""
    if prefix:
        validate_key(prefix.removesuffix("/"))
    return prefix


def validate_bucket(bucket: str) -> str:
    """Return ``bucket`` if it follows S3 bucket naming rules, else raise :class:`StorageError`."""
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise StorageError(f"invalid bucket name: {bucket!r}")
    return bucket


def format_uri(scheme: str, bucket: str, key: str) -> str:
    """Build the canonical ``scheme://bucket/key`` URI of an object."""
    return f"{scheme}://{bucket}/{validate_key(key)}"


def parse_object_uri(scheme: str, bucket: str, uri: str) -> str:
    """Return the key of ``uri`` if it names an object of ``scheme://bucket``, else raise InvalidObjectKey."""
    prefix = f"{scheme}://{bucket}/"
    if not isinstance(uri, str) or not uri.startswith(prefix):
        raise InvalidObjectKey(f"URI does not belong to {prefix}: {uri!r}")
    return validate_key(uri[len(prefix) :])


@runtime_checkable
class ObjectStore(Protocol):
    """Async object storage; keys are validated with :func:`validate_key` by every method."""

    scheme: str
    bucket: str

    def uri(self, key: str) -> str:
        """Return ``f"{scheme}://{bucket}/{key}"``."""
        ...

    def parse_uri(self, uri: str) -> str:
        """Return the key named by ``uri``; InvalidObjectKey if it is not of this store."""
        ...

    async def put_many(
        self,
        items: Sequence[tuple[str, Callable[[], bytes]]],
        content_type: str = DEFAULT_CONTENT_TYPE,
        workers: int = 4,
        skip_existing: bool = True,
    ) -> int:
        """Store many objects in one go (bytes from callables, read on worker threads); returns how many."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        """Store ``data`` under ``key``, replacing any previous object."""
        ...

    async def put_file(self, key: str, path: Path, content_type: str = DEFAULT_CONTENT_TYPE) -> ObjectInfo:
        """Store the file at ``path``, streaming it (never read whole)."""
        ...

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ObjectInfo:
        """Store the concatenation of ``chunks`` with flat memory use."""
        ...

    # Declared with plain ``def``: implementations are ``async def`` generators, whose call
    # returns an AsyncIterator directly (an ``async def`` here would mean a coroutine).
    def open_stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield the object's bytes in chunks; ObjectNotFound (on first iteration) if missing."""
        ...

    async def get_file(self, key: str, dest: Path) -> Path:
        """Download to ``dest`` atomically (temp sibling, then rename) and return ``dest``."""
        ...

    async def stat(self, key: str) -> ObjectInfo:
        """Describe the object; ObjectNotFound if missing."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object exists under ``key``."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    async def list_keys(self, prefix: str = "") -> list[str]:
        """Return the sorted keys starting with ``prefix``."""
        ...

    async def check(self) -> None:
        """Raise StorageError if the store cannot be used (health probe)."""
        ...

    async def sync(self) -> None:
        """Make every completed write durable; a no-op where each write already is (S3)."""
        ...

    async def list_modified(self, prefix: str = "") -> list[tuple[str, datetime]]:
        """Return the sorted keys starting with ``prefix``, each with its last-modified time (UTC)."""
        ...

    def staging(self, sidecars: bool = True) -> Staging:
        """A batch of staged writes (see :mod:`.staging`); drivers without one stage nothing.

        ``sidecars=False``: the driver may skip per-object metadata (sha256, content type) that
        ``stat`` would report, for keys that name their content anyway.
        """
        ...
