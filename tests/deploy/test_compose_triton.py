"""Static checks of the opt-in Triton override (deploy/compose/triton-gpu.yaml): Docker is not needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from vtp_inference.settings import InferenceSettings

ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = ROOT / "deploy" / "compose" / "triton-gpu.yaml"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")


def _override() -> dict[str, Any]:
    loaded = yaml.safe_load(OVERRIDE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_triton_override_follows_the_compose_specification_and_names_real_settings() -> None:
    override = _override()
    schema = json.loads(SCHEMA_FILE.read_text())
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(override))
    environment = override["services"]["inference"]["environment"]
    fields = {f"VTP_{field}".upper() for field in InferenceSettings.model_fields}
    assert set(environment) <= fields
    InferenceSettings.model_validate({k.removeprefix("VTP_").lower(): v for k, v in environment.items()})


def test_triton_and_the_service_share_the_repository_and_triton_loads_only_on_request() -> None:
    services = _override()["services"]
    triton, inference = services["triton"], services["inference"]
    assert "--model-control-mode=explicit" in triton["command"]
    repository = next(a.split("=", 1)[1] for a in triton["command"] if a.startswith("--model-repository="))
    volume = next(v.split(":")[0] for v in triton["volumes"] if v.endswith(f":{repository}"))
    shared = inference["environment"]["VTP_TRITON_MODEL_REPOSITORY"]
    assert f"{volume}:{shared}" in inference["volumes"] and volume in _override()["volumes"]
    assert inference["environment"]["VTP_TRITON_URL"] == "triton:8000"
    assert inference["depends_on"]["triton"]["condition"] == "service_healthy"
    dockerfile = (ROOT / "services" / "inference" / "Dockerfile").read_text()
    assert f"chown vtp {shared}" in dockerfile  # a fresh volume there starts writable by the service
