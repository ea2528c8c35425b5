"""OIP answers of models with several outputs: which outputs a request gets, and how they are encoded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from vtp_inference.service_layer.oip import OipError
from vtp_inference.service_layer.oip_outputs import encode_outputs, wanted_outputs
from vtp_inference.service_layer.tensors import InferRequest


@dataclass
class TwoOutputs:
    platform: str = "fake"
    input_name: str = "images"
    output_name: str = "output0"
    input_shape: list[Any] = field(default_factory=lambda: [1, 3, 32, 32])
    output_shape: list[Any] = field(default_factory=lambda: [1, 39, 21])
    outputs: list[tuple[str, list[Any]]] = field(
        default_factory=lambda: [("output0", [1, 39, 21]), ("output1", [1, 32, 8, 8])]
    )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((1, 39, 21), np.float32)


def test_every_output_unless_named_and_unknown_names_refused():
    model = TwoOutputs()
    assert wanted_outputs(None, model) == ["output0", "output1"]
    assert wanted_outputs(["output1"], model) == ["output1"]
    with pytest.raises(OipError, match="unknown output"):
        wanted_outputs(["output2"], model)


def test_outputs_encode_as_json_or_binary_in_header_order():
    a, b = np.arange(4, dtype=np.float32).reshape(1, 4), np.ones((1, 2), np.float32)
    as_json = InferRequest("7", np.zeros(1), binary_output=False, outputs=None)
    body, header = encode_outputs("m", "1", as_json, [("output0", a), ("output1", b)], {"export_id": "e"})
    doc = json.loads(body)
    assert header is None and doc["id"] == "7" and doc["parameters"] == {"export_id": "e"}
    assert [(o["name"], o["shape"], o["data"]) for o in doc["outputs"]] == [
        ("output0", [1, 4], [0, 1, 2, 3]),
        ("output1", [1, 2], [1, 1]),
    ]
    binary = InferRequest(None, np.zeros(1), binary_output=True, outputs=None)
    body, header = encode_outputs("m", "1", binary, [("output0", a), ("output1", b)])
    assert header is not None
    doc, rest = json.loads(body[:header]), body[header:]
    sizes = [o["parameters"]["binary_data_size"] for o in doc["outputs"]]
    assert sizes == [16, 8] and np.frombuffer(rest[:16], "<f4").tolist() == [0, 1, 2, 3]
    assert np.frombuffer(rest[16:], "<f4").tolist() == [1, 1]
