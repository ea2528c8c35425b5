"""Observability through the gateway: the caller's W3C traceparent comes back with its trace id (the
gateway passes it both ways; the replica makes its own span), as it does from a gRPC ModelInfer (in the
answer's initial metadata), and the replica's /metrics has the deployment's latency histograms (predict,
OIP infer over REST and gRPC), the model load time and the cache gauges."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc

from .conftest import metric_value, scrape_metrics, unique

pytestmark = pytest.mark.integration


def _traceparent() -> tuple[str, str]:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, f"00-{trace_id}-{parent}-01"


def test_trace_context_comes_back_over_http_and_grpc_and_metrics_show_histograms_and_cache(
    stack: Any, admin: httpx.Client, admin_token: str, onnx_export: dict[str, Any], photos: dict[str, Path]
):
    response = admin.post("/api/v1/deployments", json={"export_id": onnx_export["id"], "name": unique("observed")})
    assert response.status_code == 201 and response.json()["status"] == "ready", response.text
    deployment = response.json()

    trace_id, header = _traceparent()
    photo = next(iter(photos.values())).read_bytes()
    predicted = admin.post(
        f"/api/v1/deployments/{deployment['id']}/predict",
        content=photo,
        headers={"Content-Type": "image/jpeg", "traceparent": header},
    )
    assert predicted.status_code == 200, predicted.text
    answered = predicted.headers["traceparent"].split("-")
    assert answered[1] == trace_id and answered[2] != header.split("-")[2]  # same trace, the replica's own span

    fresh = admin.get(f"/api/v1/deployments/{deployment['id']}")  # no traceparent sent: one is made
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", fresh.headers["traceparent"])

    tensor = {"name": "images", "shape": [1, 3, 64, 64], "datatype": "FP32", "data": [0.5] * (3 * 64 * 64)}
    inferred = admin.post(f"/v2/models/{deployment['name']}/infer", json={"inputs": [tensor]})
    assert inferred.status_code == 200, inferred.text

    # gRPC ModelInfer (the replica's own port): the caller's trace comes back in the initial metadata.
    trace_id, header = _traceparent()
    request = triton_grpc.service_pb2.ModelInferRequest(model_name=deployment["name"])
    request.inputs.add(name="images", datatype="FP32", shape=[1, 3, 64, 64])
    request.raw_input_contents.append(np.full((1, 3, 64, 64), 0.5, "<f4").tobytes())
    with grpc.insecure_channel(f"{stack.cfg.host}:{stack.cfg.inference_grpc_port}") as channel:
        stub = triton_grpc.service_pb2_grpc.GRPCInferenceServiceStub(channel)
        metadata = [("authorization", f"Bearer {admin_token}"), ("traceparent", header)]
        answer, call = stub.ModelInfer.with_call(request, metadata=metadata, timeout=60)
    assert answer.outputs[0].name == "output0"
    [answered_grpc] = [v for k, v in call.initial_metadata() if k == "traceparent"]
    assert answered_grpc.split("-")[1] == trace_id and answered_grpc.split("-")[2] != header.split("-")[2]

    texts = scrape_metrics(stack, admin_token)
    text = "\n".join(texts)
    assert "# TYPE vtp_inference_predict_seconds histogram" in text
    assert "# TYPE vtp_inference_infer_seconds histogram" in text
    assert "# TYPE vtp_inference_grpc_infer_seconds histogram" in text
    for name in ("vtp_inference_predict_seconds", "vtp_inference_infer_seconds", "vtp_inference_grpc_infer_seconds"):
        labels = f'deployment="{deployment["id"]}"'
        assert metric_value(texts, f"{name}_count{{{labels}}}") == 1
        assert metric_value(texts, f'{name}_bucket{{{labels},le="+Inf"}}') == 1
        assert metric_value(texts, f"{name}_sum{{{labels}}}") > 0
        served = next(t for t in texts if f"{name}_count{{{labels}}}" in t)
        buckets = re.findall(rf'^{name}_bucket{{{re.escape(labels)},le="([^"]+)"}} (\S+)$', served, re.MULTILINE)
        counts = [float(c) for _, c in buckets]
        assert len(buckets) > 2 and buckets[-1][0] == "+Inf" and counts == sorted(counts)  # cumulative
    assert "# TYPE vtp_inference_model_load_seconds histogram" in text
    assert metric_value(texts, 'vtp_inference_model_load_seconds_count{runtime="onnxruntime"}') >= 1
    assert "# TYPE vtp_inference_model_cache_bytes gauge" in text
    assert metric_value(texts, "vtp_inference_model_cache_bytes") > 0
    assert metric_value(texts, "vtp_inference_model_cache_models") >= 1
    assert metric_value(texts, "vtp_inference_model_cache_budget_bytes") > 0
