"""Settings every service reads from the environment (prefix ``VTP_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StorageSettings(BaseSettings):
    """Object storage: a local directory unless S3 settings are given."""

    model_config = SettingsConfigDict(env_prefix="VTP_", extra="ignore")

    storage_dir: str = Field(".vtp/data/objects", description="Root of the local-directory driver.")
    s3_endpoint: str | None = Field(None, description="host:port of an S3 API (MinIO, AWS, R2); enables the S3 driver.")
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str | None = None
    s3_secure: bool = Field(True, description="Use HTTPS to reach the S3 endpoint.")
    storage_bucket: str = Field("vtp", description="Bucket (S3) or top folder (local) of every object.")
    storage_sync_each_write: bool = Field(
        True, description="Local driver: fsync every write (off: callers sync once per batch, much faster)."
    )


class ServiceSettings(StorageSettings):
    """Base settings of a service process; each service subclasses it."""

    service_name: str = "service"
    environment: str = Field(
        "production", description="`local`: the Docker-free local stack (it sets this); dev-only shortcuts allowed."
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_idempotent_producer: bool = Field(
        False, description="Enable the idempotent producer (Apache Kafka: yes; the local Tansu broker lacks it)."
    )
    kafka_topic_partitions: int = Field(6, ge=1, description="Partitions of topics the service creates if missing.")
    consumer_max_tries: int = Field(
        5, ge=1, description="Tries of an event whose handler keeps failing (not an outage) before it is dead-lettered."
    )

    database_url: str | None = Field(None, description="postgresql+asyncpg://user:pass@host:port/db")
    redis_url: str | None = Field(None, description="redis://host:port/0")

    identity_url: str = Field("http://127.0.0.1:8101", description="Base URL of the identity service (token checks).")
    token_cache_seconds: float = Field(
        30.0, ge=0, description="How long a verified token is trusted without asking again."
    )

    outbox_relay_enabled: bool = Field(True, description="Run the outbox relay inside this process.")
    outbox_poll_seconds: float = Field(0.2, gt=0)
    outbox_idle_poll_seconds: float = Field(
        2.0, gt=0, description="In-process relay: the poll interval doubles up to this while nothing is pending."
    )
    outbox_retention_hours: float = Field(72.0, gt=0, description="How long published outbox rows are kept.")
    processed_events_retention_hours: float = Field(
        336.0, gt=0, description="How long applied event ids are kept; must outlast the topics' retention."
    )
