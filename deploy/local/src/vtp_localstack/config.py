"""Where the local stack lives and listens; every value comes from the environment."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Service name -> offset from service_port_base; the gateway app is the last one.
SERVICE_PORT_OFFSETS: dict[str, int] = {
    "identity": 1,
    "jobs": 2,
    "datasets": 3,
    "trainer-runner": 4,
    "export": 5,
    "inference": 6,
    "notifier": 7,
    "gateway": 8,
}


class StackConfig(BaseSettings):
    """Settings of ``make up``; set ``VTP_EXTERNAL_*`` to use infrastructure you already run."""

    model_config = SettingsConfigDict(env_prefix="VTP_", extra="ignore")

    run_dir: Path = Field(Path(".vtp"), description="Logs, data, pid files and the admin token.")
    host: str = "127.0.0.1"
    gateway_port: int = 8080
    kafka_port: int = 9092
    postgres_port: int = 25432  # below the ephemeral range (32768+), so a client socket never holds it
    redis_port: int = 26379
    service_port_base: int = 8100
    inference_grpc_port: int = 8001  # the Open Inference Protocol over gRPC (Triton's customary port)
    kafka_topic_partitions: int = 6
    triton: bool = Field(True, description="Start tritonserver (the triton runtime) when it has been fetched.")
    triton_port: int = 8000  # Triton's HTTP endpoint (its customary port)
    triton_dir: Path = Field(
        default_factory=lambda: (
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vtp" / "tritonserver"
        ),
        description="Where `python -m vtp_localstack.triton fetch` unpacks the server (make setup).",
    )

    external_kafka_bootstrap: str | None = Field(None, description="Use this Kafka instead of the local Tansu broker.")
    external_postgres_url: str | None = Field(
        None, description="postgresql://user:pass@host:port/postgres of a server to create the service databases on."
    )
    external_redis_url: str | None = Field(None, description="redis://host:port of an existing Redis.")

    s3_endpoint: str | None = Field(None, description="Passed to services: use S3 instead of the local directory.")
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_secure: bool = True
    s3_region: str | None = None
    storage_bucket: str = "vtp"
    standalone_relays: list[str] = Field(
        default_factory=list,
        description="Services whose outbox relay runs as its own process `<service>-outbox-relay` (JSON list).",
    )
    export_toolchains: Path = Field(
        Path(".venv-exporters/toolchains.json"),
        description="Format -> Python of the heavy export toolchains (`make setup-exporters` writes it); given to"
        " the export service as VTP_EXPORT_TOOLCHAIN_PYTHONS when the file exists.",
    )
    replicas: dict[str, int] = Field(
        default_factory=dict,
        description='Processes per service, e.g. {"inference": 2} (JSON); the gateway balances them. Default 1.',
    )
    replica_port_base: int | None = Field(
        None, description="Replica k (2, 3, ...) of a service listens on base + 10 x its offset + k - 1 (default +100)"
    )
    extra_service_env: dict[str, str] = Field(
        default_factory=dict, description="Extra VTP_* settings given to every service, as JSON (e.g. upload limits)."
    )

    @property
    def run_path(self) -> Path:
        return self.run_dir.resolve()

    @property
    def kafka_bootstrap(self) -> str:
        return self.external_kafka_bootstrap or f"{self.host}:{self.kafka_port}"

    @property
    def postgres_admin_url(self) -> str:
        """A libpq URL of the server that holds the service databases."""
        return self.external_postgres_url or f"postgresql://postgres@{self.host}:{self.postgres_port}/postgres"

    @property
    def redis_url(self) -> str:
        return self.external_redis_url or f"redis://{self.host}:{self.redis_port}/0"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    def service_port(self, name: str) -> int:
        return self.service_port_base + SERVICE_PORT_OFFSETS[name]

    def replica_ports(self, name: str) -> list[int]:
        """The ports of a service's processes: its own port first, then consecutive ports of its extra replicas."""
        base = self.replica_port_base if self.replica_port_base is not None else self.service_port_base + 100
        first = base + 10 * SERVICE_PORT_OFFSETS[name]
        return [self.service_port(name), *(first + k for k in range(1, max(1, self.replicas.get(name, 1))))]

    def service_url(self, name: str) -> str:
        return f"http://{self.host}:{self.service_port(name)}"

    def database_url(self, service: str) -> str:
        """The asyncpg URL of one service's own database."""
        base = self.postgres_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        return f"{base}/{database_name(service)}"


def database_name(service: str) -> str:
    return "vtp_" + service.replace("-", "_")
