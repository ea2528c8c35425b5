"""Process entry point shared by every service: logging, then uvicorn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from vtp_runtime.logging import configure_logging
from vtp_runtime.settings import ServiceSettings


def serve(settings: ServiceSettings, create_app: Callable[[], FastAPI], **uvicorn_options: Any) -> None:
    """Run one service until SIGTERM/SIGINT; shutdown drains through the app's lifespan."""
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        **uvicorn_options,
    )
