"""Segment, pose and classify on the triton runtime (the stack's tritonserver, Python backend wrapping ONNX
Runtime): each task's ONNX export, deployed with `runtime: "triton"`, is loaded into Triton with every
output of its config.pbtxt, answers the package's photos as its ONNX Runtime deployment does, and answers
the Open Inference Protocol (REST and gRPC, every output) with the ONNX Runtime deployment's tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http

from vtp_localstack import triton
from vtp_localstack.stack import LocalStack

from ..inference.conftest import oip_tensor
from .alike import assert_alike
from .conftest import TASKS

pytestmark = pytest.mark.integration
IMGSZ = 64


@pytest.fixture(scope="module")
def triton_deployments(
    stack: LocalStack, admin_token: str, task_exports: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """task -> a ready deployment of its ONNX export on the triton runtime."""
    assert triton.available(stack.cfg), "tritonserver is not fetched: run `python -m vtp_localstack.triton fetch`"
    found = {}
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=stack.cfg.gateway_url, headers=headers, timeout=120) as admin:
        for task in TASKS:
            export = task_exports[task]
            body = {"export_id": export["id"], "name": f"{task}-triton-{export['id'][:8]}", "runtime": "triton"}
            response = admin.post("/api/v1/deployments", json=body)
            assert response.status_code == 201 and response.json()["status"] == "ready", response.text
            assert response.json()["task_type"] == task and response.json()["runtime"] == "triton"
            found[task] = response.json()
    return found


def test_each_task_is_loaded_into_triton_with_every_output(stack: LocalStack, triton_deployments: dict):
    server = triton_http.InferenceServerClient(f"{stack.cfg.host}:{stack.cfg.triton_port}")
    outputs = {}
    for task in TASKS:
        deployment = triton_deployments[task]
        # Named by the deployment, its preparation's own random part and the model's sha256.
        [folder] = triton.model_repository(stack.cfg).glob(
            f"vtp-{deployment['id']}-*-{deployment['model']['sha256'][:12]}"
        )
        name = folder.name
        assert server.is_model_ready(name), task  # loaded through Triton's repository API
        config = (triton.model_repository(stack.cfg) / name / "config.pbtxt").read_text()
        assert 'backend: "python"' in config, task
        outputs[task] = [o["name"] for o in server.get_model_metadata(name)["outputs"]]
    assert outputs == {"segment": ["output0", "output1"], "pose": ["output0"], "classify": ["output0"]}


def test_segment_on_triton_answers_as_onnxruntime(
    admin: httpx.Client, deployments: dict, triton_deployments: dict, photos: dict[str, Path]
):
    assert assert_alike(admin, "segment", deployments["segment"], triton_deployments["segment"], photos) > 0


def test_pose_on_triton_answers_as_onnxruntime(
    admin: httpx.Client, deployments: dict, triton_deployments: dict, photos: dict[str, Path]
):
    assert assert_alike(admin, "pose", deployments["pose"], triton_deployments["pose"], photos) > 0


def test_classify_on_triton_answers_as_onnxruntime(
    admin: httpx.Client, deployments: dict, triton_deployments: dict, photos: dict[str, Path]
):
    assert assert_alike(admin, "classify", deployments["classify"], triton_deployments["classify"], photos) > 0


def test_oip_metadata_of_triton_models_lists_the_onnxruntime_deployments_outputs(
    admin: httpx.Client, deployments: dict, triton_deployments: dict
):
    for task in TASKS:
        ours = admin.get(f"/v2/models/{triton_deployments[task]['name']}").json()
        theirs = admin.get(f"/v2/models/{deployments[task]['name']}").json()
        assert ours["outputs"] == theirs["outputs"] and ours["inputs"] == theirs["inputs"], task


def test_oip_rest_and_grpc_infer_on_triton_answer_every_output_as_onnxruntime(
    stack: LocalStack, admin_token: str, deployments: dict, triton_deployments: dict, photos: dict[str, Path]
):
    """tritonclient.http (binary tensors) and .grpc, no output named: every output, as ONNX Runtime's."""
    import tritonclient.grpc as triton_grpc

    tensor = oip_tensor(photos["vga-640x480.jpg"], IMGSZ)
    rest = triton_http.InferenceServerClient(url=urlparse(stack.cfg.gateway_url).netloc)
    grpc = triton_grpc.InferenceServerClient(url=f"{stack.cfg.host}:{stack.cfg.inference_grpc_port}")
    for task in TASKS:
        answers = {}
        for runtime, deployment in (("onnxruntime", deployments[task]), ("triton", triton_deployments[task])):
            inp = triton_http.InferInput("images", list(tensor.shape), "FP32")
            inp.set_data_from_numpy(tensor, binary_data=True)
            via_rest = rest.infer(deployment["name"], [inp], headers={"Authorization": f"Bearer {admin_token}"})
            names = [o["name"] for o in via_rest.get_response()["outputs"]]
            ginp = triton_grpc.InferInput("images", list(tensor.shape), "FP32")
            ginp.set_data_from_numpy(tensor)
            via_grpc = grpc.infer(deployment["name"], [ginp], headers={"authorization": f"Bearer {admin_token}"})
            assert [o.name for o in via_grpc.get_response().outputs] == names, (task, runtime)
            answers[runtime] = {n: (via_rest.as_numpy(n), via_grpc.as_numpy(n)) for n in names}
        assert list(answers["triton"]) == list(answers["onnxruntime"]), task
        assert len(answers["triton"]) == (2 if task == "segment" else 1), task
        for name, (rest_out, grpc_out) in answers["triton"].items():
            reference = answers["onnxruntime"][name][0]
            assert rest_out.shape == grpc_out.shape == reference.shape, (task, name)
            assert np.abs(rest_out - reference).max() < 1e-4 and np.abs(grpc_out - reference).max() < 1e-4, task
