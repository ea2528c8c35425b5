"""The platform's services as local processes, configured only through the environment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vtp_localstack import triton
from vtp_localstack.config import StackConfig
from vtp_localstack.processes import ProcessSpec

# Which infrastructure each service is given (mirrors each service's bootstrap).
SERVICE_NEEDS: dict[str, frozenset[str]] = {
    "identity": frozenset({"postgres"}),
    "jobs": frozenset({"postgres", "kafka"}),
    "datasets": frozenset({"postgres", "kafka", "storage"}),
    "trainer-runner": frozenset({"kafka", "storage"}),
    "export": frozenset({"postgres", "kafka", "storage"}),
    "inference": frozenset({"postgres", "kafka", "redis", "storage"}),
    "notifier": frozenset({"postgres", "kafka", "redis"}),
}
SERVICES: tuple[str, ...] = tuple(SERVICE_NEEDS)


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / f"vtp-{name}")


def _storage_env(cfg: StackConfig) -> dict[str, str]:
    if cfg.s3_endpoint:
        env = {"VTP_S3_ENDPOINT": cfg.s3_endpoint, "VTP_S3_SECURE": str(cfg.s3_secure).lower()}
        optional = {"ACCESS_KEY": cfg.s3_access_key, "SECRET_KEY": cfg.s3_secret_key, "REGION": cfg.s3_region}
        env.update({f"VTP_S3_{key}": value for key, value in optional.items() if value})
    else:
        env = {"VTP_STORAGE_DIR": str(cfg.run_path / "data" / "objects")}
    return {**env, "VTP_STORAGE_BUCKET": cfg.storage_bucket}


def service_env(cfg: StackConfig, name: str) -> dict[str, str]:
    """Every setting a service process reads, as environment variables."""
    needs = SERVICE_NEEDS.get(name, frozenset())
    env = {
        "VTP_SERVICE_NAME": name,
        "VTP_ENVIRONMENT": "local",  # dev-only shortcuts, e.g. the notifier's derived webhook secret key
        "VTP_HTTP_HOST": cfg.host,
        "VTP_HTTP_PORT": str(cfg.service_port(name)),
        "VTP_IDENTITY_URL": cfg.service_url("identity"),
        "VTP_KAFKA_BOOTSTRAP_SERVERS": cfg.kafka_bootstrap,
        "VTP_KAFKA_TOPIC_PARTITIONS": str(cfg.kafka_topic_partitions),
    }
    if "postgres" in needs:
        env["VTP_DATABASE_URL"] = cfg.database_url(name)
    if "redis" in needs:
        env["VTP_REDIS_URL"] = cfg.redis_url
    if "storage" in needs:
        env.update(_storage_env(cfg))
    if name == "notifier":
        # Webhook receivers of a local stack run on this machine; production refuses loopback.
        env["VTP_WEBHOOK_ALLOWED_CIDRS"] = '["127.0.0.0/8", "::1/128"]'
    env.update(cfg.extra_service_env)
    if name == "jobs":
        env["VTP_DATASETS_URL"] = cfg.service_url("datasets")
    if name == "export":  # resolves checkpoints through jobs' and datasets' REST; runs the exporter worker too
        env["VTP_JOBS_URL"] = cfg.service_url("jobs")
        env["VTP_DATASETS_URL"] = cfg.service_url("datasets")
        env["VTP_EXPORTER_WORK_DIR"] = str(cfg.run_path / "data" / "exporter")
        if cfg.export_toolchains.is_file():  # the heavy formats' own venvs (make setup-exporters)
            env["VTP_EXPORT_TOOLCHAIN_PYTHONS"] = cfg.export_toolchains.read_text()
    if name == "inference":  # resolves and downloads exports through the export service's REST
        env["VTP_EXPORT_URL"] = cfg.service_url("export")
        env["VTP_DATASETS_URL"] = cfg.service_url("datasets")  # batches over dataset snapshots
        env["VTP_GRPC_PORT"] = str(cfg.inference_grpc_port)
        if triton.available(cfg):  # the triton runtime: the local tritonserver and its repository directory
            env["VTP_TRITON_URL"] = f"{cfg.host}:{cfg.triton_port}"
            env["VTP_TRITON_MODEL_REPOSITORY"] = str(triton.model_repository(cfg))
    if name == "identity":
        env["VTP_BOOTSTRAP_TOKEN_FILE"] = str(cfg.run_path / "admin-token")
    if name in cfg.standalone_relays:
        env["VTP_OUTBOX_RELAY_ENABLED"] = "false"  # its own process publishes (relay_spec)
    return env


def relay_spec(cfg: StackConfig, name: str) -> ProcessSpec:
    """`vtp-outbox-relay` on service `name`'s database (for services in `cfg.standalone_relays`)."""
    env = {**service_env(cfg, name), "VTP_SERVICE_NAME": f"{name}-outbox-relay"}
    argv = [str(Path(sys.executable).parent / "vtp-outbox-relay")]
    return ProcessSpec(f"{name}-outbox-relay", argv, env=env, cwd=cfg.run_path)


def service_spec(cfg: StackConfig, name: str) -> ProcessSpec:
    return ProcessSpec(name, [_script(name)], env=service_env(cfg, name), port=cfg.service_port(name), cwd=cfg.run_path)


def replica_specs(cfg: StackConfig, name: str) -> list[ProcessSpec]:
    """Extra processes of a service (`cfg.replicas`), `<name>-2`, `<name>-3`, ... on their own ports.

    Only the first process serves side ports (inference's gRPC): the gateway balances HTTP only.
    """
    specs = []
    for k, port in enumerate(cfg.replica_ports(name)[1:], start=2):
        env = {**service_env(cfg, name), "VTP_HTTP_PORT": str(port)}
        if "VTP_GRPC_PORT" in env:
            env["VTP_GRPC_PORT"] = "0"
        specs.append(ProcessSpec(f"{name}-{k}", [_script(name)], env=env, port=port, cwd=cfg.run_path))
    return specs


def gateway_app_spec(cfg: StackConfig, services: tuple[str, ...] = SERVICES) -> ProcessSpec:
    """The gateway app, aggregating the health of the services this stack runs."""
    targets = {name: cfg.service_url(name) for name in services}
    env = {**service_env(cfg, "gateway"), "VTP_HEALTH_TARGETS": json.dumps(targets)}
    return ProcessSpec("gateway", [_script("gateway")], env=env, port=cfg.service_port("gateway"), cwd=cfg.run_path)
