"""Option normalisation and content addressing: what makes two requests the same export."""

from __future__ import annotations

import asyncio

from vtp_export.adapters.toolchains import Toolchains
from vtp_export.domain.formats import normalise_options, precision
from vtp_export.domain.model import content_key
from vtp_export.entrypoints.capabilities import capabilities


def test_defaults_are_filled_so_equal_requests_share_a_key():
    implicit, problems = normalise_options("onnx", {}, 64)
    explicit, more = normalise_options("onnx", {"simplify": True, "imgsz": 64, "batch": 1, "dynamic": False}, 640)
    assert problems == more == []
    assert implicit == explicit == {"imgsz": 64, "batch": 1, "dynamic": False, "simplify": True, "opset": None}
    assert content_key("a" * 64, "onnx", implicit) == content_key("a" * 64, "onnx", dict(reversed(explicit.items())))
    assert content_key("a" * 64, "onnx", implicit) != content_key("b" * 64, "onnx", implicit)
    assert content_key("a" * 64, "onnx", implicit) != content_key("a" * 64, "onnx", {**implicit, "imgsz": 96})


def test_options_a_format_does_not_take_are_refused_each():
    _, problems = normalise_options("torchscript", {"simplify": True, "opset": 12, "dynamic": True, "half": True}, 64)
    assert {(p.pointer, p.code) for p in problems} == {
        ("/options/simplify", "option_not_supported"),
        ("/options/opset", "option_not_supported"),
        ("/options/dynamic", "option_not_supported"),
        ("/options/half", "option_not_supported"),
    }


def test_bad_values_and_combinations():
    _, problems = normalise_options("openvino", {"imgsz": 65, "half": "yes", "batch": 0, "int8": True}, 64)
    assert {(p.pointer, p.code) for p in problems} == {
        ("/options/imgsz", "invalid_option"),
        ("/options/half", "invalid_option"),
        ("/options/batch", "invalid_option"),
        ("/options/int8", "option_not_supported"),
    }
    ok, problems = normalise_options("openvino", {"half": True, "dynamic": True, "batch": 8}, 64)
    assert problems == [] and precision(ok) == "fp16"


def test_capabilities_follow_the_probe(monkeypatch):
    toolchains = Toolchains()

    async def probe(python: str, mode: str, modules: list[str], timeout: float) -> tuple[dict[str, str | None], None]:
        have = {"torch", "ultralytics", "onnx", "onnxslim", "onnxruntime"}
        return {m: None if m in have else "not installed" for m in modules}, None

    monkeypatch.setattr("vtp_export.adapters.toolchains._probe", probe)
    asyncio.run(toolchains.probe())
    formats = {f["format"]: f for f in capabilities(toolchains)["frameworks"][0]["tasks"][0]["formats"]}
    assert formats["onnx"]["available"] and formats["onnx"]["reason"] is None
    assert not formats["openvino"]["available"] and "openvino" in formats["openvino"]["reason"]
    assert not formats["mnn"]["available"] and "setup-exporters" in formats["mnn"]["reason"]
    assert not formats["tflite"]["available"]
