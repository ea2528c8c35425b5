"""Concurrent preparations of the same content for one Triton deployment, on the real stack: two switches
to the same export at once, one refused at its commit (a name taken). Each preparation loads its own
Triton model, so whatever the interleaving, the refused one unloads only its own: the committed model is
ready in Triton and serves, and nothing else of the deployment is left loaded or on disk.

The interleaving that used to unload the committed model (the refused release deciding before the other
commit, unloading after it) cannot be forced from outside the replica; the service-layer test
(`services/inference/tests/test_inference_release_races.py`) replays it step by step. This one checks
the outcome on the real Triton for whatever order the two requests take.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import tritonclient.http as triton_http

from vtp_localstack import triton
from vtp_localstack.stack import LocalStack

from .test_model_files import _png
from .test_triton import _create, name_in_triton

pytestmark = pytest.mark.integration


def test_two_switches_to_the_same_export_at_once_leave_the_committed_model_loaded(
    stack: LocalStack,
    admin: httpx.Client,
    onnx_export: dict[str, Any],
    second_export: dict[str, Any],
):
    assert triton.available(stack.cfg), "tritonserver is not fetched: run `python -m vtp_localstack.triton fetch`"
    client = triton_http.InferenceServerClient(f"{stack.cfg.host}:{stack.cfg.triton_port}")
    served = _create(admin, onnx_export, "triton")
    did, taken = served["id"], _create(admin, onnx_export, "onnxruntime")["name"]
    bodies = [{"export_id": second_export["id"]}, {"export_id": second_export["id"], "name": taken}]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda b: admin.patch(f"/api/v1/deployments/{did}", json=b, timeout=120), bodies))
    assert answers[0].status_code == 200, answers[0].text
    assert answers[1].status_code == 409 and answers[1].json()["code"] == "deployment_name_taken", answers[1].text

    current, previous = name_in_triton(stack, answers[0].json()), name_in_triton(stack, served)
    assert client.is_model_ready(current)
    index = client.get_model_repository_index()
    ready = {m["name"] for m in index if m["name"].startswith(f"vtp-{did}-") and m.get("state") == "READY"}
    assert ready <= {current, previous} and current in ready, ready  # the refused one's own model is gone
    folders = {p.name for p in triton.model_repository(stack.cfg).glob(f"vtp-{did}-*")}
    assert folders == {current, previous}
    answer = admin.post(
        f"/api/v1/deployments/{did}/predict", content=_png(), headers={"Content-Type": "image/png"}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    assert admin.delete(f"/api/v1/deployments/{did}").status_code == 204
