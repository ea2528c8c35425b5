"""The Triton model repository and adapter, with a fake Triton client: configuration, sha256, failures."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from vtp_inference.adapters.model_cache import ModelCache
from vtp_inference.adapters.runtimes import ModelInvalid, RuntimeUnavailable
from vtp_inference.adapters.triton_repository import MODEL_PY, TritonRepository, model_config, model_files
from vtp_inference.adapters.triton_runtime import TritonServer, triton_name
from vtp_inference.domain.model import RequestRefused
from vtp_inference.service_layer.commands import DeploymentRequest, Deps, _resolve

EXPORT_CONFIG = """name: "model"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [{ name: "images" data_type: TYPE_FP32 dims: [3, 64, 64] }]
output [{ name: "output0" data_type: TYPE_FP32 dims: [6, 84] }]
instance_group [{ kind: KIND_CPU count: 1 }]
dynamic_batching { max_queue_delay_microseconds: 500 }
"""
ONNX = b"not really onnx, the fake Triton does not read it"


def test_the_exports_config_becomes_a_python_backend_model_with_the_same_interface():
    config = model_config(EXPORT_CONFIG, "vtp-d1-abc", "python", 2)
    lines = config.splitlines()
    assert lines[:2] == ['name: "vtp-d1-abc"', 'backend: "python"'] and "platform" not in config
    for kept in EXPORT_CONFIG.splitlines()[2:]:
        assert kept in lines  # inputs, outputs, batching and instances as exported
    assert 'key: "intra_op_threads" value { string_value: "2" }' in config
    native = model_config(EXPORT_CONFIG, "vtp-d1-abc", "onnxruntime", 2)
    assert native.splitlines()[:2] == ['name: "vtp-d1-abc"', 'platform: "onnxruntime_onnx"']
    assert "instance_group [{ kind: KIND_AUTO count: 1 }]" in native  # a GPU where Triton has one
    assert "model.py" not in model_files(ONNX, native, "onnxruntime") and "1/model.py" in model_files(
        ONNX, config, "python"
    )
    compile(MODEL_PY, "model.py", "exec")  # the generated model is valid Python


def test_a_model_is_written_verified_and_a_tampered_copy_replaced(tmp_path: Path):
    repo = TritonRepository(tmp_path)
    files = model_files(ONNX, model_config(EXPORT_CONFIG, "m", "python", 1), "python")
    repo.write("m", files)
    assert (tmp_path / "m" / "1" / "model.onnx").read_bytes() == ONNX and repo.verified("m", files)
    (tmp_path / "m" / "1" / "model.onnx").write_bytes(b"tampered")
    assert not repo.verified("m", files)
    repo.write("m", files)
    assert repo.verified("m", files) and sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp dirs left
    repo.remove("m")
    assert not (tmp_path / "m").exists()


class FakeClient:
    def __init__(self, load_error: Exception | None = None) -> None:
        self.load_error, self.loaded, self.unloaded = load_error, [], []  # type: ignore[var-annotated]

    def is_model_ready(self, name: str) -> bool:
        return name in self.loaded

    def load_model(self, name: str) -> None:
        if self.load_error:
            raise self.load_error
        self.loaded.append(name)

    def get_model_metadata(self, name: str) -> dict[str, Any]:
        return {
            "platform": "python",
            "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, 3, 64, 64]}],
            "outputs": [{"name": "output0", "datatype": "FP32", "shape": [-1, 6, 84]}],
        }

    def unload_model(self, name: str) -> None:
        if name not in self.loaded:
            raise InferenceServerException("unknown model", status="400")
        self.unloaded.append(name)


def _server(tmp_path: Path, client: FakeClient) -> TritonServer:
    server = TritonServer("127.0.0.1:1", tmp_path, "python", 1)
    server.client = lambda: client  # type: ignore[assignment, method-assign, return-value]
    return server


def test_load_writes_the_model_under_the_deployments_name_and_release_unloads_it(tmp_path: Path):
    client = FakeClient()
    server = _server(tmp_path, client)
    model = server.load([ONNX, EXPORT_CONFIG.encode()], "d1")
    name = triton_name("d1", hashlib.sha256(ONNX).hexdigest())
    assert model.name == name and client.loaded == [name] and (tmp_path / name / "1" / "model.py").exists()
    assert model.input_shape == [-1, 3, 64, 64] and model.platform == "python"
    server.load([ONNX, EXPORT_CONFIG.encode()], "d1")  # already loaded: not loaded again
    assert client.loaded == [name]
    server.release("d1", hashlib.sha256(ONNX).hexdigest())
    assert client.unloaded == [name] and not (tmp_path / name).exists()
    server.release("d1", hashlib.sha256(ONNX).hexdigest())  # not loaded any more: nothing to do


def test_a_model_triton_refuses_is_invalid_and_an_unreachable_triton_is_not_the_models_fault(tmp_path: Path):
    refused = _server(tmp_path, FakeClient(InferenceServerException("failed to load", status="400")))
    with pytest.raises(ModelInvalid) as caught:
        refused.load([ONNX, EXPORT_CONFIG.encode()], "d2")
    assert not isinstance(caught.value, RuntimeUnavailable) and caught.value.code == "MODEL_INVALID"
    assert list(tmp_path.iterdir()) == []  # the refused model does not stay in the repository
    down = _server(tmp_path, FakeClient(ConnectionRefusedError(111, "refused")))
    with pytest.raises(RuntimeUnavailable) as unreachable:
        down.load([ONNX, EXPORT_CONFIG.encode()], "d3")
    assert unreachable.value.code == "RUNTIME_UNAVAILABLE"
    with pytest.raises(ModelInvalid, match=r"config\.pbtxt"):
        down.load([ONNX], "d4")


def test_the_cache_offers_triton_only_when_a_server_is_configured(tmp_path: Path):
    plain = ModelCache(store=None, budget_bytes=1, threads=1)  # type: ignore[arg-type]
    assert plain.available("onnxruntime") and plain.available("openvino") and not plain.available("triton")
    client = FakeClient()
    with_triton = ModelCache(store=None, budget_bytes=1, threads=1, external={"triton": _server(tmp_path, client)})  # type: ignore[arg-type]
    assert with_triton.available("triton")
    plain.release("onnxruntime", "d1", "00" * 32)  # in-process runtimes hold nothing elsewhere


class FakeExports:
    task = "detect"

    async def get(self, token: str, export_id: uuid.UUID) -> dict[str, Any]:
        parity = {"passed": True}
        return {"id": str(export_id), "status": "succeeded", "parity": parity, "task_type": self.task, "format": "onnx"}


async def test_runtime_triton_is_refused_with_a_reason_where_no_triton_server_is_configured(tmp_path: Path):
    wanted = DeploymentRequest(uuid.uuid4(), "t", "triton", 0.25, 0.7, 300)
    without = ModelCache(store=None, budget_bytes=1, threads=1)  # type: ignore[arg-type]
    deps = Deps(new_uow=None, exports=FakeExports(), store=None, cache=without, max_package_bytes=1)  # type: ignore[arg-type]
    with pytest.raises(RequestRefused) as refused:
        await _resolve(deps, "token", wanted)
    [problem] = refused.value.problems
    assert problem.code == "runtime_unavailable" and "VTP_TRITON_URL" in problem.message
    deps.cache = ModelCache(store=None, budget_bytes=1, threads=1, external={"triton": _server(tmp_path, FakeClient())})  # type: ignore[arg-type]
    export = await _resolve(deps, "token", wanted)  # configured: served from ONNX exports
    assert export["format"] == "onnx"


class Answer:
    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def as_numpy(self, name: str) -> np.ndarray:
        return self.x


class RestartingClient(FakeClient):
    """A Triton that forgot its models (restarted): infer fails until the model is loaded again."""

    def infer(self, name: str, inputs: list[Any], outputs: list[Any], headers: Any = None) -> Answer:
        if name not in self.loaded:
            raise InferenceServerException(f"Request for unknown model: '{name}'", status="400")
        return Answer(np.ones((1, 6, 84), np.float32))


def test_a_model_triton_forgot_is_loaded_again_unless_it_was_released(tmp_path: Path):
    client = RestartingClient()
    server = _server(tmp_path, client)
    model = server.load([ONNX, EXPORT_CONFIG.encode()], "d5")
    client.loaded.clear()  # Triton restarted
    assert model(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 6, 84) and client.loaded == [model.name]
    client.loaded.clear()
    server.repository.remove(model.name)  # released by another replica: not brought back
    with pytest.raises(RuntimeUnavailable, match="unknown model"):
        model(np.zeros((1, 3, 64, 64), np.float32))
    assert client.loaded == []


SEGMENT_OUTPUTS = {"output0": np.ones((1, 38, 84), np.float32), "output1": np.full((1, 32, 16, 16), 2, np.float32)}


class SegmentClient(FakeClient):
    """A Triton serving a segment model: two outputs, each answered only when asked for."""

    def __init__(self, drop: str | None = None) -> None:
        super().__init__()
        self.drop, self.asked = drop, []  # type: ignore[var-annotated]

    def get_model_metadata(self, name: str) -> dict[str, Any]:
        return {
            "platform": "python",
            "inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 3, 64, 64]}],
            "outputs": [{"name": n, "datatype": "FP32", "shape": list(a.shape)} for n, a in SEGMENT_OUTPUTS.items()],
        }

    def infer(self, name: str, inputs: list[Any], outputs: list[Any], headers: Any = None) -> Any:
        names = [o.name() for o in outputs]
        self.asked.append((names, [o._parameters.get("binary_data") for o in outputs]))

        class Result:
            def as_numpy(_, n: str) -> np.ndarray | None:
                return SEGMENT_OUTPUTS[n] if n in names and n != self.drop else None

        return Result()


def test_a_triton_model_lists_and_answers_every_output_in_the_configurations_order(tmp_path: Path):
    from vtp_inference.service_layer import oip_outputs, tasks

    client = SegmentClient()
    model = _server(tmp_path, client).load([ONNX, EXPORT_CONFIG.encode()], "d6")
    assert model.outputs == [("output0", [1, 38, 84]), ("output1", [1, 32, 16, 16])]
    assert (model.output_name, model.output_shape) == ("output0", [1, 38, 84])
    x = np.zeros((1, 3, 64, 64), np.float32)
    assert model(x).shape == (1, 38, 84) and client.asked[-1] == (["output0"], [True])  # the first one alone
    both = tasks.all_outputs(model, x)
    assert [a.shape for a in both] == [(1, 38, 84), (1, 32, 16, 16)] and float(both[1].max()) == 2
    assert client.asked[-1] == (["output0", "output1"], [True, True])  # one request, binary tensors
    assert oip_outputs.wanted_outputs(None, model) == ["output0", "output1"]
    tasks.prober("segment", {"mask_dim": 32}, 64, 2)(model)  # the segment interface a deployment is checked for
    client.drop = "output1"
    with pytest.raises(RuntimeUnavailable, match="without output1"):
        model.run_all(x)


async def test_runtime_triton_serves_every_task(tmp_path: Path):
    cache = ModelCache(store=None, budget_bytes=1, threads=1, external={"triton": _server(tmp_path, FakeClient())})  # type: ignore[arg-type]
    deps = Deps(new_uow=None, exports=FakeExports(), store=None, cache=cache, max_package_bytes=1)  # type: ignore[arg-type]
    for task in ("detect", "segment", "pose", "classify"):
        deps.exports.task = task  # type: ignore[attr-defined]
        export = await _resolve(deps, "token", DeploymentRequest(uuid.uuid4(), "t", "triton", 0.25, 0.7, 300))
        assert export["task_type"] == task
