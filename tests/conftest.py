"""Session fixtures: the real local stack (Tansu, PostgreSQL, Redis, moto S3, services, Caddy).

Point tests at infrastructure you already run with ``VTP_TEST_KAFKA_BOOTSTRAP``,
``VTP_TEST_POSTGRES_URL`` (a libpq URL of a server where databases may be
created), ``VTP_TEST_REDIS_URL`` and ``VTP_TEST_S3_ENDPOINT`` (+ ``_ACCESS_KEY``,
``_SECRET_KEY``); whatever is not given is started here on free ports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vtp_localstack.config import StackConfig
from vtp_localstack.ports import free_port, isolated_config
from vtp_localstack.stack import LocalStack

TEST_SERVICE_LIMITS = {
    "VTP_MAX_UPLOAD_BYTES": str(40 << 20),
    "VTP_MAX_ARCHIVE_ENTRIES": "300",
    "VTP_MAX_UNCOMPRESSED_BYTES": str(30 << 20),
    "VTP_MAX_COMPRESSION_RATIO": "100",
    "VTP_MAX_JSON_BYTES": str(2 << 20),
    "VTP_MAX_IMAGE_PIXELS": "4000000",
    "VTP_MAX_PROBLEMS": "50",
    # Jobs notice a silent runner within seconds, not the production half minute; runners beat
    # every second so a busy 2-core machine never looks silent.
    "VTP_HEARTBEAT_TIMEOUT_SECONDS": "8",
    "VTP_HEARTBEAT_CHECK_SECONDS": "0.5",
    "VTP_HEARTBEAT_SECONDS": "1",
    # Webhooks: 4 quick tries, a receiver on this machine, disabling after 10 failed tries in a row.
    "VTP_WEBHOOK_RETRY_SCHEDULE_SECONDS": "[0, 0.2, 0.2, 0.2]",
    "VTP_WEBHOOK_ALLOWED_CIDRS": '["127.0.0.0/8"]',
    "VTP_WEBHOOK_DISABLE_AFTER_FAILURES": "10",
    "VTP_WEBHOOK_POLL_SECONDS": "0.1",
    "VTP_WEBHOOK_TIMEOUT_SECONDS": "5",
    # Exports: the test-only `debug_perturb` option (a deliberately corrupted export for the parity
    # gate), and leases that expire within seconds so a lost exporter is noticed quickly.
    "VTP_EXPORT_DEBUG_OPTIONS": "true",
    "VTP_EXPORT_HEARTBEAT_SECONDS": "1",
    "VTP_EXPORT_LEASE_SECONDS": "10",
    "VTP_EXPORT_WATCHDOG_SECONDS": "1",
    # Batch inference: small chunks, and leases that expire within seconds so a lost worker's batch
    # is resumed quickly.
    "VTP_BATCH_CHUNK_SIZE": "4",
    "VTP_BATCH_HEARTBEAT_SECONDS": "1",
    "VTP_BATCH_LEASE_SECONDS": "6",
    "VTP_BATCH_WATCHDOG_SECONDS": "1",
    "VTP_BATCH_MAX_IMAGES": "40",
    # A request carrying `X-VTP-Failpoint: http.bug` raises inside the service (a stand-in for a
    # bug); nothing else changes. See vtp_runtime.http.unhandled.
    "VTP_FAILPOINTS": "http.bug",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[dict[str, str | bool]]:
    """An S3 API: the one named by VTP_TEST_S3_ENDPOINT, else moto's threaded server."""
    if endpoint := os.environ.get("VTP_TEST_S3_ENDPOINT"):
        yield {
            "s3_endpoint": endpoint,
            "s3_secure": endpoint.startswith("https"),
            "s3_access_key": os.environ.get("VTP_TEST_S3_ACCESS_KEY", ""),
            "s3_secret_key": os.environ.get("VTP_TEST_S3_SECRET_KEY", ""),
        }
        return
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "s3_endpoint": f"127.0.0.1:{port}",
            "s3_secure": False,
            "s3_access_key": "test",
            "s3_secret_key": "test-secret",
            "s3_region": "us-east-1",
        }
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stack_config(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: dict[str, str | bool]) -> StackConfig:
    run_dir = Path(tmp_path_factory.mktemp("vtp-run"))
    return isolated_config(
        run_dir,
        kafka_topic_partitions=3,
        # Small limits so hostile-input tests can trip each one with a small upload.
        extra_service_env=TEST_SERVICE_LIMITS,
        external_kafka_bootstrap=os.environ.get("VTP_TEST_KAFKA_BOOTSTRAP"),
        external_postgres_url=os.environ.get("VTP_TEST_POSTGRES_URL"),
        external_redis_url=os.environ.get("VTP_TEST_REDIS_URL"),
        # The heavy export toolchains' venvs only when asked (`make test-exporters`): the default run
        # tests the formats `make setup` installs, whatever else this machine has.
        export_toolchains=Path(os.environ.get("VTP_TEST_EXPORT_TOOLCHAINS", run_dir / "no-export-toolchains.json")),
        **s3_endpoint,
    )


@pytest.fixture(scope="session")
def stack(stack_config: StackConfig) -> Iterator[LocalStack]:
    """The whole platform, up once per test session and torn down after it."""
    local = LocalStack(stack_config)
    try:
        local.up()
        yield local
    finally:
        local.down()


@pytest.fixture(scope="session")
def admin_token(stack: LocalStack) -> str:
    return (stack.cfg.run_path / "admin-token").read_text().strip()


@pytest.fixture()
def gateway(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.cfg.gateway_url, timeout=10) as client:
        yield client


@pytest.fixture()
def admin(stack: LocalStack, admin_token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, timeout=10, headers=headers) as client:
        yield client
