"""A route whose database or cache is down answers 503 problem+json, a real bug still 500.

The errors are real: SQLAlchemy over asyncpg and redis-py against a port nothing listens on.
"""

from __future__ import annotations

import socket

import httpx
import redis.asyncio as aioredis
import sqlalchemy as sa
from fakes import GOOD_TOKEN, FakeVerifier
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import create_async_engine

from vtp_runtime.http.app import AppParts, build_app

PROBLEM = "application/problem+json"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends: connections are refused


def _router() -> APIRouter:
    router = APIRouter()
    port = _closed_port()

    @router.get("/api/v1/db")
    async def db() -> None:
        engine = create_async_engine(f"postgresql+asyncpg://u:p@127.0.0.1:{port}/x")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        finally:
            await engine.dispose()

    @router.get("/api/v1/cache")
    async def cache() -> None:
        client = aioredis.from_url(f"redis://127.0.0.1:{port}/0")
        try:
            await client.ping()
        finally:
            await client.aclose()

    @router.get("/api/v1/constraint")
    async def constraint() -> None:
        raise sa.exc.IntegrityError("INSERT ...", {}, Exception("duplicate key"))

    return router


def _client() -> httpx.AsyncClient:
    app = build_app(AppParts("svc", "1", FakeVerifier(), routers=[_router()]))
    headers = {"Authorization": f"Bearer {GOOD_TOKEN}"}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers)


async def test_database_or_cache_down_is_503_problem():
    async with _client() as client:
        for path in ("/api/v1/db", "/api/v1/cache"):
            response = await client.get(path)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"] == PROBLEM and response.headers["retry-after"] == "5"
            body = response.json()
            assert body["code"] == "dependency_unavailable" and body["instance"] == path
            assert "127.0.0.1" not in response.text, "no connection details leak"


async def test_a_database_error_that_is_not_an_outage_stays_500():
    async with _client() as client:
        response = await client.get("/api/v1/constraint")
    assert response.status_code == 500 and response.json()["code"] == "internal_error"
