"""Canary weights: a deployment splits its requests 80/20 between its export and a second export of
the same task; every answer names its export (predict, OIP REST and gRPC), the observed share is within
a binomial tolerance, the split is in deployment.changed.v1, and ending it returns all traffic to the
current export. Every rule of a split is refused with its own code, through the gateway."""

from __future__ import annotations

import io
import math
import uuid
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from PIL import Image

from vtp_localstack.stack import LocalStack

from .conftest import unique
from .test_deployments import _events

pytestmark = pytest.mark.integration
REQUESTS, CANARY = 200, 20


@pytest.fixture(scope="module")
def deployment(stack: LocalStack, admin_token: str, onnx_export: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=60) as api:
        created = api.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("canary")})
    assert created.status_code == 201, created.text
    return dict(created.json())


def _split(admin: httpx.Client, deployment_id: str, shares: list[tuple[str, int]]) -> httpx.Response:
    traffic = [{"export_id": e, "weight": w} for e, w in shares]
    return admin.patch(f"/api/v1/deployments/{deployment_id}", json={"traffic": traffic}, timeout=120)


def _answers(admin: httpx.Client, deployment_id: str, n: int) -> list[str]:
    """The export that answered each of n predicts (a blank 64x48 PNG)."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 200)).save(buffer, "PNG")
    image, out = buffer.getvalue(), []
    for _ in range(n):
        response = admin.post(
            f"/api/v1/deployments/{deployment_id}/predict", content=image, headers={"Content-Type": "image/png"}
        )
        assert response.status_code == 200, response.text
        out.append(response.json()["export_id"])
    return out


def test_an_80_20_split_answers_from_both_exports_in_proportion_and_ends(
    admin: httpx.Client,
    stack: LocalStack,
    admin_token: str,
    deployment: dict,
    onnx_export: dict,
    second_export: dict,
):
    did, first, second = deployment["id"], onnx_export["id"], second_export["id"]
    split = _split(admin, did, [(first, 100 - CANARY), (second, CANARY)])
    assert split.status_code == 200, split.text
    assert split.json()["export_id"] == first
    assert [(s["export_id"], s["weight"]) for s in split.json()["traffic"]] == [(first, 80), (second, 20)]

    answers = _answers(admin, did, REQUESTS)
    assert set(answers) == {first, second}
    expected, sd = REQUESTS * CANARY / 100, math.sqrt(REQUESTS * CANARY / 100 * (1 - CANARY / 100))
    assert abs(answers.count(second) - expected) <= 4 * sd, (answers.count(second), expected, sd)  # p < 1e-4

    # the Open Inference Protocol names the export that answered too, over REST and gRPC
    auth = {"Authorization": f"Bearer {admin_token}"}
    rest = triton_http.InferenceServerClient(url=urlparse(stack.cfg.gateway_url).netloc)
    grpc_client = triton_grpc.InferenceServerClient(url=f"{stack.cfg.host}:{stack.cfg.inference_grpc_port}")
    x = np.zeros((1, 3, 64, 64), np.float32)
    versions = {first: str(onnx_export["version"]), second: str(second_export["version"])}
    seen: set[str] = set()
    for _ in range(30):
        tensor = triton_http.InferInput("images", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        body = rest.infer(deployment["name"], [tensor], headers=dict(auth)).get_response()
        seen.add(body["parameters"]["export_id"])
        assert body["model_version"] == versions[body["parameters"]["export_id"]]
    assert seen == {first, second}
    pinned = triton_grpc.InferInput("images", list(x.shape), "FP32")
    pinned.set_data_from_numpy(x)
    version = str(second_export["version"])
    for _ in range(5):  # a version asked for is the export that answers
        result = grpc_client.infer(
            deployment["name"], [pinned], model_version=version, headers={"authorization": auth["Authorization"]}
        ).get_response()
        assert result.parameters["export_id"].string_param == second and result.model_version == version
    meta = rest.get_model_metadata(deployment["name"], headers=dict(auth))
    assert sorted(meta["versions"]) == sorted([str(onnx_export["version"]), version])

    ended = _split(admin, did, [(first, 100)])
    assert ended.status_code == 200, ended.text
    assert [(s["export_id"], s["weight"]) for s in ended.json()["traffic"]] == [(first, 100)]
    assert set(_answers(admin, did, 30)) == {first}

    events = [e for e in _events(stack, did) if e["status"] == "updated"]
    assert [(s["export_id"], s["weight"]) for s in events[-2]["traffic"]] == [(first, 80), (second, 20)]
    assert [(s["export_id"], s["weight"]) for s in events[-1]["traffic"]] == [(first, 100)]


def test_every_rule_of_a_split_is_refused_with_its_code(
    admin: httpx.Client, deployment: dict, onnx_export: dict, second_export: dict
):
    did, first, second = deployment["id"], onnx_export["id"], second_export["id"]

    def refused(body: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
        response = admin.patch(f"/api/v1/deployments/{did}", json=body, timeout=120)
        assert response.status_code == 422, response.text
        return response.json()["code"], [(e["code"], e["pointer"]) for e in response.json().get("errors", [])]

    def shares(*pairs: tuple[str, int]) -> dict[str, Any]:
        return {"traffic": [{"export_id": e, "weight": w} for e, w in pairs]}

    assert refused(shares((first, 70), (second, 20)))[0] == "traffic_weights_invalid"
    assert refused(shares((first, 100), (second, 0)))[0] == "traffic_weights_invalid"
    third = str(uuid.uuid4())
    assert refused(shares((first, 50), (second, 25), (third, 25)))[0] == "traffic_too_many_exports"
    assert refused(shares((second, 50), (third, 50)))[0] == "traffic_current_export_missing"
    code, errors = refused(shares((first, 50), (first, 40)))  # every problem at once
    assert code == "validation_failed"
    assert {c for c, _ in errors} == {"traffic_duplicate_export", "traffic_weights_invalid"}
    missing = ("export_not_found", [("export_not_found", "#/body/traffic/1/export_id")])
    assert refused(shares((first, 80), (third, 20))) == missing
    assert refused({**shares((first, 80), (second, 20)), "conf": 0.5})[0] == "traffic_not_alone"
    assert refused(shares((first, 150)))[0] == "validation_failed"
    assert refused({"traffic": []})[0] == "validation_failed"
    after = admin.get(f"/api/v1/deployments/{did}").json()  # nothing changed
    assert after["export_id"] == first and [s["weight"] for s in after["traffic"]] == [100]
