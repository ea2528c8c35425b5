"""Composition root of the identity service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from vtp_identity import __version__
from vtp_identity.adapters.verifier import DatabaseTokenVerifier
from vtp_identity.entrypoints.http import build_router
from vtp_identity.service_layer import handlers
from vtp_identity.service_layer.unit_of_work import IdentityUnitOfWork
from vtp_identity.settings import IdentitySettings
from vtp_runtime.auth import CachingVerifier
from vtp_runtime.http.app import build_app
from vtp_runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    sessions: list[async_sessionmaker[AsyncSession]] = []

    def new_uow() -> IdentityUnitOfWork:
        return IdentityUnitOfWork(sessions[0], settings.service_name)

    verifier = CachingVerifier(DatabaseTokenVerifier(new_uow), settings.token_cache_seconds)
    runtime = ServiceRuntime(settings, __version__, verifier=verifier)
    sessions.append(runtime.use_database(MIGRATIONS))
    token_file = Path(settings.bootstrap_token_file) if settings.bootstrap_token_file else None

    async def run_bootstrap() -> None:
        await handlers.bootstrap(new_uow(), settings.bootstrap_project, token_file, settings.bootstrap_admin_token)

    runtime.parts.on_startup.append(run_bootstrap)  # after migrations, which use_database() registered
    runtime.parts.routers = [build_router(new_uow)]
    return build_app(runtime.parts)
