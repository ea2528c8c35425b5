"""The model cache: sha256 verified before loading, one load for concurrent requests, LRU under a budget,
eviction on change; and the detect-interface check at creation."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest
from onnx import TensorProto, helper

from vtp_inference.adapters.model_cache import ModelCache, ModelIntegrity, ModelInvalid
from vtp_inference.adapters.runtimes import load
from vtp_inference.domain.model import Deployment, Status


def tiny_detector(imgsz: int = 32, classes: int = 2) -> bytes:
    """[1, 3, s, s] -> [1, 4 + classes, anchors] by a reshape: a valid detect interface."""
    anchors = 3 * imgsz * imgsz // (4 + classes)
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [1, 4 + classes, anchors])
    node = helper.make_node("Reshape", ["images", "shape"], ["output0"])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, imgsz, imgsz])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + classes, anchors])],
        [shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.reads = 0

    def parse_uri(self, uri: str) -> str:
        return uri.removeprefix("mem://")

    async def open_stream(self, key: str) -> AsyncIterator[bytes]:
        self.reads += 1
        yield self.objects[key]


def deployment(store: FakeStore, data: bytes, sha: str | None = None) -> Deployment:
    now = datetime.now(UTC)
    d = Deployment(uuid.uuid4(), uuid.uuid4(), "d", uuid.uuid4(), "onnxruntime", now, now, Status.READY)
    store.objects[str(d.id)] = data
    d.model = {"uri": f"mem://{d.id}", "sha256": sha or hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
    d.model_meta = {"names": {"0": "a", "1": "b"}, "imgsz": 32}
    return d


def test_loads_once_verified_then_evicts_least_recently_used():
    store, data = FakeStore(), tiny_detector()
    cache = ModelCache(store, budget_bytes=2 * len(data), threads=1)  # type: ignore[arg-type]
    a, b, c = (deployment(store, data) for _ in range(3))

    async def scenario() -> None:
        async def read_a() -> Deployment:
            await asyncio.sleep(0.01)
            return a

        loaded = await asyncio.gather(*(cache.get(a.id, read_a) for _ in range(5)))
        assert store.reads == 1 and all(entry is loaded[0] for entry in loaded)
        out = loaded[0].model(np.ones((1, 3, 32, 32), np.float32))
        assert out.shape == (1, 6, 512)

        async def read(d: Deployment) -> Deployment:
            return d

        await cache.get(b.id, lambda: read(b))
        await cache.get(a.id, lambda: read(a))  # a is now the most recent
        await cache.get(c.id, lambda: read(c))  # over budget: b goes
        assert len(cache) == 2 and cache.stats.evictions == 1
        await cache.get(a.id, lambda: read(a))
        assert store.reads == 3
        cache.evict(a.id)
        await cache.get(a.id, lambda: read(a))
        assert store.reads == 4

    asyncio.run(scenario())


def test_a_tampered_model_is_never_loaded():
    store, data = FakeStore(), tiny_detector()
    cache = ModelCache(store, budget_bytes=1 << 30, threads=1)  # type: ignore[arg-type]
    d = deployment(store, data, sha="0" * 64)

    async def read() -> Deployment:
        return d

    with pytest.raises(ModelIntegrity):
        asyncio.run(cache.get(d.id, read))
    assert len(cache) == 0


def test_creation_check_refuses_a_wrong_interface_or_garbage():
    store = FakeStore()
    cache = ModelCache(store, budget_bytes=1 << 30, threads=1)  # type: ignore[arg-type]
    cache.check("onnxruntime", [tiny_detector()], imgsz=32, classes=2)
    with pytest.raises(ModelInvalid):
        cache.check("onnxruntime", [tiny_detector()], imgsz=32, classes=5)  # metadata says 5 classes
    with pytest.raises(ModelInvalid):
        cache.check("onnxruntime", [tiny_detector()], imgsz=64, classes=2)
    with pytest.raises(ModelInvalid):
        cache.check("onnxruntime", [b"not onnx"], imgsz=32, classes=2)
    with pytest.raises(ModelInvalid):
        cache.check("triton", [tiny_detector()], imgsz=32, classes=2)


def test_openvino_ir_loads_from_verified_bytes(tmp_path: Path):
    (tmp_path / "m.onnx").write_bytes(tiny_detector())
    ov.save_model(ov.convert_model(tmp_path / "m.onnx"), tmp_path / "m.xml", compress_to_fp16=False)
    files = [(tmp_path / "m.xml").read_bytes(), (tmp_path / "m.bin").read_bytes()]
    cache = ModelCache(FakeStore(), budget_bytes=1 << 30, threads=1)  # type: ignore[arg-type]
    cache.check("openvino", files, imgsz=32, classes=2)
    model = load("openvino", files, 1)
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    assert model.platform == "openvino" and model.input_name == "images"
    assert np.allclose(model(x), load("onnxruntime", [tiny_detector()], 1)(x))
    with pytest.raises(ModelInvalid):
        cache.check("openvino", [files[0], b"\x00"], imgsz=32, classes=2)  # weights that do not fit
