"""The chaos suite's own stack, its dataset and webhook receiver, and the recovery summary.

Fault injection kills and restarts processes, so it never touches the session stack other tests
share: this package starts an isolated stack of its own (free ports, its own temp dir). The jobs
service's outbox relay runs as a separate process here (``standalone_relays``), so the relay can
be killed on its own. Run with ``make chaos`` (``pytest -m chaos``); ``make test`` leaves it out.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vtp_dice.sample import generate, zip_dataset
from vtp_localstack.ports import isolated_config
from vtp_localstack.stack import LocalStack

from ..conftest import TEST_SERVICE_LIMITS
from ..integration.datasets.conftest import upload
from ..integration.notifier.webhook_receiver import Receiver
from .journey import Journey
from .recovery import RESULTS, summary_lines

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log would bury the failures
CHAOS_ENV = TEST_SERVICE_LIMITS | {
    # A queued job nobody took (its command lost with the broker) is handed to the runners again.
    "VTP_QUEUED_REPUBLISH_SECONDS": "6",
}


# The services of the journey under test; export and inference take no part in it.
CHAOS_SERVICES = ("identity", "jobs", "datasets", "trainer-runner", "notifier")


class ChaosStack(LocalStack):
    """The stack of the journey's services; `up()` restarts whichever of them died."""

    def up(self, services: tuple[str, ...] = CHAOS_SERVICES, gateway: bool = True) -> list[str]:
        return super().up(services, gateway)


@pytest.fixture(scope="package")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: dict[str, str | bool]) -> Iterator[LocalStack]:
    run_dir = Path(tmp_path_factory.mktemp("vtp-chaos"))
    cfg = isolated_config(
        run_dir,
        kafka_topic_partitions=3,
        extra_service_env=CHAOS_ENV,
        standalone_relays=["jobs"],
        external_kafka_bootstrap=None,  # broker loss is one of the scenarios: always a broker of our own
        external_postgres_url=None,  # so is a PostgreSQL restart
        external_redis_url=os.environ.get("VTP_TEST_REDIS_URL"),
        **s3_endpoint,
    )
    local = ChaosStack(cfg)
    try:
        local.up()
        yield local
    finally:
        local.down()


@pytest.fixture(scope="package")
def chaos_admin_token(chaos_stack: LocalStack) -> str:
    return (chaos_stack.cfg.run_path / "admin-token").read_text().strip()


@pytest.fixture(scope="package")
def chaos_admin(chaos_stack: LocalStack, chaos_admin_token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {chaos_admin_token}"}
    with httpx.Client(base_url=chaos_stack.cfg.gateway_url, timeout=30, headers=headers) as client:
        yield client


@pytest.fixture(scope="package")
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def train_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small detection dataset that trains an epoch in a few seconds on a CPU."""
    root = tmp_path_factory.mktemp("chaos-train")
    return zip_dataset(generate(root / "d", images=24, size=(96, 96), seed=7), root / "d.zip").read_bytes()


@pytest.fixture(scope="package")
def upload_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The dataset uploaded while a service dies: big enough that the upload takes a while."""
    root = tmp_path_factory.mktemp("chaos-upload")
    return zip_dataset(generate(root / "d", images=160, size=(160, 128), seed=11), root / "d.zip").read_bytes()


@pytest.fixture(scope="package")
def reference_upload(chaos_admin: httpx.Client, upload_zip: bytes) -> dict[str, object]:
    """What an undisturbed upload of `upload_zip` stores (content hash, image count)."""
    response = upload(chaos_admin, upload_zip, f"reference-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.fixture(scope="package")
def journey(chaos_stack: LocalStack, chaos_admin: httpx.Client, receiver: Receiver, train_zip: bytes) -> Journey:
    """One project with its webhook subscription and training dataset, shared by the scenarios
    (each checks only its own jobs' events)."""
    return Journey.begin(chaos_admin, chaos_stack, receiver, train_zip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print each scenario's result and recovery times, so they appear in CI's output."""
    if not RESULTS:
        return
    terminalreporter.section("fault injection: recovery")
    for line in summary_lines():
        terminalreporter.write_line(line)
    if path := os.environ.get("VTP_CHAOS_SUMMARY"):
        Path(path).write_text(json.dumps(RESULTS, indent=2))
