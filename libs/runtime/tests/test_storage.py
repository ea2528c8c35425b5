"""Contract tests of the object-storage drivers: one suite, run against local files and a real moto S3 server."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import urllib3
from moto.server import ThreadedMotoServer

from vtp_runtime.settings import StorageSettings
from vtp_runtime.storage import (
    InvalidObjectKey,
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
    StorageError,
    store_from_settings,
    validate_key,
)

INVALID_KEYS = [
    "",
    "/etc/passwd",
    "a\\b",
    "..",
    "../escape",
    "a/../../b",
    ".",
    "./a",
    "a/.",
    "a//b",
    "a/",
    "nul\x00byte",
    "new\nline",
    "del\x7f",
    "c1\x85ctl",
    "x" * 1025,
    "é" * 513,  # 513 characters but 1026 UTF-8 bytes
    "lone\ud800surrogate",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


def _s3_store(endpoint: str, **kwargs: object) -> S3ObjectStore:
    # A fresh bucket per test keeps tests independent on the shared server.
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    return S3ObjectStore(endpoint, "testing", "testing", bucket, secure=False, region="us-east-1", **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects", "vtp")
    return _s3_store(request.getfixturevalue("s3_endpoint"), spool_dir=tmp_path)


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.asyncio
async def test_put_bytes_round_trip(store: ObjectStore) -> None:
    data = b"hello objects"
    info = await store.put_bytes("images/cat.txt", data, content_type="text/plain")
    assert (info.key, info.size_bytes, info.sha256, info.content_type) == (
        "images/cat.txt",
        len(data),
        _sha(data),
        "text/plain",
    )
    assert info.uri == f"{store.scheme}://{store.bucket}/images/cat.txt"
    assert await store.stat("images/cat.txt") == info
    assert await _collect(store.open_stream("images/cat.txt", chunk_size=4)) == data
    # Overwrite replaces the object and its metadata.
    info2 = await store.put_bytes("images/cat.txt", b"v2")
    assert await store.stat("images/cat.txt") == info2
    assert info2.sha256 == _sha(b"v2") and info2.content_type == "application/octet-stream"


@pytest.mark.asyncio
async def test_put_file_and_get_file(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    info = await store.put_file("datasets/d1/src.bin", src, content_type="application/x-test")
    assert (info.size_bytes, info.sha256) == (len(data), _sha(data))
    assert (await store.stat("datasets/d1/src.bin")).sha256 == _sha(data)

    dest = tmp_path / "out" / "nested" / "copy.bin"
    assert await store.get_file("datasets/d1/src.bin", dest) == dest
    assert dest.read_bytes() == data
    assert os.listdir(dest.parent) == ["copy.bin"]  # no temp sibling left behind


@pytest.mark.asyncio
async def test_put_stream_several_mb(store: ObjectStore) -> None:
    data = os.urandom(6 * (1 << 20) + 12_345)  # over S3's 5 MiB part size: exercises multipart
    info = await store.put_stream("big/blob.bin", _chunks(data, 1 << 20), content_type="image/png")
    assert (info.size_bytes, info.sha256) == (len(data), _sha(data))
    stat = await store.stat("big/blob.bin")
    assert (stat.size_bytes, stat.sha256, stat.content_type) == (len(data), _sha(data), "image/png")
    digest, size = hashlib.sha256(), 0
    async for chunk in store.open_stream("big/blob.bin", chunk_size=256 * 1024):
        assert len(chunk) <= 256 * 1024
        digest.update(chunk)
        size += len(chunk)
    assert (size, digest.hexdigest()) == (len(data), _sha(data))


@pytest.mark.asyncio
async def test_put_stream_failure_leaves_nothing(store: ObjectStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await store.put_stream("half.bin", broken())
    assert not await store.exists("half.bin")
    if isinstance(store, LocalObjectStore):
        assert await store.list_keys() == []


@pytest.mark.asyncio
async def test_empty_object(store: ObjectStore) -> None:
    info = await store.put_stream("empty", _chunks(b"", 1))
    assert (info.size_bytes, info.sha256) == (0, _sha(b""))
    assert await _collect(store.open_stream("empty")) == b""


@pytest.mark.asyncio
async def test_stat_exists_delete_idempotent(store: ObjectStore) -> None:
    assert not await store.exists("k/v")
    await store.put_bytes("k/v", b"x")
    assert await store.exists("k/v")
    assert not await store.exists("k")  # a "folder" of keys is not an object
    await store.delete("k/v")
    await store.delete("k/v")
    await store.delete("never/existed")
    assert not await store.exists("k/v")
    with pytest.raises(ObjectNotFound):
        await store.stat("k/v")


@pytest.mark.asyncio
async def test_missing_key_raises_object_not_found(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        await store.stat("missing.bin")
    with pytest.raises(ObjectNotFound):
        await _collect(store.open_stream("missing.bin"))
    dest = tmp_path / "dl" / "missing.bin"
    with pytest.raises(ObjectNotFound):
        await store.get_file("missing.bin", dest)
    assert not dest.exists()
    assert not dest.parent.exists() or os.listdir(dest.parent) == []


@pytest.mark.asyncio
async def test_list_keys_with_prefix(store: ObjectStore) -> None:
    keys = ["a/1", "a/2", "a/b/3", "ab", "b", "c d/é.txt"]
    for key in reversed(keys):
        await store.put_bytes(key, key.encode())
    assert await store.list_keys() == sorted(keys)
    assert await store.list_keys("a/") == ["a/1", "a/2", "a/b/3"]
    assert await store.list_keys("a") == ["a/1", "a/2", "a/b/3", "ab"]
    assert await store.list_keys("a/b") == ["a/b/3"]
    assert await store.list_keys("zzz/") == []
    with pytest.raises(InvalidObjectKey):
        await store.list_keys("../")


@pytest.mark.asyncio
async def test_uri_round_trip(store: ObjectStore) -> None:
    uri = store.uri("runs/42/model.onnx")
    assert uri == f"{store.scheme}://{store.bucket}/runs/42/model.onnx"
    assert store.parse_uri(uri) == "runs/42/model.onnx"
    other = "s3" if store.scheme == "local" else "local"
    for bad in (
        f"{other}://{store.bucket}/k",
        f"{store.scheme}://other-bucket/k",
        f"{store.scheme}://{store.bucket}x/k",
        f"{store.scheme}://{store.bucket}/",
        f"{store.scheme}://{store.bucket}/a/../../etc/passwd",
        "runs/42/model.onnx",
    ):
        with pytest.raises(InvalidObjectKey):
            store.parse_uri(bad)


@pytest.mark.asyncio
@pytest.mark.parametrize("key", INVALID_KEYS, ids=repr)
async def test_invalid_keys_rejected(store: ObjectStore, key: str, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    with pytest.raises(InvalidObjectKey):
        validate_key(key)
    with pytest.raises(InvalidObjectKey):
        store.uri(key)
    with pytest.raises(InvalidObjectKey):
        await store.put_bytes(key, b"x")
    with pytest.raises(InvalidObjectKey):
        await store.put_file(key, src)
    with pytest.raises(InvalidObjectKey):
        await store.put_stream(key, _chunks(b"x", 1))
    with pytest.raises(InvalidObjectKey):
        await _collect(store.open_stream(key))
    with pytest.raises(InvalidObjectKey):
        await store.get_file(key, tmp_path / "out")
    for method in (store.stat, store.exists, store.delete):
        with pytest.raises(InvalidObjectKey):
            await method(key)


def test_validate_key_accepts_reasonable_keys() -> None:
    for key in ("a", "a/b/c.jpg", "x" * 1024, ".hidden/..dots../file.", "ünïcode/ファイル", "a b+c=d"):
        assert validate_key(key) == key


@pytest.mark.asyncio
async def test_check_succeeds(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    await store.check()
    await store.check()


@pytest.mark.asyncio
async def test_s3_creates_bucket_on_first_use(s3_endpoint: str) -> None:
    store = _s3_store(s3_endpoint)
    await store.put_bytes("k", b"v")  # no ensure_bucket()/check() first
    assert await store.list_keys() == ["k"]


@pytest.mark.asyncio
async def test_check_fails_on_unusable_store(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError):
        await LocalObjectStore(tmp_path / "file", "vtp").check()
    # Unreachable endpoint: urllib3 errors must surface as StorageError, never leak.
    no_retry = urllib3.PoolManager(timeout=1.0, retries=urllib3.Retry(total=0))
    s3 = S3ObjectStore(
        f"127.0.0.1:{_free_port()}", "k", "s", "vtp", secure=False, region="us-east-1", http_client=no_retry
    )
    for call in (s3.check(), s3.stat("k"), s3.put_bytes("k", b"x")):
        with pytest.raises(StorageError) as excinfo:
            await call
        assert type(excinfo.value) is StorageError


@pytest.mark.asyncio
async def test_local_stale_sidecar_reports_unknown_hash(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, "vtp")
    await store.put_bytes("k", b"original")
    (tmp_path / "vtp" / "k").write_bytes(b"changed behind our back")
    info = await store.stat("k")
    assert (info.size_bytes, info.sha256, info.content_type) == (23, None, None)


def test_factory_picks_driver(tmp_path: Path) -> None:
    local = store_from_settings(
        StorageSettings(storage_dir=str(tmp_path), s3_endpoint=None, s3_secure=True, storage_bucket="vtp")
    )
    assert isinstance(local, LocalObjectStore) and local.bucket == "vtp"
    s3 = store_from_settings(
        StorageSettings(
            storage_dir=str(tmp_path),
            s3_endpoint="127.0.0.1:9000",
            s3_access_key="k",
            s3_secret_key="s",
            s3_secure=False,
            storage_bucket="media",
        )
    )
    assert isinstance(s3, S3ObjectStore) and s3.scheme == "s3" and s3.bucket == "media"
    as_url = store_from_settings(
        StorageSettings(storage_dir="x", s3_endpoint="http://127.0.0.1:9000", s3_secure=True, storage_bucket="media")
    )
    assert isinstance(as_url, S3ObjectStore)
