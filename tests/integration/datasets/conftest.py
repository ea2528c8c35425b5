"""Fixtures for the datasets API tests: uploads through the gateway, a view of the object store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from vtp_localstack.stack import LocalStack
from vtp_runtime.settings import StorageSettings
from vtp_runtime.storage import ObjectStore, store_from_settings


def upload(api: httpx.Client, data: bytes, name: str, description: str | None = None) -> httpx.Response:
    fields = {"name": name} | ({"description": description} if description else {})
    return api.post(
        "/api/v1/datasets", data=fields, files={"file": ("dataset.zip", data, "application/zip")}, timeout=120
    )


@pytest.fixture(scope="session")
def object_store(stack: LocalStack) -> ObjectStore:
    cfg = stack.cfg
    settings = StorageSettings(
        s3_endpoint=cfg.s3_endpoint,
        s3_access_key=cfg.s3_access_key,
        s3_secret_key=cfg.s3_secret_key,
        s3_secure=cfg.s3_secure,
        s3_region=cfg.s3_region,
        storage_bucket=cfg.storage_bucket,
        storage_dir=str(cfg.run_path / "data" / "objects"),
    )
    return store_from_settings(settings)


class StoredState:
    """Datasets visible through the API plus every key in the object store."""

    def __init__(self, api: httpx.Client, store: ObjectStore) -> None:
        self.api, self.store = api, store

    def capture(self) -> tuple[int, list[str]]:
        total = self.api.get("/api/v1/datasets", params={"limit": 1}).json()["total"]
        keys = asyncio.run(self.store.list_keys(""))
        return total, keys

    @contextmanager
    def unchanged(self) -> Iterator[None]:
        before = self.capture()
        yield
        assert self.capture() == before, "a rejected upload must store nothing"


@pytest.fixture()
def stored(admin: httpx.Client, object_store: ObjectStore) -> StoredState:
    return StoredState(admin, object_store)


def error_codes(response: httpx.Response) -> list[str]:
    body: dict[str, Any] = response.json()
    return [e["code"] for e in body.get("errors", [])]
